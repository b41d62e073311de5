"""The pump commands of pumpctl: arguments in, one api.Pump call, Out(data, words) back.
cli.build_parser() wires each to its command name and flags.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional

from . import api, benchctl, programs, render, wallclock
from .cli_args import connect, duration_arg
from .durations import format_ms
from .errors import UsageError
from .output import Out
from .progress import Progress

Request = Callable[[api.Pump], dict[str, Any]]


def _one(args: argparse.Namespace, request: Request, words: Callable[[dict[str, Any]], str],
         role: Optional[str] = None) -> Out:
    """Most commands: one API call, its reply as data and in words."""
    with connect(args, role) as pump:
        d = request(pump)
    return Out(d, words(d))


def cmd_identify(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.identify, render.identify_text)


def cmd_status(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.status, render.status_text)


NOT_CONFIRMED = ("the program was not written: {why}, so pumpctl cannot ask you to confirm it; "
                 "add --yes to write it without asking")


def _apply_program(args: argparse.Namespace, prog: dict[str, Any]) -> Out:
    """Writing therapy needs a yes: --yes, or a 'y' typed on a terminal after the old and new
    programs side by side. Anywhere else (a pipe, a script, --json) it refuses before it writes:
    a 'n' piped in must never turn into a write."""
    if not args.yes:
        if args.json:
            raise UsageError(NOT_CONFIRMED.format(why="--json gives no prompt"), code="NOT_CONFIRMED")
        if not sys.stdin.isatty():
            raise UsageError(NOT_CONFIRMED.format(why="standard input is not a terminal"), code="NOT_CONFIRMED")

    def confirm(cmp: dict[str, Any]) -> bool:
        if not args.json:
            print(render.comparison_table(cmp["comparison"]))
        if args.yes:
            return True
        try:
            answer = input("Write the new program to the pump? [y/N] ")
        except EOFError:
            return False
        return answer.strip().lower() in ("y", "yes")

    with connect(args) as pump:
        done = pump.program_set(prog, confirm)
    return Out(done, render.program_written_text(done))


def cmd_program_set(args: argparse.Namespace) -> Out:
    return _apply_program(args, programs.load(args.file))


def cmd_program_continuous(args: argparse.Namespace) -> Out:
    return _apply_program(args, programs.continuous(args.rate, args.concentration, args.drug))


def cmd_program_show(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.program_show, render.program_text)


def cmd_stop(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.stop, lambda d: "The pump is stopped. Nothing will be delivered until `pumpctl resume`.")


def cmd_resume(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.resume, lambda d: "The pump resumed at the programmed rate for the current time (missed delivery is not caught up).")


AT_FORMATS = "2026-01-05, 2026-01-05T09:00 or 2026-01-05T09:00:00 (UTC unless it names a zone, e.g. +01:00)"


def cmd_time_sync(args: argparse.Namespace) -> Out:
    try:
        at = wallclock.parse_utc(args.at) if args.at else None
    except UsageError:
        raise UsageError(f"--at takes a date or date and time, like {AT_FORMATS}; not {args.at!r}") from None
    with connect(args) as pump:
        d = pump.time_sync(at)
    return Out(d, f"Pump clock set to {render.wall_text(d['wall'])} UTC.")


def cmd_alarms(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.alarms()
        wall = pump.status().get("wall") if d.get("audio_paused_ms") else None  # "paused until" in pump time
    return Out(d, render.alarms_text(d, wall))


def cmd_alarms_ack(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.ack(args.code)
    acked = d.get("acknowledged") or []
    return Out(d, ("Acknowledged: " + ", ".join(acked)) if acked else "Nothing to acknowledge.")


MAX_PAUSE_MS = 15 * 60_000  # the pump's own limit (core/alarms.py MAX_PAUSE_MS): asked before sending


def cmd_alarms_pause(args: argparse.Namespace) -> Out:
    ms = duration_arg(args.duration)
    if not 1000 <= ms <= MAX_PAUSE_MS:
        raise UsageError(f"an audio pause must be 1 s to {MAX_PAUSE_MS // 60_000} min (e.g. 5m), not {args.duration} "
                         f"({ms / 60_000:g} min)")
    with connect(args) as pump:
        d = pump.pause(ms)
    return Out(d, f"Alarm audio paused for {format_ms(ms)}; unresolved alarms sound again after that.")


def cmd_alarms_test(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.alarms_test, lambda d: "Alarm test: each pattern (high, medium, low) sounds once on the buzzer and lights.")


def cmd_drugs(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.drugs, render.drugs_text)


def cmd_bolus(args: argparse.Namespace) -> Out:
    dur = duration_arg(args.duration)
    if dur % 60_000 or not 60_000 <= dur <= MAX_BOLUS_MIN * 60_000:
        raise UsageError(f"a bolus lasts 1 to {MAX_BOLUS_MIN} min ({MAX_BOLUS_MIN // 60} h) in whole minutes "
                         f"(e.g. 10m, 1h30m), not {args.duration}")
    with connect(args) as pump:
        if not 1 <= args.dose_ug <= MAX_BOLUS_UG:  # the drug's limit in µg, not the protocol's range
            raise UsageError(_bolus_limit_text(pump, args.dose_ug))
        d = pump.bolus(args.dose_ug, dur // 60_000, args.override)
    return Out(d, f"Clinician bolus of {args.dose_ug} µg over {format_ms(dur)} started; the program resumes after it.")


MAX_BOLUS_MIN = 1440  # the pump's longest bolus (core/limits.py)
MAX_BOLUS_UG = 600    # the largest bolus the protocol carries (core/limits.py); a drug's limit is lower


def _bolus_limit_text(pump: api.Pump, dose: int) -> str:
    """A dose outside 1..600 µg, refused before sending with the running drug's own limit in µg."""
    prog = pump.program_show().get("program") or {}
    drug = prog.get("drug")
    for e in pump.drugs().get("drugs", []) if drug else []:
        b = e.get("bolus") if e.get("name") == drug else None
        if isinstance(b, dict):
            return (f"a clinician bolus of {drug} must be 1 to {b.get('hard')} µg (over {b.get('soft')} µg needs "
                    f"--override bolus_dose), not {dose} µg")
    return (f"a bolus dose must be 1 to {MAX_BOLUS_UG} µg, and each drug's own limit is lower (`pumpctl drugs`), "
            f"not {dose} µg")


