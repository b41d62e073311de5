"""The virtual bench's control channel as an object: what `pumpctl bench ...` and the Python
API ask of a bench (virtual time, its physical truth, faults, power). bench.py starts, finds
and stops the process; this module only talks to a running one.

Research and education prototype: never for human use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from . import bench as benchmod
from .errors import UsageError

ADVANCE_CHUNK_MS = 86_400_000  # one request never advances more than a day, so none runs long
FAULTS = ("block-outlet", "battery", "reservoir-empty", "clock-loss", "hang")


class Bench:
    """A running virtual bench (bench.BenchInfo) and the requests its control channel takes."""

    def __init__(self, info: benchmod.BenchInfo) -> None:
        self.info = info

    @property
    def dir(self) -> Path:
        return self.info.dir

    def control(self, req: dict[str, Any]) -> dict[str, Any]:
        """Any control-channel request, as the bench answers it."""
        return benchmod.control(self.info, req)

    def advance(self, duration_ms: int, progress: Optional[Callable[[int], None]] = None) -> dict[str, Any]:
        """Move a lockstep bench's virtual time forward; returns the bench clock. `progress` is
        told the ms done after each day."""
        if type(duration_ms) is not int or duration_ms < 0:
            raise UsageError(f"advance needs a whole number of ms >= 0, got {duration_ms!r}")
        done = 0
        reply: dict[str, Any] = {}
        while done < duration_ms or not reply:
            step = min(ADVANCE_CHUNK_MS, duration_ms - done)
            reply = self.control({"cmd": "advance", "ms": step})
            done += step
            if progress:
                progress(done)
        clock: dict[str, Any] = reply["clock"]
        return clock

    def show(self) -> dict[str, Any]:
        """The bench's physical truth (outlet, reservoir, head, clock, ...)."""
        d = self.control({"cmd": "show"})
        d.pop("ok", None)
        return d

    def fault(self, fault: str, on: bool = True, mv: Optional[int] = None) -> dict[str, Any]:
        """Inject (or clear) a fault the bench can fake: one of FAULTS; battery needs `mv`."""
        if fault not in FAULTS:
            raise UsageError(f"unknown bench fault {fault!r}: one of {', '.join(FAULTS)}")
        req: dict[str, Any] = {"cmd": "fault", "fault": fault.replace("-", "_"), "on": on}
        if fault == "battery":
            if mv is None:
                raise UsageError("the battery fault needs --mv (e.g. --mv 3200)")
            req["mv"] = mv
        d = self.control(req)
        d.pop("ok", None)
        return d

    def power_cycle(self, down_ms: int = 0) -> "Bench":
        """Cut the power (no save) and restore it after `down_ms`; the firmware reboots from its
        flash. Returns the bench as it runs now (a new process and port)."""
        self.info = benchmod.power_cycle(self.info, down_ms)
        return self

    def stop(self) -> None:
        benchmod.stop(self.info)


def find(bench_dir: Optional[str | Path] = None) -> Bench:
    """The running bench in `bench_dir` (default: the one started last)."""
    return Bench(benchmod.find(Path(bench_dir) if bench_dir else None))


def start(bench_dir: Optional[str | Path] = None, **options: Any) -> Bench:
    """Start a bench (options as bench.start) and wait until it answers."""
    return Bench(benchmod.start(Path(bench_dir) if bench_dir else None, **options))
