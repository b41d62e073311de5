"""The `pumpctl bench ...` commands: the virtual bench through api.bench / api.start_bench.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Optional

from . import api, benchctl, paths, render
from . import bench as benchmod
from .cli_args import bench, duration_arg
from .durations import format_ms
from .errors import UsageError
from .output import Out
from .progress import Progress


_FLASH_SENTENCE = {
    "kept": "It booted from the flash image already in {dir} (a power-on: program, reservoir, keys and log "
            "kept); `--fresh` erases it.",
    "erased": "--fresh: the flash image in {dir} was erased first (program, reservoir, keys and log are gone): "
              "a new pump.",
    "new": "A new flash image was made in {dir}; the next `bench start` there boots from it.",
}


def cmd_bench_start(args: argparse.Namespace) -> Out:
    fresh = bool(getattr(args, "fresh", False))
    b = api.start_bench(Path(args.dir) if args.dir else None, lockstep=not args.speed, speed=args.speed or 1,
                        true_pl=args.true_pl, nominal_pl=args.nominal_pl, reservoir_ul=args.reservoir_ul,
                        model_ml=args.model_ml, heap_lock_tick=args.heap_lock_tick, realistic=args.realistic,
                        wall=None if args.no_clock else "now", fresh=fresh)
    text = render.bench_started_text(b.info.d, str(b.dir / "bench.log"), args.speed)
    text += "\n" + _FLASH_SENTENCE[b.info.d["flash"]].format(dir=b.dir)
    if b.info.d.get("physics_kept"):
        text += " Its water, beaker and battery are as the last run left them (`bench fill` to refill)."
    return Out(b.info.d, text)


def cmd_bench_list(args: argparse.Namespace) -> Out:
    benches = benchmod.list_benches()
    chosen = None
    if any(b["alive"] for b in benches):
        last = paths.current_bench_file()
        chosen = benchmod.choose(benches, Path.cwd().resolve(),
                                 last.read_text().strip() if last.exists() else None)
    for b in benches:
        b["chosen"] = b["dir"] == chosen
    if not benches:
        return Out({"benches": []}, "No virtual bench is running for this user: start one with `pumpctl bench start`.")
    rows = [("*" if b["chosen"] else "", b["dir"], str(b["pid"]), b["port"] or "",
             _dt.datetime.fromtimestamp(b["started"]).strftime("%Y-%m-%d %H:%M") if b["started"] else "",
             "yes" if b["alive"] else "no (see its bench.log)") for b in benches]
    text = render.table(rows, ("use", "dir", "pid", "port", "started", "alive"))
    if chosen:
        text += "\n* the bench pumpctl talks to from here (started in or above this directory, else the last started)."
    return Out({"benches": benches}, text)


def cmd_bench_press(args: argparse.Namespace) -> Out:
    d = bench(args).press()
    rec = d.get("record") or {}
    data = rec.get("data") or {}
    outcome = d.get("outcome") or data.get("outcome")
    why = f": {data['why']}" if data.get("why") else ""
    if outcome is None:
        text = "Button pressed; the firmware recorded no patient bolus request (see `pumpctl log`)."
    elif outcome == "delivered":
        text = "Button pressed: the pump started a patient bolus."
    else:
        text = f"Button pressed: the pump refused the patient bolus ({outcome.replace('_', ' ')}{why})."
    return Out(d, text)


def cmd_bench_fill(args: argparse.Namespace) -> Out:
    ul = benchctl.parse_volume_ul(args.volume)  # a bad volume is refused before a bench is looked for
    d = bench(args).fill(ul)
    return Out(d, f"Bench reservoir emptied ({d['withdrawn_ul']} µL of water withdrawn) and filled with "
                  f"{d['volume_ul']} µL. Tell the pump with `pumpctl refill --withdrawn-ul {d['withdrawn_ul']} "
                  f"--volume-ul {d['volume_ul']}` (a refill on the bench also fills the bench itself).")


def cmd_bench_stop(args: argparse.Namespace) -> Out:
    b = bench(args)
    b.stop()
    return Out({"stopped": True, "dir": str(b.dir)},
               f"Virtual bench stopped. Its flash, water and keys stay in {b.dir}: `pumpctl bench start --dir {b.dir}` "
               "boots from them (`--fresh` erases them).")


def cmd_bench_advance(args: argparse.Namespace) -> Out:
    until, cap = getattr(args, "until", None), getattr(args, "cap", None)
    if until is not None:
        return _advance_until(args, until, cap)
    if args.duration is None:
        raise UsageError("bench advance needs a DURATION (e.g. 6h, 2d) or --until WHEN (an event such as "
                         "low-reservoir, or a date such as 2027-03-01)")
    if cap is not None:
        raise UsageError("--cap goes with --until; a DURATION is already how far to go")
    b = bench(args)
    total = duration_arg(args.duration)
    with Progress(total, f"advancing {format_ms(total)}", enabled=not args.json and total > 86_400_000) as bar:
        clock = b.advance(total, bar.update)
    return Out({"advanced_ms": total, "clock": clock, "until": None, "hit": None, "stopped_by": "time"},
               render.advanced_text(total, clock))


def _advance_until(args: argparse.Namespace, until: str, cap: Optional[str]) -> Out:
    if args.duration is not None:
        raise UsageError("give a DURATION or --until WHEN, not both")
    target = benchctl.parse_when(until)  # a bad WHEN is refused before any bench is looked for
    cap_ms = duration_arg(cap) if cap is not None else benchctl.DEFAULT_CAP_MS
    if cap_ms <= 0:
        raise UsageError("--cap must be more than 0, e.g. 45d")
    b = bench(args)
    span = b.until_span(target, cap_ms)
    what = target if isinstance(target, str) else f"{target:%Y-%m-%d %H:%M}"
    with Progress(span, f"until {what}: day 0", enabled=not args.json) as bar:
        def told(done: int) -> None:
            bar.label = f"until {what}: day {done // 86_400_000} of {-(-span // 86_400_000)}"
            bar.update(done)
        res = b.advance_until(target, cap_ms, told)
    return Out(res, render.advanced_until_text(res))


def cmd_bench_show(args: argparse.Namespace) -> Out:
    d = bench(args).show()
    return Out(d, render.bench_show_text(d))


_CLEARED = {
    "block-outlet": "the outlet flows again; the water held in the tubing was released",
    "battery": "a fresh cell: {battery_mv} mV",
    "reservoir-empty": "the water the fault took away is back: the reservoir holds {reservoir_true_ul} µL",
    "clock-loss": "the pump's real-time clock runs again at the time it would have kept",
    "hang": "the control task runs again",
}


def cmd_bench_fault(args: argparse.Namespace) -> Out:
    d = bench(args).fault(args.fault, on=not args.clear, mv=args.mv)
    if not args.clear:
        return Out(d, f"Bench fault {args.fault} injected.")
    vals = dict(d)
    if "reservoir_true_nl" in d:
        vals["reservoir_true_ul"] = d["reservoir_true_nl"] // 1000
    what = _CLEARED[args.fault].format(**vals) if args.fault != "clock-loss" or d.get("wall") else \
        "the pump's clock was not set before the fault: set it with `pumpctl time sync`"
    return Out(d, f"Bench fault {args.fault} cleared: {what}.")


def cmd_bench_power_cycle(args: argparse.Namespace) -> Out:
    b = bench(args)
    down = duration_arg(args.down) if args.down else 0
    b.power_cycle(down)
    return Out(b.info.d, f"Power cut and restored after {format_ms(down)}; the firmware booted from its flash.")