def cmd_patient_bolus(args: argparse.Namespace) -> Out:
    with connect(args, role=args.role_set or "patient") as pump:
        d = pump.patient_bolus()
    return Out(d, patient_bolus_text(d))


def patient_bolus_text(d: dict[str, Any]) -> str:
    """An accepted patient request: the bolus has started, it is not yet given."""
    detail = str(d.get("detail") or "")
    if detail.startswith("patient bolus "):
        detail = detail[len("patient bolus "):]
    return (f"Patient bolus started: {detail}. It runs on top of the basal rate until its dose is given "
            "(`pumpctl status` shows what is left).")


def cmd_prime(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.prime(args.minutes, args.tubing_ul, args.catheter_cm, args.catheter_nl_per_cm)
    return Out(d, f"Priming {d['volume_ul']:.1f} µL ({d['steps']} steps) over {args.minutes} min. "
                  "Priming fills the line: it is not counted as dose at the catheter tip.")


def cmd_bridge(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.bridge()
    return Out(d, f"Bridge bolus running: {d['bridge_steps_left']} steps of old drug left in tubing and catheter.")


def cmd_refill(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.refill(args.withdrawn_ul, args.volume_ul, args.concentration, args.bridge)
        on_bench = pump.bench
    text = render.refill_text(d, concentration_changed=args.concentration is not None, bridge=args.bridge)
    if on_bench is not None:  # the physical half of the refill: the bench's water (docs/bench-model.md)
        d["bench_fill"] = benchctl.refill_bench(on_bench, args.volume_ul)
        text += "\n" + benchctl.refill_bench_text(d["bench_fill"])
    return Out(d, text)


def cmd_settings(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.settings(args.low_reservoir_ul, args.stopped_alarm_h, args.tubing_ul, args.catheter_cm,
                          args.catheter_nl_per_cm)
    return Out(d, render.settings_text(d))


def cmd_log(args: argparse.Namespace) -> Out:
    from .logs import fetch, lost_sentence, with_lost
    with connect(args) as pump:
        got = fetch(pump, args.since, "refusals" if getattr(args, "refusals", False) else "events",
                    progress=not args.json and not args.csv)
    recs = with_lost(got)  # records lost (ring wrapped, damaged) are marked where they were
    if args.csv:
        return Out(recs, render.log_csv(recs))
    lost = lost_sentence(got, render.wall_text)
    return Out(recs, render.log_table(recs) + ("\n" + lost if lost else ""))


HISTORY_DAYS = 104  # the hourly history the pump keeps (services/history.py DAYS)


def cmd_history(args: argparse.Namespace) -> Out:
    if not 1 <= args.days <= HISTORY_DAYS:
        raise UsageError(f"--days must be 1 to {HISTORY_DAYS} (whole days of the pump's hourly history), not {args.days}")
    with connect(args) as pump:
        with Progress(args.days * 24, "downloading history", enabled=args.days > 2) as bar:
            rows = pump.history(args.days, bar.update)
    if args.plot:
        from . import plots
        plots.history([{"hour": r["hour"], "programmed_ug": r["programmed_ug"], "delivered_ug": r["delivered_ug"]}
                       for r in rows], args.plot)
    text = render.history_table(rows)
    if args.plot:
        text += f"\nPlot written to {args.plot}"
    return Out({"hours": rows}, text)


def cmd_calibrate(args: argparse.Namespace) -> Out:
    from . import calibrate
    with connect(args) as pump:
        d = calibrate.run(pump, args.volume_ul, args.minutes, args.mass_mg, args.temperature, args.force,
                          show_progress=not args.json)
    return Out(d, render.calibration_text(d, args.temperature))


def cmd_provision(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.provision()
    return Out(d, f"New keys for {d['device_id']} are on the pump and in your keystore. "
                  "Keys are never readable back from the pump.")
