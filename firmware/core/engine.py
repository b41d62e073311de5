# Dose engine: turns dose rates and elapsed time into whole motor steps, exactly.
#
# Why two stages: the exact number of steps for a rate r (µg/day) over t ms is
#     r * t * 1e6 / (86_400_000 * conc * pL_per_step)
# whose numerator and denominator leave the Pico's 31-bit small ints within seconds.
#   Stage A (RateIntegrator, one per dose source: basal, bolus): integrates r * dt into whole
#   dose quanta of 1/1600 ng (one quantum = 54 µg/day * ms, an integer; 1600 is the largest
#   number dividing both 86_400 and 1e6) and keeps the remainder.
#   Stage B (StepConverter, one per concentration and calibration): turns quanta into steps
#   through the reduced fraction K / Q (K = 625 / g, Q = conc * pL / g, g = gcd), keeping the
#   remainder.
# Both remainders are carried forever, so nothing drifts however long it runs, and every value
# stays below 2**30. Stage B starts half a step full, so the commanded count is the exact
# integral rounded to the nearest step: |commanded - exact| <= 1/2 step + one quantum per
# source, under one step for any step holding more than 0.01 ng.
#
# Limit that keeps every product small: conc * pL_per_step <= 5e8 (at most 0.5 µg per step).
from core.base import const, Refusal

UNITS_PER_Q = const(54)  # (µg/day) * ms in one dose quantum
Q_PER_NG = const(1600)  # dose quanta in one ng
Q_PER_UG = const(1_600_000)
_LIM = const(1 << 29)  # bound for any single product in the tick
MAX_NG_PER_STEP = const(500)
MIN_PL_NG_PER_STEP = const(10_000)  # conc * pL >= 1e4: a step holds at least 0.01 ng
MAX_RATE = const(1 << 22)  # µg/day (about 4 g/day): far above any hard limit


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a


class RateIntegrator:
    """Stage A: a dose rate in µg/day integrated over ms into whole quanta, remainder kept."""

    def __init__(self):
        self.rate = 0
        self.remainder_units = 0  # rate x ms not yet a whole quantum, in [0, 54)
        self._chunk = _LIM

    def set_rate(self, rate_ug_per_day):
        if rate_ug_per_day < 0 or rate_ug_per_day > MAX_RATE:
            raise Refusal("RANGE", "rate %d µg/day out of range" % rate_ug_per_day)
        self.rate = rate_ug_per_day
        self._chunk = _LIM // rate_ug_per_day if rate_ug_per_day else _LIM

    def max_dt(self):
        """Longest dt whose quanta still fit a small int (callers split longer ticks)."""
        return _LIM // ((self.rate + UNITS_PER_Q - 1) // UNITS_PER_Q + 1)

    def advance(self, dt_ms, commit=True):
        """Whole dose quanta (1/1600 ng) that became due over dt_ms. Allocation-free.
        commit=False only looks ahead (a motor batch's plan): the remainder is left as it was."""
        rate = self.rate
        if rate == 0:
            return 0
        quanta = 0
        rem = self.remainder_units
        while dt_ms > 0:
            c = dt_ms if dt_ms < self._chunk else self._chunk
            dt_ms -= c
            units = rem + rate * c
            n = units // UNITS_PER_Q
            rem = units - n * UNITS_PER_Q
            quanta += n
        if commit:
            self.remainder_units = rem
        return quanta

    def ms_to_q(self, q):
        """ms until `q` more whole quanta are due (q * 54 must stay small), -1 if never."""
        if self.rate == 0:
            return -1
        units = q * UNITS_PER_Q - self.remainder_units
        if units <= 0:
            return 0
        return (units + self.rate - 1) // self.rate


class StepConverter:
    """Stage B: dose quanta into whole motor steps at one concentration and calibration."""

    def __init__(self, conc_ug_per_ml, pl_per_step):
        if conc_ug_per_ml <= 0 or pl_per_step <= 0:
            raise Refusal("RANGE", "concentration and calibration must be positive")
        x = conc_ug_per_ml * pl_per_step  # ng per step * 1e6
        if x > MAX_NG_PER_STEP * 1_000_000:
            raise Refusal(
                "RANGE",
                "one step would hold more than 0.5 µg of drug (%d µg/mL at %d pL/step); "
                "use a finer calibration or a lower concentration" % (conc_ug_per_ml, pl_per_step),
            )
        if x < MIN_PL_NG_PER_STEP:
            raise Refusal(
                "RANGE",
                "one step would hold less than 0.01 ng of drug (%d µg/mL at %d pL/step); "
                "use a coarser calibration or a higher concentration" % (conc_ug_per_ml, pl_per_step),
            )
        g = _gcd(625, x)  # steps per quantum = 1e6 / (1600 * x) = 625 / x
        self.conc = conc_ug_per_ml
        self.pl_per_step = pl_per_step
        self.units_per_quantum = 625 // g  # a quantum adds this many units to the step
        self.units_per_step = x // g  # a step is due at this many (< 2**29)
        self._quanta_chunk = max(1, _LIM // self.units_per_quantum)
        self.partial_step_units = self.units_per_step // 2  # round to nearest: start half a step full

    def add_q(self, quanta, commit=True):
        """Steps that became due for `quanta` more dose quanta. Allocation-free.
        commit=False only looks ahead: the partial step is left as it was."""
        out = 0
        partial = self.partial_step_units
        while quanta > 0:
            part = quanta if quanta < self._quanta_chunk else self._quanta_chunk
            quanta -= part
            units = partial + part * self.units_per_quantum
            s = units // self.units_per_step
            partial = units - s * self.units_per_step
            out += s
        if commit:
            self.partial_step_units = partial
        return out

    def q_to_next_step(self):
        need = self.units_per_step - self.partial_step_units  # in (0, units_per_step]
        return (need + self.units_per_quantum - 1) // self.units_per_quantum  # <= 1600 * 500 quanta


class Counter:
    """A total that grows forever, kept as thousands + units so it never allocates."""

    def __init__(self):
        self.k = 0
        self.u = 0

    def add(self, n):
        n += self.u
        k = n // 1000
        self.u = n - k * 1000
        self.k += k

    def value(self):
        return self.k * 1000 + self.u  # display only: may be a big int on the Pico

    def state(self):
        return [self.k, self.u]

    def restore(self, st):
        self.k, self.u = st[0], st[1]
