# Board clock: ticks in ms (wrapping like time.ticks_ms), wall time set by the host and kept as
# (day since 2000-01-01, ms of day), and an interruptible wait.
# Wall time is re-based on each read and each wait: ticks_diff is only valid within about
# 6 days (2**29 ms), and folding keeps every stored number small.
from micropython import const
import time
import asyncio

DAY_MS = const(86400000)
_MAX_DAY = const(1000000)   # year ~4700: far past any plausible setting


class Sleeper:
    """Handed to Clock.wait(); kick() ends that wait early (from a task, not from an IRQ).
    A kick before the wait starts is not lost: the next wait returns at once."""

    def __init__(self):
        self._ev = asyncio.Event()

    def kick(self):
        self._ev.set()


class Clock:
    Sleeper = Sleeper

    def __init__(self, ticks_ms=None):
        self._ticks = ticks_ms if ticks_ms is not None else time.ticks_ms
        self._day = -1       # -1: wall time never set
        self._ms = 0
        self._base = self._ticks()

    def ticks(self):
        return self._ticks()

    def diff(self, a, b):
        return time.ticks_diff(a, b)

    def _fold(self):
        if self._day < 0:
            return
        now = self._ticks()
        el = time.ticks_diff(now, self._base)
        if el < 0:
            el = 0
        self._base = now
        ms = self._ms + el
        day = self._day
        while ms >= DAY_MS:
            ms -= DAY_MS
            day += 1
        self._ms = ms
        self._day = day

    def set_wall(self, day, ms):
        if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= _MAX_DAY:
            raise ValueError("day must be an int in 0..%d, got %r" % (_MAX_DAY, day))
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms < DAY_MS:
            raise ValueError("ms of day must be an int in 0..86399999, got %r" % (ms,))
        self._base = self._ticks()
        self._day = day
        self._ms = ms

    def wall(self):
        """(day, ms_of_day) or None if the host never set it since boot."""
        if self._day < 0:
            return None
        self._fold()
        return (self._day, self._ms)

    async def wait(self, ms, sleeper=None):
        """Return after `ms` ms, or as soon as sleeper.kick() is called."""
        if ms < 0:
            ms = 0
        self._fold()
        if sleeper is None:
            await asyncio.sleep_ms(ms)
            return
        ev = sleeper._ev
        if not ev.is_set():
            try:
                await asyncio.wait_for_ms(ev.wait(), ms)
            except asyncio.TimeoutError:
                pass
        ev.clear()
