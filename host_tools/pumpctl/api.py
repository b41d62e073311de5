"""The Python API for scripts and notebooks:

    import pumpctl
    with pumpctl.connect() as pump:          # the running virtual bench, or port="/dev/ttyACM0"
        pump.program_continuous(500, 2000)
        pump.bench_advance(3_600_000)         # virtual bench only
        print(pump.status()["delivered_ul"])

Every method sends one protocol request (docs/protocol.md) and returns the reply's data as a
dict. A refusal raises pumpctl.errors.DeviceError with the device's `.code`; no reply raises
LinkError; bench-only methods on a real board raise BenchError.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

from . import bench as benchmod
from . import programs
from .errors import BenchError, UsageError
from .link import Link

EPOCH_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class Pump:
    """One connection to a pump. Use as a context manager, or call close()."""

    def __init__(self, link: Link, bench: Optional[benchmod.BenchInfo] = None) -> None:
        self.link = link
        self.bench = bench

    # ---- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "Pump":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the pump ------------------------------------------------------------------------------
    def identify(self) -> dict[str, Any]:
        return self.link.request("identify")

    def status(self) -> dict[str, Any]:
        return self.link.request("status")

    def program_check(self, program: dict[str, Any]) -> dict[str, Any]:
        """What the pump would make of `program` (old and new), without writing it."""
        return self.link.request("program_check", {"program": _program(program)})

    def program_set(self, program: dict[str, Any]) -> dict[str, Any]:
        """Write a program dict (docs/programs.md); returns old, new and overrides_used."""
        return self.link.request("program_set", {"program": _program(program)})

    def program_continuous(self, rate_ug_per_day: int, concentration_ug_per_ml: int,
                           drug: str = "baclofen") -> dict[str, Any]:
        for name, v in (("rate_ug_per_day", rate_ug_per_day), ("concentration_ug_per_ml", concentration_ug_per_ml)):
            if type(v) is not int or v <= 0:
                raise UsageError(f"{name} must be a positive whole number, got {v!r}")
        return self.program_set(programs.continuous(rate_ug_per_day, concentration_ug_per_ml, drug))

    def program_show(self) -> dict[str, Any]:
        return self.link.request("program_show")

    def stop(self) -> dict[str, Any]:
        return self.link.request("stop", signed=True)

    def resume(self) -> dict[str, Any]:
        return self.link.request("resume", signed=True)

    def time_sync(self, at: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Set the pump's wall clock to `at` (UTC; default now)."""
        now = at or dt.datetime.now(dt.timezone.utc)
        if now.tzinfo is None:
            now = now.replace(tzinfo=dt.timezone.utc)
        delta = now - EPOCH_2000
        if delta.days < 0:
            raise UsageError("the pump's clock cannot be set before 2000-01-01")
        return self.link.request("time_set", {"day": delta.days,
                                              "ms": delta.seconds * 1000 + delta.microseconds // 1000}, signed=True)

    def alarms(self) -> dict[str, Any]:
        return self.link.request("alarms")

    def ack(self, code: str = "all") -> dict[str, Any]:
        if not isinstance(code, str) or not code:
            raise UsageError("ack needs an alarm code or 'all'")
        return self.link.request("alarms_ack", {"code": code}, signed=True)

    def pause(self, ms: int = 120_000) -> dict[str, Any]:
        """Pause alarm audio for `ms` milliseconds."""
        if type(ms) is not int or ms <= 0:
            raise UsageError(f"pause needs a positive whole number of ms, got {ms!r}")
        return self.link.request("alarms_pause", {"ms": ms}, signed=True)

    def drugs(self) -> dict[str, Any]:
        return self.link.request("drugs")

    # ---- the virtual bench ---------------------------------------------------------------------
    def _bench(self) -> benchmod.BenchInfo:
        if self.bench is None:
            raise BenchError("this pump is a real board, not a virtual bench: no bench control")
        return self.bench

    def bench_advance(self, duration_ms: int) -> dict[str, Any]:
        """Move a lockstep bench's virtual time forward; returns the bench clock."""
        if type(duration_ms) is not int or duration_ms < 0:
            raise UsageError(f"advance needs a whole number of ms >= 0, got {duration_ms!r}")
        info = self._bench()
        done, reply = 0, {}
        while True:  # in days, so one request never runs for long
            step = min(86_400_000, duration_ms - done)
            reply = benchmod.control(info, {"cmd": "advance", "ms": step})
            done += step
            if done >= duration_ms:
                break
        return reply["clock"]

    def bench_show(self) -> dict[str, Any]:
        """The bench's physical truth (outlet, reservoir, head, clock, ...)."""
        d = benchmod.control(self._bench(), {"cmd": "show"})
        d.pop("ok", None)
        return d

    def bench_control(self, req: dict[str, Any]) -> dict[str, Any]:
        """Any control-channel request (e.g. faults, once the bench offers them)."""
        return benchmod.control(self._bench(), req)


def _program(p: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise UsageError(f"a program is a dict (docs/programs.md), got {type(p).__name__}")
    return p


def connect(port: Optional[str] = None, bench_dir: Optional[str | Path] = None,
            timeout: float = 5.0, role: str = "clinician") -> Pump:
    """A Pump on a serial `port`, or on the virtual bench in `bench_dir` (default: the one
    started last with `pumpctl bench start`). Commands are signed with `role`'s key from the
    keystore (docs/security.md)."""
    if port:
        link = Link(port, timeout=timeout)
        link.enable_auth(link.request("identify")["device_id"], role)
        return Pump(link)
    info = benchmod.find(Path(bench_dir) if bench_dir else None)
    link = Link(info.port, timeout=timeout)
    link.enable_auth(info.d.get("device_id", "SIM-0001"), role)
    return Pump(link, info)
