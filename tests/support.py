"""Shared helpers for the test suite (CPython side)."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def micropython_cmd() -> list[str]:
    """The MicroPython interpreter: $MICROPYTHON, else the one installed in .venv/PATH."""
    env = os.environ.get("MICROPYTHON")
    if env:
        return [env]
    cand = Path(sys.executable).parent / "micropython"
    if cand.exists():
        return [str(cand)]
    found = shutil.which("micropython")
    if not found:
        raise RuntimeError("no MicroPython interpreter: run `make test` or set MICROPYTHON=")
    return [found]
