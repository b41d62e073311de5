"""The virtual bench's control channel as an object: what `pumpctl bench ...` and the Python
API ask of a bench (virtual time, its physical truth, faults, power). bench.py starts, finds
and stops the process; this module only talks to a running one.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional, Union

from . import bench as benchmod
from . import wallclock
from .durations import format_ms
from .errors import BenchError, UsageError

ADVANCE_CHUNK_MS = 86_400_000  # one request never advances more than a day, so none runs long
FAULTS = ("block-outlet", "battery", "reservoir-empty", "clock-loss", "hang")
# What `advance --until` can wait for (boards/sim/control.py evaluates them after each wake).
EVENTS = ("low-reservoir", "empty", "refill-due", "next-alarm", "bolus-end")
DEFAULT_CAP_MS = 400 * 86_400_000  # an --until advance stops here if nothing happens first

When = Union[str, dt.datetime, dt.date]


def parse_when(when: When) -> Union[str, dt.datetime]:
    """What `advance --until` waits for: one of EVENTS, or a moment of the pump's wall clock
    (an ISO date or date-time, UTC unless it names a zone) as an aware datetime."""
    if isinstance(when, dt.datetime):
        return _utc(when)
    if isinstance(when, dt.date):
        return dt.datetime(when.year, when.month, when.day, tzinfo=dt.timezone.utc)
    if not isinstance(when, str):
        raise UsageError(f"--until takes an event or a date, got {type(when).__name__}")
    t = when.strip()
    ev = t.lower().replace("_", "-")
    if ev in EVENTS:
        return ev
    try:
        at = dt.datetime.fromisoformat(t) if t else None
    except ValueError:
        at = None
    if at is None:
        forms = "2027-03-01, 2027-03-01T08:00 or '2027-03-01 08:00'"
        if t[:1].isdigit():
            raise UsageError(f"--until {when!r} is not a date or time that can be read: write it like {forms}")
        raise UsageError(f"--until {when!r} is neither an event ({', '.join(EVENTS)}) nor a date or time like {forms}")
    return _utc(at)


def _utc(at: dt.datetime) -> dt.datetime:
    """`at` in UTC, the pump's zone (taken as UTC when it names none)."""
    if at.tzinfo is None:
        return at.replace(tzinfo=dt.timezone.utc)
    try:
        return at.astimezone(dt.timezone.utc)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: out of range in UTC
        return at


