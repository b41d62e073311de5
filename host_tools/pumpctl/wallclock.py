"""The pump's wall clock as the protocol carries it: `(day, ms_of_day)`, day counted from
2000-01-01 UTC (MicroPython's epoch). The one place the host converts to and from it."""
from __future__ import annotations

import datetime as dt
from typing import Optional, Sequence

from .errors import UsageError

EPOCH_2000 = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
DAY_MS = 86_400_000


def to_pump(at: Optional[dt.datetime] = None) -> tuple[int, int]:
    """`at` (UTC when it has no zone; default now) as (day, ms of day); refuses before 2000."""
    now = at or dt.datetime.now(dt.timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.timezone.utc)
    delta = now - EPOCH_2000
    if delta.days < 0:
        raise UsageError("the pump's clock cannot be set before 2000-01-01")
    return delta.days, delta.seconds * 1000 + delta.microseconds // 1000


def from_pump(wall: Sequence[int]) -> dt.datetime:
    """(day, ms of day) as an aware UTC datetime."""
    return EPOCH_2000 + dt.timedelta(days=wall[0], milliseconds=wall[1])


def today() -> int:
    """Today's day number (days since 2000-01-01, UTC)."""
    return to_pump()[0]


def parse_utc(text: str) -> dt.datetime:
    """An ISO time from the command line, read as UTC when it names no zone."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{text!r} is not an ISO time like 2026-01-01T00:00:00") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
