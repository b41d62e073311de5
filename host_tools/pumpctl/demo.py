"""`make demo`: the pump firmware doses water on a virtual bench, and says what happened.

RESEARCH AND EDUCATION PROTOTYPE: NEVER FOR HUMAN USE.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from . import api
from .render import DISCLAIMER, status_text


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    t0 = time.monotonic()
    say("Bench ITB pump emulator: demo on the virtual bench.")
    say(DISCLAIMER.upper())
    say()
    with tempfile.TemporaryDirectory(prefix="pumpdemo-") as tmp:
        os.environ["PUMPCTL_HOME"] = str(Path(tmp) / "home")
        say("1. Starting the virtual bench: the real MicroPython interpreter runs the pump firmware")
        say("   on a simulated stepper pump head, at a Pico's heap size, in lockstep virtual time.")
        say("   Its head really moves 50.75 nL per step, 1.5 % more than the 50 nL calibration says.")
        bench = api.start_bench(Path(tmp) / "bench", lockstep=True, true_pl=50_750, nominal_pl=50_000)
        try:
            say(f"   The firmware's programmer port is {bench.info.port}, a serial port like a Pico's /dev/ttyACM0.")
            with api.connect(bench_dir=bench.dir) as pump:
                ident = pump.identify()
                say(f"   It answers: {ident['banner']}")
                say()
                say("2. Programming 500 µg/day of baclofen at 2000 µg/mL (simple continuous): that is")
                say("   0.25 mL a day, the example in docs/programs.md.")
                pump.program_continuous(500, 2000, "baclofen", confirm=True)
                say()
                say("3. Fast-forwarding one day of virtual time (every step happens, in order)...")
                t1 = time.monotonic()
                bench.advance(86_400_000)
                say(f"   done in {time.monotonic() - t1:.1f} s of real time.")
                st = pump.status()
            truth = bench.show()
            say()
            say("4. What the pump reports (pumpctl status):")
            say("   " + status_text(st).replace("\n", "\n   "))
            say()
            say("5. What really happened on the bench (pumpctl bench show):")
            say(f"   The head turned {truth['head_steps']} steps and {truth['outlet_nl'] / 1000:.1f} µL of water reached the outlet;")
            say(f"   {truth['reservoir_true_nl'] / 1000:.1f} µL is left in the reservoir.")
            say()
            say("What happened, in plain words:")
            say(f"  The firmware integrated 500 µg/day over 24 h in whole numbers and commanded exactly")
            say(f"  {st['delivered_steps']} steps: 500 µg / 2000 µg/mL = 250 µL, / 50 nL per step = 5000 steps.")
            say(f"  It believes {st['delivered_ul']} µL went out. The outlet got {truth['outlet_nl'] / 1000:.1f} µL because each")
            say("  step really moves 1.5 % more than calibrated: the pump cannot know that by counting.")
            say("  That is why a real pump must be calibrated (pumpctl calibrate) and why its low-reservoir")
            say("  alarm, computed from commanded steps, can come late when a pump over-delivers.")
        finally:
            bench.stop()
            say()
            say("The virtual bench is stopped. Try it yourself: `.venv/bin/pumpctl bench start`, then")
            say("`.venv/bin/pumpctl --help`. All tests: `make test`.")
    say(f"(demo took {time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
