"""Shared helper for the example scripts: use the running virtual bench, or start a private
lockstep one in a temporary directory (and stop it afterwards).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from pumpctl import bench
from pumpctl.api import Pump, connect


@contextlib.contextmanager
def pump_on_bench(use_running: bool = False, **bench_opts: Any) -> Iterator[Pump]:
    if use_running:
        with connect() as pump:
            yield pump
        return
    with tempfile.TemporaryDirectory(prefix="pumpctl-example-") as tmp:
        old = os.environ.get("PUMPCTL_HOME")
        os.environ["PUMPCTL_HOME"] = tmp  # keep the user's own bench pointer untouched
        info = bench.start(Path(tmp) / "bench", lockstep=True, **bench_opts)
        try:
            with connect(bench_dir=info.dir) as pump:
                yield pump
        finally:
            bench.stop(info)
            if old is None:
                os.environ.pop("PUMPCTL_HOME", None)
            else:
                os.environ["PUMPCTL_HOME"] = old
