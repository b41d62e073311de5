"""The pump commands of pumpctl: arguments in, one api.Pump call, Out(data, words) back.
cli.build_parser() wires each to its command name and flags.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional

from . import api, programs, render, wallclock
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


def _apply_program(args: argparse.Namespace, prog: dict[str, Any]) -> Out:
    def confirm(cmp: dict[str, Any]) -> bool:
        if not args.json:
            print(render.comparison_table(cmp["comparison"]))
        if args.yes or not sys.stdin.isatty():
            return True
        return input("Write the new program to the pump? [y/N] ").strip().lower() in ("y", "yes")

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


def cmd_time_sync(args: argparse.Namespace) -> Out:
    at = wallclock.parse_utc(args.at) if args.at else None
    with connect(args) as pump:
        d = pump.time_sync(at)
    return Out(d, f"Pump clock set to {render.wall_text(d['wall'])} UTC.")


def cmd_alarms(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.alarms, render.alarms_text)


def cmd_alarms_ack(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.ack(args.code)
    acked = d.get("acknowledged") or []
    return Out(d, ("Acknowledged: " + ", ".join(acked)) if acked else "Nothing to acknowledge.")


def cmd_alarms_pause(args: argparse.Namespace) -> Out:
    ms = duration_arg(args.duration)
    with connect(args) as pump:
        d = pump.pause(ms)
    return Out(d, f"Alarm audio paused for {format_ms(ms)}; unresolved alarms sound again after that.")


def cmd_alarms_test(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.alarms_test, lambda d: "Alarm test: each pattern (high, medium, low) sounds once on the buzzer and lights.")


def cmd_drugs(args: argparse.Namespace) -> Out:
    return _one(args, api.Pump.drugs, render.drugs_text)


def cmd_bolus(args: argparse.Namespace) -> Out:
    dur = duration_arg(args.duration)
    if dur % 60_000 or dur <= 0:
        raise UsageError("bolus duration must be whole minutes, e.g. 10m or 1h")
    with connect(args) as pump:
        d = pump.bolus(args.dose_ug, dur // 60_000, args.override)
    return Out(d, f"Clinician bolus of {args.dose_ug} µg over {format_ms(dur)} started; the program resumes after it.")


def cmd_patient_bolus(args: argparse.Namespace) -> Out:
    with connect(args, role=args.role_set or "patient") as pump:
        d = pump.patient_bolus()
    return Out(d, f"Patient bolus delivered: {d['detail']}.")


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
    return Out(d, render.refill_text(d, concentration_changed=args.concentration is not None, bridge=args.bridge))


def cmd_settings(args: argparse.Namespace) -> Out:
    with connect(args) as pump:
        d = pump.settings(args.low_reservoir_ul, args.stopped_alarm_h, args.tubing_ul, args.catheter_cm,
                          args.catheter_nl_per_cm)
    return Out(d, render.settings_text(d))


def cmd_log(args: argparse.Namespace) -> Out:
    from .logs import download
    with connect(args) as pump:
        recs = download(pump, args.since, progress=not args.json and not args.csv)
    return Out(recs, render.log_csv(recs) if args.csv else render.log_table(recs))


def cmd_history(args: argparse.Namespace) -> Out:
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
