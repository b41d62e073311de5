"""Fixtures shared by the host tests that talk to a real virtual bench."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import api  # noqa: E402
from pumpctl import bench as benchmod  # noqa: E402


@contextlib.contextmanager
def _bench_pump(home: Path) -> Iterator[api.Pump]:
    """A Pump on a new lockstep bench in `home` (its PUMPCTL_HOME while it runs)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PUMPCTL_HOME", str(home))
    info = benchmod.start(home / "bench", lockstep=True, true_pl=50_000, nominal_pl=50_000)
    try:
        with api.connect(bench_dir=info.dir) as p:
            yield p
    finally:
        benchmod.stop(info)
        mp.undo()


@pytest.fixture(scope="module")
def pump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[api.Pump]:
    """One bench for a test module whose tests run in order on one worker."""
    with _bench_pump(tmp_path_factory.mktemp("home")) as p:
        yield p


@pytest.fixture
def fresh_pump(tmp_path: Path) -> Iterator[api.Pump]:
    """A new bench for each test: no program, nothing logged but the boot."""
    with _bench_pump(tmp_path / "home") as p:
        yield p
