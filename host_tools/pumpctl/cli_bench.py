"""The `pumpctl bench ...` commands: the virtual bench through api.bench / api.start_bench.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from . import api, render
from .cli_args import bench, duration_arg
from .durations import format_ms
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
    b = bench(args)
    total = duration_arg(args.duration)
    with Progress(total, f"advancing {format_ms(total)}", enabled=not args.json and total > 86_400_000) as bar:
        clock = b.advance(total, bar.update)
    return Out({"advanced_ms": total, "clock": clock}, render.advanced_text(total, clock))


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
