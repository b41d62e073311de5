"""pumpctl: the clinician's external programmer for the bench ITB pump emulator. This module
is the parser (every command name and flag) and main() (--json or words, an error as one
sentence); the commands are in cli_pump, cli_bench, cli_lab and cli_pico, each built on api.

RESEARCH AND EDUCATION PROTOTYPE. NEVER FOR HUMAN USE.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Callable, NoReturn, Optional

from . import __version__
from .cli_bench import (cmd_bench_advance, cmd_bench_fault, cmd_bench_power_cycle, cmd_bench_show,
                        cmd_bench_start, cmd_bench_stop, cmd_bench_list, cmd_bench_press, cmd_bench_fill)
from .cli_pump import (cmd_alarms, cmd_alarms_ack, cmd_alarms_pause, cmd_alarms_test, cmd_bolus, cmd_bridge,
                       cmd_calibrate, cmd_drugs, cmd_history, cmd_identify, cmd_log, cmd_patient_bolus, cmd_prime,
                       cmd_program_continuous, cmd_program_set, cmd_program_show, cmd_provision, cmd_refill,
                       cmd_resume, cmd_settings, cmd_status, cmd_stop, cmd_time_sync)
from .benchctl import EVENTS as BENCH_EVENTS, FAULTS
from .cli_args import whole
from .errors import DeviceError, PumpctlError
from .output import Out
from .render import DISCLAIMER


# ---- parser ----------------------------------------------------------------------------------
class ArgumentError(Exception):
    """A command line argparse refused: one sentence, shown as words or as a --json error."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class Parser(argparse.ArgumentParser):
    """argparse that raises ArgumentError instead of printing usage and exiting, so main()
    can answer a bad command line with `{"error": ...}` under --json (subparsers inherit it)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        raise ArgumentError(f"{self.prog}: {message}", self.format_usage())


def build_parser() -> argparse.ArgumentParser:
    common = Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object (for scripts)")
    common.add_argument("--port", default=argparse.SUPPRESS, help="serial port of a real board (default: the running virtual bench)")
    common.add_argument("--bench-dir", default=argparse.SUPPRESS, help="directory of the virtual bench to talk to")
    common.add_argument("--pico", action="store_true", default=argparse.SUPPRESS,
                        help="talk to the emulated Pico started last (`pumpctl pico start`) over its USB port")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS, help="seconds to wait for each reply (default 5)")
    common.add_argument("--role", choices=("clinician", "patient"), default=argparse.SUPPRESS,
                        help="whose key signs the commands (default clinician; patient-bolus uses patient)")

    p = Parser(
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
    bs.add_argument("--fresh", action="store_true",
                    help="erase the bench's flash image first (a new pump); without it an existing bench directory boots from its flash")
    add(bsub, "stop", cmd_bench_stop, "stop the virtual bench (its flash, water and keys stay for the next start)")
    add(bsub, "list", cmd_bench_list, "the virtual benches this user runs, and which one pumpctl talks to from here")
    add(bsub, "press", cmd_bench_press, "press the patient bolus button once (the firmware's button path)")
    bfl = add(bsub, "fill", cmd_bench_fill, "empty the bench's reservoir and fill it with water (then tell the pump: `pumpctl refill`)")
    bfl.add_argument("volume", metavar="VOLUME", help="water to put in, with its unit: 20mL, 18000uL")
    ba = add(bsub, "advance", cmd_bench_advance,
             "move a lockstep bench's virtual time forward: by a DURATION, or --until an event or a date")
    ba.add_argument("duration", nargs="?", metavar="DURATION", help="how long, e.g. 90s, 15m, 6h, 2d (or give --until)")
    ba.add_argument("--until", metavar="WHEN",
                    help="stop at an event: " + ", ".join(BENCH_EVENTS) + " (next-alarm: any alarm not listed now); "
                    "or at a time of the pump's clock, UTC: 2027-03-01, 2027-03-01T08:00")
    ba.add_argument("--cap", metavar="DURATION",
                    help="with --until: stop after this much virtual time if WHEN has not come (default 400d)")
    add(bsub, "show", cmd_bench_show, "the physical truth: water moved, reservoir, clock")
    bf = add(bsub, "fault", cmd_bench_fault, "inject a fault the bench can fake")
    bf.add_argument("fault", choices=FAULTS, help="which fault: " + ", ".join(FAULTS))
    bf.add_argument("--mv", type=int, help="battery voltage in mV (battery fault)")
    bf.add_argument("--clear", action="store_true",
                    help="clear the fault: the outlet flows, a fresh cell, the water back, the clock back, the task runs")
    bp = add(bsub, "power-cycle", cmd_bench_power_cycle, "cut the power (no save) and restore it; the firmware reboots")
    bp.add_argument("--down", help="how long the power stays off, e.g. 2h (wall clock moves on)")

    add(sub, "identify", cmd_identify, "who the pump is: board, firmware, protocol")
    add(sub, "status", cmd_status, "state, rate, reservoir, delivered volume and alarms")

    pr = sub.add_parser("program", help="read or write the therapy program")
    psub = pr.add_subparsers(dest="program_command", metavar="ACTION")
    ps = add(psub, "set", cmd_program_set, "write a program file (TOML, see docs/programs.md) after showing old and new")
    ps.add_argument("file", help="the program file, TOML (examples/programs/)")
    ps.add_argument("--yes", action="store_true",
                    help="write without asking (needed when not on a terminal, and with --json)")
    pc = add(psub, "continuous", cmd_program_continuous, "simple continuous dosing")
    pc.add_argument("rate", type=whole("µg/day"), help="dose rate in µg/day")
    pc.add_argument("--concentration", type=whole("µg/mL"), required=True, help="drug concentration in µg/mL")
    pc.add_argument("--drug", default="baclofen", help="drug name from the pump's library (default baclofen)")
    pc.add_argument("--yes", action="store_true",
                    help="write without asking (needed when not on a terminal, and with --json)")
    add(psub, "show", cmd_program_show, "the program the pump holds")

    add(sub, "stop", cmd_stop, "stop delivery")
    add(sub, "resume", cmd_resume, "resume the program (no catch-up of missed delivery)")
    t = sub.add_parser("time", help="the pump's wall clock")
    tsub = t.add_subparsers(dest="time_command", metavar="ACTION")
    ts = add(tsub, "sync", cmd_time_sync, "set the pump's clock from this computer (UTC)")
    ts.add_argument("--at", metavar="WHEN",
                    help="set this time instead, UTC unless it names a zone: 2026-01-05, 2026-01-05T09:00 or 2026-01-05T09:00:00")

    al = add(sub, "alarms", cmd_alarms, "active alarms")
    asub = al.add_subparsers(dest="alarms_command", metavar="ACTION")
    aa = add(asub, "ack", cmd_alarms_ack, "acknowledge an alarm (CODE or all)")
    aa.add_argument("code", help="the alarm's code as `pumpctl alarms` lists it (e.g. BATTERY_ERI), or all")
    ap = add(asub, "pause", cmd_alarms_pause, "pause alarm audio for a while (default 2m)")
    ap.add_argument("duration", nargs="?", default="2m", metavar="DURATION",
                    help="how long the buzzer stays silent: 1 s to 15 min, written 90s, 5m, 15m (default 2m); the lights stay on")
    add(sub, "drugs", cmd_drugs, "the drug library on the pump and its limits")
    add(asub, "test", cmd_alarms_test, "sound each alarm pattern once")

    bo = add(sub, "bolus", cmd_bolus, "clinician bolus (trial dose); the program resumes after")
    bo.add_argument("dose_ug", type=whole("µg"), help="dose in µg")
    bo.add_argument("--duration", default="10m", help="how long, whole minutes from 1m to 24h (default 10m)")
    bo.add_argument("--override", action="append", metavar="LIMIT",
                    help="confirm a soft limit by its name, e.g. bolus_dose (`pumpctl drugs` lists them); repeat for more")
    add(sub, "patient-bolus", cmd_patient_bolus, "ask for a patient bolus (patient key; lockout and daily limit apply)")
    pm = add(sub, "prime", cmd_prime, "priming bolus: fill pump tubing and catheter (volume, not dose)")
    pm.add_argument("--minutes", type=whole("min"), default=10, help="how long the priming bolus takes, min (default 10)")
    pm.add_argument("--tubing-ul", type=whole("µL"), help="pump tubing volume to fill, µL (default: the pump's setting)")
    pm.add_argument("--catheter-cm", type=whole("cm"), help="catheter length to fill, cm (default: the pump's setting)")
    pm.add_argument("--catheter-nl-per-cm", type=whole("nL per cm"),
                    help="catheter volume per cm, nL (default: the pump's setting)")
    add(sub, "bridge", cmd_bridge, "show the bridge bolus after a concentration change")
    rf = add(sub, "refill", cmd_refill, "empty-and-refill: compare withdrawn with expected, then the new volume")
    rf.add_argument("--withdrawn-ul", type=whole("µL"), required=True, help="volume withdrawn from the reservoir, µL")
    rf.add_argument("--volume-ul", type=whole("µL"), required=True, help="new volume filled, µL")
    rf.add_argument("--concentration", type=whole("µg/mL"), help="new concentration, µg/mL (if it changes)")
    rf.add_argument("--bridge", action="store_true", help="bridge bolus for a concentration change")
    se = add(sub, "settings", cmd_settings, "pump settings: low-reservoir threshold, stopped alarm, catheter")
    se.add_argument("--low-reservoir-ul", type=whole("µL"), help="volume left at which the low-reservoir alarm comes, µL")
    se.add_argument("--stopped-alarm-h", type=whole("h"), help="hours stopped before the stopped-too-long alarm, h")
    se.add_argument("--tubing-ul", type=whole("µL"), help="pump tubing volume (priming and bridge boluses), µL")
    se.add_argument("--catheter-cm", type=whole("cm"), help="catheter length, cm")
    se.add_argument("--catheter-nl-per-cm", type=whole("nL per cm"), help="catheter volume per cm of length, nL")
    lg = add(sub, "log", cmd_log, "download the event log (only what is new)")
    lg.add_argument("--since", type=whole("", 0), default=None, help="sequence number to start after (default: last download)")
    lg.add_argument("--csv", action="store_true", help="CSV instead of a table")
    lg.add_argument("--refusals", action="store_true",
                    help="the refusals log instead (auth failures, bad frames, patient refusals, replays, counts)")
    hi = add(sub, "history", cmd_history, "programmed against delivered, per hour")
    hi.add_argument("--days", type=whole("days"), default=1, help="how many days back, 1 to 104 (default 1: the last 24 h)")
    hi.add_argument("--plot", metavar="FILE.png", help="write a PNG plot here")
    ca = add(sub, "calibrate", cmd_calibrate, "calibration wizard: pump a volume, weigh it, store volume per step")
    ca.add_argument("--volume-ul", type=whole("µL"), default=500, help="volume to pump (default 500 µL)")
    ca.add_argument("--minutes", type=whole("min"), action="append",
                    help="how long a run takes (default 10); repeat to calibrate at several rates, the mean is stored")
    ca.add_argument("--mass-mg", type=float, help="the weighed mass; default: read the bench scale, or ask")
    ca.add_argument("--temperature", type=float, default=20.0, help="water temperature, °C (density)")
    ca.add_argument("--force", action="store_true", help="accept a result far from the last calibration")
    add(sub, "provision", cmd_provision, "new per-device keys for clinician and patient")
    from . import cli_lab, cli_pico, cli_report
    cli_lab.register(sub, add)
    cli_pico.register(sub, add)
    cli_report.register(sub, add)
    __import__("pumpctl.cli_ui").cli_ui.register(sub, add)  # `pumpctl ui`: the web app (docs/web.md)
    return p


CACHED_NOTE = ("ANSWERED FROM THE RETRY CACHE: the pump had already carried out this very request once and "
               "repeated its earlier reply; nothing ran again.")


def _defaults(args: argparse.Namespace) -> None:
    for k, v in (("json", False), ("port", None), ("pico", False), ("bench_dir", None), ("timeout", 5.0), ("yes", False), ("role", "clinician")):
        if not hasattr(args, k):
            setattr(args, k, v)


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    raw = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(raw)
    except ArgumentError as e:
        if "--json" in raw:
            print(json.dumps({"error": {"code": "USAGE", "message": e.message}}))
        else:
            print(e.usage.rstrip() + "\n" + e.message, file=sys.stderr)
        return 2
    args.role_set = getattr(args, "role", None)
    _defaults(args)
    fn = getattr(args, "fn", None)
    if fn is None:
        if args.json:
            print(json.dumps({"error": {"code": "USAGE", "message": "pumpctl: name a command (pumpctl --help lists them)"}}))
        else:
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
    if isinstance(out.data, dict) and out.data.get("cached") is True:
        out.text = CACHED_NOTE + "\n" + out.text
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
