#!/usr/bin/env python3
"""A titration schedule on the virtual bench: start low and raise the daily dose by a fixed
step each day up to a target, as a clinician titrates baclofen, then check what the bench
really delivered each hour and plot programmed against delivered.

    .venv/bin/python examples/titration.py [--start 100] [--step 50] [--target 300] [--out titration.png]

Research and education prototype: never for human use.
"""
from __future__ import annotations

import argparse

from _benchutil import pump_on_bench
from pumpctl import plots

HOUR_MS = 3_600_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=int, default=100, help="first day's dose, µg/day")
    ap.add_argument("--step", type=int, default=50, help="daily increase, µg/day")
    ap.add_argument("--target", type=int, default=300, help="final dose, µg/day")
    ap.add_argument("--concentration", type=int, default=2000, help="baclofen µg/mL")
    ap.add_argument("--out", default="titration.png", help="PNG of programmed vs delivered per hour")
    ap.add_argument("--use-running", action="store_true", help="use the running bench instead of a private one")
    a = ap.parse_args()
    if a.start <= 0 or a.step <= 0 or a.target < a.start:
        ap.error("need 0 < start <= target and step > 0")
    rows = []
    with pump_on_bench(a.use_running) as pump:
        rate, day = a.start, 0
        print("day  µg/day  delivered µg  (bench outlet so far, µL)")
        while True:
            pump.program_continuous(rate, a.concentration, confirm=True)
            day_start = pump.status()["delivered_ug"]
            for h in range(24):
                before = pump.status()["delivered_ug"]
                pump.bench_advance(HOUR_MS)
                after = pump.status()["delivered_ug"]
                rows.append({"hour": day * 24 + h, "programmed_ug": rate / 24, "delivered_ug": after - before})
            st = pump.status()
            print(f"{day + 1:3}  {rate:6}  {st['delivered_ug'] - day_start:12}  ({pump.bench_show()['outlet_nl'] / 1000:.1f})")
            if rate >= a.target:
                break
            rate = min(a.target, rate + a.step)
            day += 1
    print("wrote", plots.history(rows, a.out, title="Titration: programmed and delivered µg per hour"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
