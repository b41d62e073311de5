"""The `pumpctl bench ...` commands: the virtual bench through api.bench / api.start_bench.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from . import api, benchctl, render
from .cli_args import bench, duration_arg
from .durations import format_ms
from .errors import UsageError
from .output import Out
from .progress import Progress


def cmd_bench_start(args: argparse.Namespace) -> Out:
    b = api.start_bench(Path(args.dir) if args.dir else None, lockstep=not args.speed, speed=args.speed or 1,
                        true_pl=args.true_pl, nominal_pl=args.nominal_pl, reservoir_ul=args.reservoir_ul,
                        model_ml=args.model_ml, heap_lock_tick=args.heap_lock_tick, realistic=args.realistic,
                        wall=None if args.no_clock else "now")
    return Out(b.info.d, render.bench_started_text(b.info.d, str(b.dir / "bench.log"), args.speed))


def cmd_bench_stop(args: argparse.Namespace) -> Out:
    b = bench(args)
    b.stop()
    return Out({"stopped": True, "dir": str(b.dir)}, "Virtual bench stopped.")


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


def cmd_bench_fault(args: argparse.Namespace) -> Out:
    d = bench(args).fault(args.fault, on=not args.clear, mv=args.mv)
    return Out(d, f"Bench fault {args.fault} {'cleared' if args.clear else 'injected'}.")


def cmd_bench_power_cycle(args: argparse.Namespace) -> Out:
    b = bench(args)
    down = duration_arg(args.down) if args.down else 0
    b.power_cycle(down)
    return Out(b.info.d, f"Power cut and restored after {format_ms(down)}; the firmware booted from its flash.")
