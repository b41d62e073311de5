"""pumpctl: the clinician's external programmer for the bench ITB pump emulator.

RESEARCH AND EDUCATION PROTOTYPE. NEVER FOR HUMAN USE.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from . import __version__, bench, programs
from .durations import format_ms, parse_ms
from .errors import BenchError, DeviceError, LinkError, PumpctlError, UsageError
from .link import Link
from .output import Out
from .progress import Progress

DISCLAIMER = "Research and education prototype: never for human use."
EPOCH_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


# ---- connection ----------------------------------------------------------------------------
def connect(args: argparse.Namespace, role: Optional[str] = None) -> Link:
    """Open the link and arm signing with this device's key (docs/security.md)."""
    if args.port:
        link = Link(args.port, timeout=args.timeout)
        device_id = link.request("identify").get("device_id", "")
    else:
        info = bench.find(Path(args.bench_dir) if args.bench_dir else None)
        link = Link(info.port, timeout=args.timeout)
        device_id = info.d.get("device_id", "SIM-0001")
    link.enable_auth(device_id, role or args.role)
    return link


def _bench(args: argparse.Namespace) -> bench.BenchInfo:
    return bench.find(Path(args.bench_dir) if args.bench_dir else None)


# ---- formatting ------------------------------------------------------------------------------
def table(rows: list[tuple[str, ...]], header: Optional[tuple[str, ...]] = None) -> str:
    allrows = ([header] if header else []) + rows
    widths = [max(len(str(r[i])) for r in allrows) for i in range(len(allrows[0]))]
    lines = []
    for n, r in enumerate(allrows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        if header and n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def wall_text(wall: Optional[list[int]]) -> str:
    if not wall:
        return "not set"
    t = EPOCH_2000 + dt.timedelta(days=wall[0], milliseconds=wall[1])
    return t.strftime("%Y-%m-%d %H:%M:%S")


def status_text(st: dict[str, Any]) -> str:
    lines = []
    if st["state"] == "running":
        lines.append(f"The pump is RUNNING {st.get('drug')} at {st['rate_ug_per_day']} µg/day "
                     f"({st['concentration_ug_per_ml']} µg/mL, {st.get('mode')}).")
    else:
        why = st.get("stop_reason") or "stopped"
        lines.append(f"The pump is STOPPED ({why}).")
    lines.append(f"Reservoir: {st['reservoir_ul']} µL left of {st['reservoir_model_ml']} mL. "
                 f"Delivered since programming began: {st['delivered_ul']} µL ({st['delivered_ug']} µg, "
                 f"{st['delivered_steps']} steps).")
    if st.get("bolus"):
        b = st["bolus"]
        lines.append(f"A {b['kind']} bolus is running: {b['left_ug']} µg left.")
    alarms = st.get("alarms") or []
    if alarms:
        lines.append("Alarms:")
        lines.append(table([(a["code"], a["priority"], a.get("state", "")) for a in alarms], ("code", "priority", "state")))
    else:
        lines.append("No alarms.")
    lines.append(f"Clock: {wall_text(st.get('wall'))}; uptime {st['uptime_s']} s. "
                 f"Firmware {st['firmware_version']}; heap free {st.get('heap_free', '?')} bytes.")
    return "\n".join(lines)


# ---- commands --------------------------------------------------------------------------------
def cmd_bench_start(args: argparse.Namespace) -> Out:
    info = bench.start(Path(args.dir) if args.dir else None, lockstep=not args.speed, speed=args.speed or 1,
                       true_pl=args.true_pl, nominal_pl=args.nominal_pl, reservoir_ul=args.reservoir_ul,
                       model_ml=args.model_ml, heap_lock_tick=args.heap_lock_tick, realistic=args.realistic,
                       wall=None if args.no_clock else "now")
    mode = "lockstep (time moves only with `pumpctl bench advance`)" if not args.speed else f"{args.speed}x real time"
    return Out(info.d, f"Virtual bench running, {mode}.\nProgrammer port: {info.port}\n"
                       f"Control channel: {info.control}\nLog: {info.dir / 'bench.log'}\n{DISCLAIMER}")


def cmd_bench_stop(args: argparse.Namespace) -> Out:
    info = _bench(args)
    bench.stop(info)
    return Out({"stopped": True, "dir": str(info.dir)}, "Virtual bench stopped.")


def cmd_bench_advance(args: argparse.Namespace) -> Out:
    info = _bench(args)
    try:
        total = parse_ms(args.duration)
    except ValueError as e:
        raise UsageError(str(e)) from None
    chunk = 86_400_000
    done = 0
    reply: dict[str, Any] = {}
    with Progress(total, f"advancing {format_ms(total)}", enabled=not args.json and total > chunk) as bar:
        while done < total or not reply:
            step = min(chunk, total - done)
            reply = bench.control(info, {"cmd": "advance", "ms": step})
            done += step
            bar.update(done)
    clock = reply["clock"]
    return Out({"advanced_ms": total, "clock": clock},
               f"Advanced {format_ms(total)} of virtual time; bench uptime is now {clock['uptime_s']} s.")


def cmd_bench_show(args: argparse.Namespace) -> Out:
    info = _bench(args)
    d = bench.control(info, {"cmd": "show"})
    d.pop("ok", None)
    rows = [("water moved to the outlet", f"{d['outlet_nl'] / 1000:.3f} µL"),
            ("water left in the reservoir", f"{d['reservoir_true_nl'] / 1000:.3f} µL"),
            ("head steps turned", str(d["head_steps"])),
            ("true volume per step", f"{d['true_pl_per_step'] / 1000:.3f} nL"),
            ("steps that moved only air", str(d["dry_steps"])),
            ("battery", f"{d['battery_mv']} mV"),
            ("clock", f"{d['clock']['uptime_s']} s since bench start ({d['mode']}); wall {wall_text(d['clock'].get('wall'))}")]
    return Out(d, "The physical truth on the bench:\n" + table(rows))


def cmd_identify(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("identify")
    return Out(d, f"{d['device']} {d['device_id']} on board {d['board']}, firmware {d['firmware_version']}, "
                  f"protocol v{d['protocol']}.\n{d['banner']}")


def cmd_status(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        st = link.request("status")
    return Out(st, status_text(st))


def _apply_program(args: argparse.Namespace, prog: dict[str, Any]) -> Out:
    with connect(args) as link:
        st = link.request("status")
        check = link.request("program_check", {"program": prog})
        old_s = programs.summary(check.get("old"), st["reservoir_ul"])
        new_s = programs.summary(check["new"], st["reservoir_ul"])
        rows = programs.comparison_rows(dict(old_s), dict(new_s))
        text = table(rows, ("", "current", "new"))
        if not args.json:
            print(text)
        if not args.yes and sys.stdin.isatty():
            ans = input("Write the new program to the pump? [y/N] ").strip().lower()
            if ans not in ("y", "yes"):
                return Out({"written": False, "old": check.get("old"), "new": check["new"]}, "Nothing was written.")
        done = link.request("program_set", {"program": prog})
    return Out({"written": True, "old": done.get("old"), "new": done["new"], "overrides_used": done.get("overrides_used", []),
                "comparison": {"old": old_s, "new": new_s}},
               "The pump accepted the new program." + (
                   f" Soft-limit overrides logged: {', '.join(done['overrides_used'])}." if done.get("overrides_used") else ""))


def cmd_program_set(args: argparse.Namespace) -> Out:
    return _apply_program(args, programs.load(args.file))


def cmd_program_continuous(args: argparse.Namespace) -> Out:
    return _apply_program(args, programs.continuous(args.rate, args.concentration, args.drug))


def cmd_program_show(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("program_show")
    p = d.get("program")
    if not p:
        return Out(d, "The pump holds no program.")
    s = programs.summary(p, 0)
    lines = [f"{p['drug']} at {p['concentration_ug_per_ml']} µg/mL, mode {p['mode']}, pump {d['state']}."]
    steps = programs.basal_steps(p)
    lines.append(table([(programs_hhmm(m), str(r), f"{r / 24:.2f}") for m, r in steps], ("from", "µg/day", "µg/h")))
    for b in p.get("periodic_boluses", []) or []:
        lines.append(f"Periodic bolus at {b['time']}: {b['dose_ug']} µg over {b['duration_min']} min.")
    if p.get("patient_bolus"):
        pb = p["patient_bolus"]
        lines.append(f"Patient bolus: {pb['dose_ug']} µg over {pb['duration_min']} min, at most {pb['max_per_24h']} per 24 h, "
                     f"lockout {pb['lockout_min']} min.")
    lines.append(f"Daily total {s['daily_total_ug']:.1f} µg ({s['daily_volume_ul']:.1f} µL/day).")
    return Out(d, "\n".join(lines))


def programs_hhmm(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def cmd_stop(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("stop")
    return Out(d, "The pump is stopped. Nothing will be delivered until `pumpctl resume`.")


def cmd_resume(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("resume")
    return Out(d, "The pump resumed at the programmed rate for the current time (missed delivery is not caught up).")


def cmd_time_sync(args: argparse.Namespace) -> Out:
    now = dt.datetime.now(dt.timezone.utc) if not args.at else dt.datetime.fromisoformat(args.at).replace(tzinfo=dt.timezone.utc)
    delta = now - EPOCH_2000
    day = delta.days
    ms = delta.seconds * 1000 + delta.microseconds // 1000
    with connect(args) as link:
        d = link.request("time_set", {"day": day, "ms": ms})
    return Out(d, f"Pump clock set to {wall_text(d['wall'])} UTC.")


def cmd_alarms(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("alarms")
    act = d.get("active") or []
    if not act:
        return Out(d, "No active alarms.")
    return Out(d, table([(a["code"], a["priority"], str(a["since"]), a["state"]) for a in act],
                        ("code", "priority", "since (uptime s)", "state")))


def cmd_alarms_ack(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("alarms_ack", {"code": args.code})
    acked = d.get("acknowledged") or []
    return Out(d, ("Acknowledged: " + ", ".join(acked)) if acked else "Nothing to acknowledge.")


def cmd_alarms_pause(args: argparse.Namespace) -> Out:
    try:
        ms = parse_ms(args.duration)
    except ValueError as e:
        raise UsageError(str(e)) from None
    with connect(args) as link:
        d = link.request("alarms_pause", {"ms": ms})
    return Out(d, f"Alarm audio paused for {format_ms(ms)}; unresolved alarms sound again after that.")


def cmd_drugs(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("drugs")
    lines = []
    names = {"daily": "daily dose (µg/day)", "rate": "basal rate (µg/day)", "bolus": "clinician bolus (µg)",
             "pbolus": "patient bolus (µg)", "pcount": "patient boluses per 24 h"}
    for e in d["drugs"]:
        concs = e.get("concentrations_ug_per_ml") or e.get("concs") or []
        lines.append(f"{e.get('name')}: concentrations {', '.join(str(c) for c in concs)} µg/mL; "
                     f"24 h maximum {e.get('max24_ug', '?')} µg")
        rows = [(label, str(e[k].get("soft")), str(e[k].get("hard")), str(e[k].get("override", "")))
                for k, label in names.items() if isinstance(e.get(k), dict)]
        if rows:
            lines.append(table(rows, ("limit", "soft", "hard", "override name")))
    return Out(d, "\n".join(lines) if lines else json.dumps(d, indent=2))


def cmd_bolus(args: argparse.Namespace) -> Out:
    try:
        dur = parse_ms(args.duration)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if dur % 60_000 or dur <= 0:
        raise UsageError("bolus duration must be whole minutes, e.g. 10m or 1h")
    a: dict[str, Any] = {"dose_ug": args.dose_ug, "duration_min": dur // 60_000}
    if args.override:
        a["overrides"] = args.override
    with connect(args) as link:
        d = link.request("bolus", a)
    return Out(d, f"Clinician bolus of {args.dose_ug} µg over {format_ms(dur)} started; the program resumes after it.")


def cmd_patient_bolus(args: argparse.Namespace) -> Out:
    with connect(args, role=args.role_set or "patient") as link:
        d = link.request("patient_bolus")
    return Out(d, f"Patient bolus delivered: {d['detail']}.")


def cmd_prime(args: argparse.Namespace) -> Out:
    a: dict[str, Any] = {"duration_min": args.minutes}
    for k in ("tubing_ul", "catheter_cm", "catheter_nl_per_cm"):
        v = getattr(args, k)
        if v is not None:
            a[k] = v
    with connect(args) as link:
        d = link.request("prime", a)
    return Out(d, f"Priming {d['volume_ul']:.1f} µL ({d['steps']} steps) over {args.minutes} min. "
                  "Priming fills the line: it is not counted as dose at the catheter tip.")


def cmd_bridge(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("bridge")
    return Out(d, f"Bridge bolus running: {d['bridge_steps_left']} steps of old drug left in tubing and catheter.")


def cmd_refill(args: argparse.Namespace) -> Out:
    a: dict[str, Any] = {"withdrawn_ul": args.withdrawn_ul, "volume_ul": args.volume_ul}
    if args.concentration is not None:
        a["concentration_ug_per_ml"] = args.concentration
    if args.bridge:
        a["bridge"] = True
    with connect(args) as link:
        d = link.request("refill", a)
    lines = [f"Withdrew {d['withdrawn_ul']} µL; the pump expected {d['expected_ul']} µL (difference {d['mismatch_ul']:+d} µL)."]
    if d.get("warning"):
        lines.append("WARNING: " + d["warning_text"] + ".")
    lines.append(f"Reservoir now {d['volume_ul']} µL.")
    f = d.get("forecast")
    if f:
        lines.append(f"Low reservoir in {f['days_to_low']} days ({wall_text([f['low_day'], 0])[:10]}), refill by then; "
                     f"empty in {f['days_to_empty']} days (assuming every allowed patient bolus).")
    if d.get("bridge_steps"):
        lines.append(f"Bridge bolus: the old drug in tubing and catheter ({d['bridge_steps']} steps) is pushed at the old "
                     "concentration so the prescribed dose holds until the new drug reaches the tip.")
    elif args.concentration is not None and not args.bridge:
        lines.append("The concentration changed: consider `--bridge` so the old drug in the catheter is flushed at the prescribed dose.")
    return Out(d, "\n".join(lines))


def cmd_settings(args: argparse.Namespace) -> Out:
    a: dict[str, Any] = {}
    for k in ("low_reservoir_ul", "stopped_alarm_h", "tubing_ul", "catheter_cm", "catheter_nl_per_cm"):
        v = getattr(args, k)
        if v is not None:
            a[k] = v
    with connect(args) as link:
        d = link.request("settings", a)
    return Out(d, table([(k, str(v)) for k, v in d.items()], ("setting", "value")))


def cmd_log(args: argparse.Namespace) -> Out:
    from .logs import download
    with connect(args) as link:
        recs = download(link, args.since, progress=not args.json and not args.csv)
    if args.csv:
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["seq", "wall", "uptime_s", "type", "data"])
        for r in recs:
            w.writerow([r["seq"], wall_text(r.get("wall")), r.get("uptime"), r["type"], json.dumps(r.get("data"))])
        return Out(recs, buf.getvalue().rstrip("\n"))
    rows = [(str(r["seq"]), wall_text(r.get("wall")), r["type"], json.dumps(r.get("data"))[:70]) for r in recs]
    return Out(recs, table(rows, ("seq", "time", "event", "data")) if rows else "No new events.")


def cmd_history(args: argparse.Namespace) -> Out:
    from .logs import history
    with connect(args) as link:
        st = link.request("status")
        rows = history(link, st, args.days)
    if args.plot:
        from . import plots
        plots.history([{"hour": r["hour"], "programmed_ug": r["programmed_ug"], "delivered_ug": r["delivered_ug"]} for r in rows], args.plot)
    text = table([(wall_text([r["hour"] // 24, (r["hour"] % 24) * 3_600_000])[:13] + "h", f"{r['programmed_ug']:.2f}",
                   f"{r['delivered_ug']:.2f}", f"{r['delivered_ul']:.2f}") for r in rows],
                 ("hour", "programmed µg", "delivered µg", "delivered µL")) if rows else "No history yet."
    if args.plot:
        text += f"\nPlot written to {args.plot}"
    return Out({"hours": rows}, text)


def cmd_calibrate(args: argparse.Namespace) -> Out:
    from .calibrate import calibrate
    with connect(args) as link:
        d = calibrate(link, args, bench_info=None if args.port else _bench(args))
    return Out(d, d.pop("text"))


def cmd_provision(args: argparse.Namespace) -> Out:
    from .keystore import Keystore, generate_keys
    with connect(args) as link:
        ident = link.request("identify")
        device_id = ident["device_id"]
        keys = generate_keys()
        d = link.request("provision", {"keys": keys}, signed=link.signer is not None)
        Keystore().save(device_id, keys)
    return Out({"device_id": device_id, "provisioned": True},
               f"New keys for {device_id} are on the pump and in your keystore. Keys are never readable back from the pump.")


def cmd_alarms_test(args: argparse.Namespace) -> Out:
    with connect(args) as link:
        d = link.request("alarms_test")
    return Out(d, "Alarm test: each pattern (high, medium, low) sounds once on the buzzer and lights.")


def cmd_bench_fault(args: argparse.Namespace) -> Out:
    info = _bench(args)
    req: dict[str, Any] = {"cmd": "fault", "fault": args.fault.replace("-", "_"), "on": not args.clear}
    if args.fault == "battery":
        if args.mv is None:
            raise UsageError("the battery fault needs --mv (e.g. --mv 3200)")
        req["mv"] = args.mv
    d = bench.control(info, req)
    d.pop("ok", None)
    return Out(d, f"Bench fault {args.fault} {'cleared' if args.clear else 'injected'}.")


def cmd_bench_power_cycle(args: argparse.Namespace) -> Out:
    info = _bench(args)
    try:
        down = parse_ms(args.down) if args.down else 0
    except ValueError as e:
        raise UsageError(str(e)) from None
    new = bench.power_cycle(info, down)
    return Out(new.d, f"Power cut and restored after {format_ms(down)}; the firmware booted from its flash.")


# ---- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object (for scripts)")
    common.add_argument("--port", default=argparse.SUPPRESS, help="serial port of a real board (default: the running virtual bench)")
    common.add_argument("--bench-dir", default=argparse.SUPPRESS, help="directory of the virtual bench to talk to")
    common.add_argument("--pico", action="store_true", default=argparse.SUPPRESS,
                        help="talk to the emulated Pico started last (`pumpctl pico start`) over its USB port")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds to wait for each reply (default 5)")
    common.add_argument("--role", choices=("clinician", "patient"), default=argparse.SUPPRESS,
                        help="whose key signs the commands (default clinician; patient-bolus uses patient)")

    p = argparse.ArgumentParser(
        prog="pumpctl", parents=[common],
        description="External programmer for the bench ITB pump emulator. " + DISCLAIMER.upper(),
        epilog="Durations: 90s, 15m, 6h, 2d. Every command takes --json. " + DISCLAIMER)
    p.add_argument("--version", action="version", version=f"pumpctl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(parent: Any, name: str, fn: Callable[[argparse.Namespace], Out], help: str) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, parents=[common], help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    b = sub.add_parser("bench", help="the virtual bench (a simulated pump running the real firmware)")
    bsub = b.add_subparsers(dest="bench_command", metavar="ACTION")
    bs = add(bsub, "start", cmd_bench_start, "start a virtual bench and wait until it answers")
    mode = bs.add_mutually_exclusive_group()
    mode.add_argument("--lockstep", action="store_true", help="virtual time moves only with `bench advance` (default)")
    mode.add_argument("--speed", type=int, metavar="N", help="run N times faster than real time (1 = real time)")
    bs.add_argument("--dir", help="where the bench keeps its socket, log and flash image")
    bs.add_argument("--true-pl", type=int, default=50_000, help="true volume per step in pL (default 50000)")
    bs.add_argument("--nominal-pl", type=int, default=50_000, help="calibration the firmware starts with, pL per step")
    bs.add_argument("--reservoir-ul", type=int, default=20_000, help="water in the reservoir at start, µL")
    bs.add_argument("--model-ml", type=int, default=20, choices=(10, 20, 40), help="pump model (reservoir size)")
    bs.add_argument("--heap-lock-tick", action="store_true", help="run every control tick under heap_lock (proves no allocation)")
    bs.add_argument("--realistic", action="store_true", help="realistic head and scale: roller pulsation, back pressure, scale noise, evaporation (docs/bench-model.md)")
    bs.add_argument("--no-clock", action="store_true", help="start with the pump's clock not set (as a fresh board)")
    add(bsub, "stop", cmd_bench_stop, "stop the virtual bench")
    ba = add(bsub, "advance", cmd_bench_advance, "move a lockstep bench's virtual time forward")
    ba.add_argument("duration", help="e.g. 90s, 15m, 6h, 2d")
    add(bsub, "show", cmd_bench_show, "the physical truth: water moved, reservoir, clock")
    bf = add(bsub, "fault", cmd_bench_fault, "inject a fault the bench can fake")
    bf.add_argument("fault", choices=("block-outlet", "battery", "reservoir-empty", "clock-loss", "hang"))
    bf.add_argument("--mv", type=int, help="battery voltage in mV (battery fault)")
    bf.add_argument("--clear", action="store_true", help="clear the fault (block-outlet)")
    bp = add(bsub, "power-cycle", cmd_bench_power_cycle, "cut the power (no save) and restore it; the firmware reboots")
    bp.add_argument("--down", help="how long the power stays off, e.g. 2h (wall clock moves on)")

    add(sub, "identify", cmd_identify, "who the pump is: board, firmware, protocol")
    add(sub, "status", cmd_status, "state, rate, reservoir, delivered volume and alarms")

    pr = sub.add_parser("program", help="read or write the therapy program")
    psub = pr.add_subparsers(dest="program_command", metavar="ACTION")
    ps = add(psub, "set", cmd_program_set, "write a program file (TOML, see docs/programs.md) after showing old and new")
    ps.add_argument("file")
    ps.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    pc = add(psub, "continuous", cmd_program_continuous, "simple continuous dosing")
    pc.add_argument("rate", type=int, help="dose rate in µg/day")
    pc.add_argument("--concentration", type=int, required=True, help="drug concentration in µg/mL")
    pc.add_argument("--drug", default="baclofen", help="drug name from the pump's library (default baclofen)")
    pc.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add(psub, "show", cmd_program_show, "the program the pump holds")

    add(sub, "stop", cmd_stop, "stop delivery")
    add(sub, "resume", cmd_resume, "resume the program (no catch-up of missed delivery)")
    t = sub.add_parser("time", help="the pump's wall clock")
    tsub = t.add_subparsers(dest="time_command", metavar="ACTION")
    ts = add(tsub, "sync", cmd_time_sync, "set the pump's clock from this computer (UTC)")
    ts.add_argument("--at", help="set this ISO time instead (UTC), e.g. 2026-01-01T00:00:00")

    al = add(sub, "alarms", cmd_alarms, "active alarms")
    asub = al.add_subparsers(dest="alarms_command", metavar="ACTION")
    aa = add(asub, "ack", cmd_alarms_ack, "acknowledge an alarm (CODE or all)")
    aa.add_argument("code")
    ap = add(asub, "pause", cmd_alarms_pause, "pause alarm audio for a while (default 2m)")
    ap.add_argument("duration", nargs="?", default="2m")
    add(sub, "drugs", cmd_drugs, "the drug library on the pump and its limits")
    add(asub, "test", cmd_alarms_test, "sound each alarm pattern once")

    bo = add(sub, "bolus", cmd_bolus, "clinician bolus (trial dose); the program resumes after")
    bo.add_argument("dose_ug", type=int, help="dose in µg")
    bo.add_argument("--duration", default="10m", help="how long, whole minutes (default 10m)")
    bo.add_argument("--override", action="append", help="confirm a soft limit, e.g. bolus_dose")
    add(sub, "patient-bolus", cmd_patient_bolus, "ask for a patient bolus (patient key; lockout and daily limit apply)")
    pm = add(sub, "prime", cmd_prime, "priming bolus: fill pump tubing and catheter (volume, not dose)")
    pm.add_argument("--minutes", type=int, default=10)
    pm.add_argument("--tubing-ul", type=int)
    pm.add_argument("--catheter-cm", type=int)
    pm.add_argument("--catheter-nl-per-cm", type=int)
    add(sub, "bridge", cmd_bridge, "show the bridge bolus after a concentration change")
    rf = add(sub, "refill", cmd_refill, "empty-and-refill: compare withdrawn with expected, then the new volume")
    rf.add_argument("--withdrawn-ul", type=int, required=True, help="volume withdrawn from the reservoir, µL")
    rf.add_argument("--volume-ul", type=int, required=True, help="new volume filled, µL")
    rf.add_argument("--concentration", type=int, help="new concentration, µg/mL (if it changes)")
    rf.add_argument("--bridge", action="store_true", help="bridge bolus for a concentration change")
    se = add(sub, "settings", cmd_settings, "pump settings: low-reservoir threshold, stopped alarm, catheter")
    se.add_argument("--low-reservoir-ul", type=int)
    se.add_argument("--stopped-alarm-h", type=int)
    se.add_argument("--tubing-ul", type=int)
    se.add_argument("--catheter-cm", type=int)
    se.add_argument("--catheter-nl-per-cm", type=int)
    lg = add(sub, "log", cmd_log, "download the event log (only what is new)")
    lg.add_argument("--since", type=int, default=None, help="sequence number to start after (default: last download)")
    lg.add_argument("--csv", action="store_true", help="CSV instead of a table")
    hi = add(sub, "history", cmd_history, "programmed against delivered, per hour")
    hi.add_argument("--days", type=int, default=1)
    hi.add_argument("--plot", help="write a PNG plot here")
    ca = add(sub, "calibrate", cmd_calibrate, "calibration wizard: pump a volume, weigh it, store volume per step")
    ca.add_argument("--volume-ul", type=int, default=500, help="volume to pump (default 500 µL)")
    ca.add_argument("--minutes", type=int, action="append",
                    help="how long a run takes (default 10); repeat to calibrate at several rates, the mean is stored")
    ca.add_argument("--mass-mg", type=float, help="the weighed mass; default: read the bench scale, or ask")
    ca.add_argument("--temperature", type=float, default=20.0, help="water temperature, °C (density)")
    ca.add_argument("--force", action="store_true", help="accept a result far from the last calibration")
    add(sub, "provision", cmd_provision, "new per-device keys for clinician and patient")
    from . import cli_lab, cli_pico
    cli_lab.register(sub, add)
    cli_pico.register(sub, add)
    return p


def _defaults(args: argparse.Namespace) -> None:
    for k, v in (("json", False), ("port", None), ("pico", False), ("bench_dir", None), ("timeout", 5.0), ("yes", False), ("role", "clinician")):
        if not hasattr(args, k):
            setattr(args, k, v)


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.role_set = getattr(args, "role", None)
    _defaults(args)
    fn = getattr(args, "fn", None)
    if fn is None:
        parser.print_help()
        return 2
    try:
        if args.pico and not args.port:
            from . import pico
            args.port = pico.find().port
        out = fn(args)
    except PumpctlError as e:
        if args.json:
            print(json.dumps({"error": {"code": e.code, "message": e.message}}))
        else:
            print(f"pumpctl: {e.message}" + (f" [{e.code}]" if isinstance(e, DeviceError) else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pumpctl: interrupted", file=sys.stderr)
        return 130
    try:
        if args.json:
            print(json.dumps(out.data))
        else:
            print(out.text)
        sys.stdout.flush()
    except BrokenPipeError:
        # `pumpctl log | head`: the reader left; say nothing more (and no traceback at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
