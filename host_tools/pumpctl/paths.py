"""Where things live: the repository (firmware, boards), the interpreter, the bench state."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .errors import BenchError


def repo_root() -> Path:
    env = os.environ.get("PUMPCTL_ROOT")
    root = Path(env) if env else Path(__file__).resolve().parents[2]
    if not (root / "firmware" / "app.py").exists():
        raise BenchError(f"cannot find the firmware next to pumpctl (looked in {root}); set PUMPCTL_ROOT")
    return root


def micropython() -> str:
    env = os.environ.get("MICROPYTHON")
    if env:
        return env
    cand = Path(sys.executable).parent / "micropython"
    if cand.exists():
        return str(cand)
    found = shutil.which("micropython")
    if found:
        return found
    raise BenchError("no MicroPython interpreter: run `make demo` once, or set MICROPYTHON=/path/to/micropython")


def state_home() -> Path:
    env = os.environ.get("PUMPCTL_HOME")
    return Path(env) if env else Path.home() / ".config" / "pumpctl"


def current_bench_file() -> Path:
    return state_home() / "current-bench"


def benches_dir() -> Path:
    """One small file per bench this user started (bench.list_benches)."""
    return state_home() / "benches"


def default_bench_dir() -> Path:
    return state_home() / "bench"
