"""Run the end-to-end suite at several start times of the pump's clock (make e2e-phases).

`make test` starts every bench at one fixed time (tests/e2e/conftest.py, DEFAULT_WALL) so a run
is reproducible. What the firmware does between its quarter-hour checks depends on where they
fall against the test's own timeline (a batch cut short at a quarter hour, a history hour, a
midnight), so this runs the suite again at other start times: evenly spread over a quarter hour,
each moved by a random number of milliseconds (seeded, printed), plus any given with --wall.
A failure prints the E2E_WALL that replays it.

usage: python tests/e2e/phases.py [--phases N] [--seed S] [--wall DAY,MS ...] [-- pytest args]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUARTER_MS = 900_000
BASE_DAY = 9800  # 2026-10-31
BASE_MS = 36_000_000  # 10:00:00


def walls(phases: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(phases):
        before = (i * QUARTER_MS) // phases + rng.randrange(1000)
        out.append(f"{BASE_DAY},{BASE_MS - before}")
    return out


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", type=int, default=6, help="start times spread over a quarter hour")
    ap.add_argument("--seed", type=int, default=None, help="the random milliseconds (default: time)")
    ap.add_argument("--wall", action="append", default=[], help="also run at DAY,MS")
    ap.add_argument("--workers", default=os.environ.get("TEST_WORKERS", "2"))
    a = ap.parse_args(argv)
    if a.phases < 0:
        ap.error("--phases must be 0 or more")
    seed = a.seed if a.seed is not None else int(time.time())
    todo = walls(a.phases, seed) + a.wall
    print(f"e2e suite at {len(todo)} start times (seed {seed})", flush=True)
    failed = []
    for n, wall in enumerate(todo, 1):
        t0 = time.monotonic()
        env = dict(os.environ, E2E_WALL=wall, PYTHONPATH="tests")
        cmd = [sys.executable, "-m", "pytest", "-q", "-n", a.workers, "tests/e2e", *extra]
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        lines = r.stdout.strip().splitlines()
        summary = lines[-1] if lines else "(no output)"
        print(f"[{n}/{len(todo)}] E2E_WALL={wall}: {summary} ({time.monotonic() - t0:.0f} s)", flush=True)
        if r.returncode != 0:
            failed.append(wall)
            for line in lines:
                if line.startswith("FAILED") or line.startswith("ERROR"):
                    print("    " + line)
    if failed:
        print("failed at: " + " ".join(failed))
        print("replay one with: E2E_WALL=<day,ms> PYTHONPATH=tests .venv/bin/python -m pytest tests/e2e")
        return 1
    print("all start times passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