def ms_to(at: dt.datetime, wall: Optional[Any]) -> int:
    """Virtual ms from the pump's wall clock `wall` ((day, ms) or None) to `at`, at least 1."""
    if not wall:
        raise UsageError("the pump's clock is not set, so there is no date to advance to: set it with "
                         "`pumpctl time sync`, or advance by a duration or to an event")
    now = wallclock.from_pump(wall)
    ms = -((now - at) // dt.timedelta(milliseconds=1))  # rounded up: never stop short of `at`
    if ms <= 0:
        try:
            shown = f"{at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"
        except OverflowError:  # year 1 with a zone east of UTC
            shown = at.isoformat()
        raise UsageError(f"{shown} is not after the pump's time now ({now:%Y-%m-%d %H:%M:%S} UTC): "
                         "give a later date or time")
    return ms


def _cap(cap_ms: Any) -> int:
    if type(cap_ms) is not int or cap_ms <= 0:
        raise UsageError(f"the cap must be a positive whole number of ms, got {cap_ms!r}")
    return cap_ms


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

    def until_span(self, until: When, cap_ms: int = DEFAULT_CAP_MS) -> int:
        """The most virtual time `advance_until(until, cap_ms)` can take: the cap, or the time to
        the date if that comes first (checks `until` as advance_until does)."""
        target = parse_when(until)
        cap = _cap(cap_ms)
        if isinstance(target, str):
            return cap
        return min(cap, ms_to(target, self.clock().get("wall")))

    def advance_until(self, until: When, cap_ms: int = DEFAULT_CAP_MS,
                      progress: Optional[Callable[[int], None]] = None) -> dict[str, Any]:
        """Advance a lockstep bench until `until` (one of EVENTS, or a date or datetime of the
        pump's wall clock) or until `cap_ms` of virtual time have passed, in requests of at
        most a day; `progress` is told the ms done after each. Returns advanced_ms, clock,
        until, hit (the event: event, virtual_ms, wall, detail, code, already; or None),
        stopped_by ("event", "time" for a date, "cap"), cap_ms, and for an event the alarm codes
        listed at the end (alarms)."""
        target = parse_when(until)
        cap = _cap(cap_ms)
        if not isinstance(target, str):
            ms = ms_to(target, self.clock().get("wall"))
            total = min(ms, cap)
            clock = self.advance(total, progress)
            return {"advanced_ms": total, "clock": clock, "until": target.isoformat(timespec="seconds"),
                    "hit": None, "stopped_by": "time" if ms <= cap else "cap", "cap_ms": cap}
        done = 0
        base: Optional[dict[str, Any]] = None
        while True:
            step = min(ADVANCE_CHUNK_MS, cap - done)
            req: dict[str, Any] = {"cmd": "advance", "ms": step, "until": target}
            if base is not None:
                req["baseline"] = base
            reply = self.control(req)
            if "baseline" not in reply:  # a bench process older than --until took it as a plain advance
                raise BenchError("this bench was started before `advance --until` existed and took the request as "
                                 f"a plain advance of {format_ms(step)}: stop it and start it again")
            base = reply["baseline"]
            done += reply["advanced_ms"]
            if progress:
                progress(done)
            hit = reply.get("hit")
            if hit or done >= cap:
                break
            if reply["advanced_ms"] < step:
                raise BenchError("the bench stopped short of the time asked without the event (see its bench.log)")
        return {"advanced_ms": done, "clock": reply["clock"], "until": target, "hit": hit,
                "stopped_by": "event" if hit else "cap", "cap_ms": cap, "alarms": reply.get("alarms", [])}

    def clock(self) -> dict[str, Any]:
        """The bench's clock: virtual_ms, uptime_s, wall ([day, ms of day] or None), mode."""
        c: dict[str, Any] = self.show()["clock"]
        return c

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
        if fault == "battery" and not on:
            if mv is not None:
                raise UsageError("--clear puts a fresh 3600 mV cell in: give --mv or --clear, not both")
        elif fault == "battery":
            if mv is None:
                raise UsageError("the battery fault needs --mv (e.g. --mv 3200)")
            req["mv"] = mv
        d = self.control(req)
        d.pop("ok", None)
        return d

    def press(self) -> dict[str, Any]:
        """Press the patient bolus button once; the firmware's button task takes it as a
        Pico's would. Returns presses (since the bench started) and record: the patient_bolus
        log record the press wrote (seq, wall, uptime, type, data: outcome, why, src), or None."""
        d = self.control({"cmd": "press"})
        d.pop("ok", None)
        return d

    def fill(self, volume_ul: int) -> dict[str, Any]:
        """Empty the bench's reservoir and fill it with `volume_ul` µL of water (the physical half
        of a refill; `pumpctl refill` tells the pump). Returns withdrawn_ul (what was left),
        volume_ul and reservoir_true_ul."""
        if type(volume_ul) is not int or volume_ul < 0:
            raise UsageError(f"the fill volume must be a whole number of µL >= 0, got {volume_ul!r}")
        cap = int(self.info.d.get("options", {}).get("model_ml", 20)) * 1000
        if volume_ul > cap:
            raise UsageError(f"{volume_ul} µL is more than the bench's {cap // 1000} mL reservoir holds")
        d = self.control({"cmd": "fill", "volume_nl": volume_ul * 1000})
        return {"withdrawn_ul": d["withdrawn_nl"] // 1000, "withdrawn_nl": d["withdrawn_nl"],
                "volume_ul": volume_ul, "reservoir_true_ul": d["reservoir_true_nl"] // 1000}

    def power_cycle(self, down_ms: int = 0) -> "Bench":
        """Cut the power (no save) and restore it after `down_ms`; the firmware reboots from its
        flash. Returns the bench as it runs now (a new process and port)."""
        self.info = benchmod.power_cycle(self.info, down_ms)
        return self

    def stop(self) -> None:
        benchmod.stop(self.info)


def refill_bench(info: benchmod.BenchInfo, volume_ul: int) -> dict[str, Any]:
    """The physical half of `pumpctl refill` on a virtual bench: the bench's reservoir is emptied
    and filled with the volume the pump was just told, so pump and bench agree (what the bench
    withdrew is its true water left, which the pump's expected volume only estimates)."""
    return Bench(info).fill(volume_ul)


def refill_bench_text(d: dict[str, Any]) -> str:
    return (f"The bench's reservoir was filled to match: {d['withdrawn_ul']} µL of water really came out, "
            f"{d['volume_ul']} µL went in.")


_VOLUME = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ml|ul|µl|μl)\s*", re.IGNORECASE)


def parse_volume_ul(text: str) -> int:
    """A volume as a person writes it, `20mL`, `18000uL`, `18000µL`, `2.5 mL`, as whole µL."""
    m = _VOLUME.fullmatch(text or "")
    if not m:
        raise UsageError(f"{text!r} is not a volume: give it with its unit, e.g. 20mL or 18000uL")
    n, unit = m.group(1), m.group(2).lower()
    ul = Decimal(n) * 1000 if unit == "ml" else Decimal(n)
    if ul != ul.to_integral_value():
        raise UsageError(f"{text} is not a whole number of µL: the bench fills to 1 µL")
    return int(ul)


def find(bench_dir: Optional[str | Path] = None) -> Bench:
    """The running bench in `bench_dir` (default: the one started last)."""
    return Bench(benchmod.find(Path(bench_dir) if bench_dir else None))


def start(bench_dir: Optional[str | Path] = None, **options: Any) -> Bench:
    """Start a bench (options as bench.start) and wait until it answers."""
    return Bench(benchmod.start(Path(bench_dir) if bench_dir else None, **options))
