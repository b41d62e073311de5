"""pumpctl: the clinician's external programmer for the bench ITB pump emulator.

RESEARCH AND EDUCATION PROTOTYPE. NEVER FOR HUMAN USE.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from . import __version__, bench, programs
from .durations import format_ms, parse_ms
from .errors import BenchError, DeviceError, LinkError, PumpctlError, UsageError
from .link import Link
from .progress import Progress

DISCLAIMER = "Research and education prototype: never for human use."
EPOCH_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class Out:
    """One result: data for --json, sentences for people."""

    def __init__(self, data: Any, text: str = "") -> None:
        self.data = data
        self.text = text


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
                       model_ml=args.model_ml, heap_lock_tick=args.heap_lock_tick)
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
    for e in d["drugs"]:
        lines.append(f"{e.get('name')}: concentrations {e.get('concs') or e.get('concentrations')} µg/mL")
        lim = e.get("limits") or {}
        rows = [(k, str(v.get("soft") if isinstance(v, dict) else v), str(v.get("hard") if isinstance(v, dict) else "")) for k, v in lim.items()]
        if rows:
            lines.append(table(rows, ("limit", "soft", "hard")))
    return Out(d, "\n".join(lines) if lines else json.dumps(d, indent=2))


# ---- parser ----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object (for scripts)")
    common.add_argument("--port", default=argparse.SUPPRESS, help="serial port of a real board (default: the running virtual bench)")
    common.add_argument("--bench-dir", default=argparse.SUPPRESS, help="directory of the virtual bench to talk to")
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
    add(bsub, "stop", cmd_bench_stop, "stop the virtual bench")
    ba = add(bsub, "advance", cmd_bench_advance, "move a lockstep bench's virtual time forward")
    ba.add_argument("duration", help="e.g. 90s, 15m, 6h, 2d")
    add(bsub, "show", cmd_bench_show, "the physical truth: water moved, reservoir, clock")

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
    return p


def _defaults(args: argparse.Namespace) -> None:
    for k, v in (("json", False), ("port", None), ("bench_dir", None), ("timeout", 5.0), ("yes", False), ("role", "clinician")):
        if not hasattr(args, k):
            setattr(args, k, v)


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _defaults(args)
    fn = getattr(args, "fn", None)
    if fn is None:
        parser.print_help()
        return 2
    try:
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
    if args.json:
        print(json.dumps(out.data))
    else:
        print(out.text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
