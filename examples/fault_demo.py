#!/usr/bin/env python3
"""A fault demonstration on the virtual bench: the pump refuses a dangerous program (with the
device's error code), runs a small reservoir down to the low-reservoir and empty alarms,
and, where the bench offers fault injection on its control channel, blocks the outlet so the
head turns while the line pressure rises and the driver stalls.

    .venv/bin/python examples/fault_demo.py [--quick]

The reservoir part takes about a minute: in lockstep the bench computes every buzzer edge of the
alarms it sounds. --quick skips it.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import sys

from _benchutil import pump_on_bench
from pumpctl.errors import BenchError, DeviceError

HOUR_MS = 3_600_000


def alarms_line(pump) -> str:
    act = pump.alarms().get("active") or []
    return ", ".join(f"{a['code']} ({a['priority']}, {a['state']})" for a in act) or "none"


def main() -> int:
    # 3 mL of water: 1 mL above the 2 mL low-reservoir threshold. A roomy heap: the bench's
    # buzzer timeline (boards/sim/board.py) can outgrow the Pico-sized one while alarms sound.
    with pump_on_bench(reservoir_ul=3_000, heap="1M") as pump:
        print("1. A dangerous program is refused and nothing changes:")
        try:
            pump.program_continuous(10_000_000, 2000, confirm=True)
        except DeviceError as e:
            print(f"   refused [{e.code}]: {e.message}")
        print(f"   program now: {pump.program_show().get('program')}")
        if "--quick" in sys.argv:
            print("2. (reservoir run-down skipped: --quick)")
            return 0

        print("2. Water at 2400 µL/day runs the 3 mL reservoir down:")
        pump.program_continuous(2400, 1000, "water", confirm=True)
        for h in range(0, 36, 6):
            st = pump.status()
            print(f"   {h:2} h: reservoir {st['reservoir_ul']:5} µL, state {st['state']:8} alarms: {alarms_line(pump)}")
            try:
                pump.bench_advance(6 * HOUR_MS)
            except BenchError as e:
                print(f"   the bench stopped: {e.message} (see its bench.log)")
                return 1
        show = pump.bench_show()
        print(f"   bench: outlet {show['outlet_nl'] / 1000:.1f} µL, steps that moved only air {show['dry_steps']}")
        print(f"   acknowledged: {pump.ack('all').get('acknowledged')}")
        print(f"   alarms now: {alarms_line(pump)}")

    print("3. Blocked outlet (occlusion):")
    with pump_on_bench() as pump:
        pump.program_continuous(7200, 1000, "water", confirm=True)  # 5 µL/min
        try:
            pump.bench_control({"cmd": "fault", "fault": "block_outlet", "on": True})
        except BenchError as e:
            print(f"   this bench cannot inject a blocked outlet yet ({e.message})")
            return 0
        for m in range(0, 5):
            s = pump.bench_show()
            print(f"   {m} min: head {s['head_steps']} steps, outlet {s['outlet_nl'] / 1000:.2f} µL, "
                  f"pressure {s.get('pressure_kpa')} kPa, stalled {s.get('stalled')}; alarms: {alarms_line(pump)}")
            pump.bench_advance(60_000)
        before = pump.bench_show()["outlet_nl"]
        pump.bench_control({"cmd": "fault", "fault": "block_outlet", "on": False})
        print(f"   cleared: {(pump.bench_show()['outlet_nl'] - before) / 1000:.2f} µL bolus released at once")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
