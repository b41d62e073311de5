# The bolus dose source (clinician, patient or periodic: one at a time, on top of the basal
# rate) and the periodic-bolus schedule. Pure and allocation-free where the tick calls it: a
# periodic bolus starts inside the control tick.
from core.base import const
from core.engine import RateIntegrator, UNITS_PER_Q, Q_PER_UG

_MIN_MS = const(60_000)
_EXACT_Q = const(500_000)  # below this many quanta left, the end time is computed exactly


class Bolus:
    def __init__(self):
        self.integrator = RateIntegrator()
        self.kind = None  # "clinician", "patient", "periodic", or None when none runs
        self.left_q = 0  # dose quanta still to give

    def start(self, kind, dose_ug, duration_min):
        # Small-int arithmetic only (the tick may call it).
        rate = dose_ug * 1440 // duration_min  # rounded down: the dose is exact, the end may be later
        self.integrator.set_rate(rate if rate > 0 else 1)
        self.integrator.remainder_units = 0
        self.left_q = dose_ug * Q_PER_UG
        self.kind = kind

    def cancel(self):
        """Stop it; returns the quanta it had left."""
        left = self.left_q
        self.integrator.set_rate(0)
        self.kind = None
        self.left_q = 0
        return left

    def advance(self, seg_ms):
        """Dose quanta given over seg_ms, never more than are left."""
        quanta = self.integrator.advance(seg_ms)
        if quanta > self.left_q:
            quanta = self.left_q
        self.left_q -= quanta
        return quanta

    def ms_to_end(self):
        left = self.left_q
        if left <= _EXACT_Q:
            return self.integrator.ms_to_q(left)
        per_ms = (self.integrator.rate + UNITS_PER_Q - 1) // UNITS_PER_Q  # upper bound of quanta/ms
        return 1 + (left - _EXACT_Q) // per_ms


class PeriodicSchedule:
    """Which periodic bolus falls due: each at most once per day and minute, and only in the
    first second of its minute (never late, no catch-up)."""

    def __init__(self):
        self.last_day = -1  # day and minute of the last one that fell due
        self.last_min = -1

    def due(self, periodic, day, ms_of_day):
        """The (minute, dose_ug, duration_min) entry due now, or None. Allocation-free: the
        entry is the program's own tuple."""
        m = ms_of_day // _MIN_MS
        if not periodic or (self.last_day == day and self.last_min == m):
            return None
        for entry in periodic:
            if entry[0] == m and ms_of_day % _MIN_MS < 1000:
                self.last_day = day
                self.last_min = m
                return entry
        return None

    def to_state(self):
        return [self.last_day, self.last_min]

    def from_state(self, st):
        self.last_day, self.last_min = st[0], st[1]
