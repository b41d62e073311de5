"""`make test` runs two pytest-xdist workers with `--dist loadgroup`; tests/conftest.py schedules
each file (or emulated-Pico group) as one unit, so a file's tests run on one worker, in order,
and its module fixtures are built once. pytest-xdist's own grouping stopped working with
pytest 9 without any test failing; this one fails if a file is ever split again."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FILES = ("tests/host/test_frames.py", "tests/host/test_signing.py")


def test_each_file_runs_on_one_worker_in_order() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    out = subprocess.run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-n", "2",
                          "--dist", "loadgroup", *FILES], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300).stdout
    ran = re.findall(r"^\[(gw\d+)\] \[\s*\d+%\] PASSED (\S+?)::(.+?) *$", out, re.M)
    assert len(ran) > 10, out[-2000:]
    workers: dict[str, set[str]] = defaultdict(set)
    order: dict[str, list[str]] = defaultdict(list)
    for gw, path, name in ran:
        workers[path].add(gw)
        order[path].append(name)
    assert set(workers) == set(FILES)
    for path in FILES:
        assert len(workers[path]) == 1, (path, workers[path])
    collected = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *FILES],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=300).stdout
    for path in FILES:
        want = [line.split("::", 1)[1] for line in collected.splitlines() if line.startswith(path + "::")]
        assert order[path] == want, path
