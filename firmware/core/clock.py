# The pump's time: uptime (s + ms below a second) and the wall clock (day since 2000-01-01 +
# ms of day), both advanced by the tick's segments. Pure: told elapsed time, never reads it.
# advance() allocates nothing (small-int arithmetic only), so the tick runs it under heap_lock().
from core.base import const, Refusal

DAY_MS = const(86_400_000)
_DAY_LIMIT = const(1 << 20)  # wall-clock days since 2000-01-01 stay below this (2870 years)


def check_day(day, what="the clock's day"):
    """Refuse a wall-clock day outside what the clock keeps; changes nothing."""
    if type(day) is not int or not 0 <= day < _DAY_LIMIT:
        raise Refusal("RANGE", "%s must be 0..%d (days since 2000-01-01), not %r" % (what, _DAY_LIMIT - 1, day))


def check_wall(day, ms_of_day):
    """Refuse a wall time outside what the clock keeps; changes nothing."""
    check_day(day)
    if type(ms_of_day) is not int or not 0 <= ms_of_day < DAY_MS:
        raise Refusal("RANGE", "the clock's time of day must be 0..%d ms, not %r" % (DAY_MS - 1, ms_of_day))


class PumpClock:
    def __init__(self):
        self.up_s = 0
        self.up_ms_below_s = 0
        self.day = 0
        self.ms_of_day = 0
        self.clock_set = False  # the wall clock was set since boot (else it is the last known)

    def set_wall(self, day, ms_of_day):
        check_wall(day, ms_of_day)
        self.day, self.ms_of_day, self.clock_set = day, ms_of_day, True

    def assume_wall(self, day, ms_of_day):
        """Carry on from the last known wall time until the clock is set again (a restore)."""
        self.day, self.ms_of_day = day, ms_of_day

    def advance(self, seg_ms):
        ms = self.up_ms_below_s + seg_ms
        s = ms // 1000
        self.up_ms_below_s = ms - s * 1000
        self.up_s += s
        ms = self.ms_of_day + seg_ms
        if ms >= DAY_MS:
            d = ms // DAY_MS
            self.day += d
            ms -= d * DAY_MS
        self.ms_of_day = ms


class StoppedTime:
    """How long the pump has stood stopped with a program, against the alarm's limit."""

    def __init__(self, alarm_s):
        self.stopped_s = 0
        self.ms_below_s = 0
        self.alarm_s = alarm_s

    def reset(self):
        self.stopped_s = self.ms_below_s = 0

    def advance(self, seg_ms):
        """Count seg_ms more; True once the alarm's limit is reached. Allocation-free."""
        ms = self.ms_below_s + seg_ms
        s = ms // 1000
        self.ms_below_s = ms - s * 1000
        self.stopped_s += s
        return self.stopped_s >= self.alarm_s
