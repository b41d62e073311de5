# Dose engine exactness on the real interpreter: the commanded steps never differ from the exact
# integral by more than one step, whatever the rates, tick lengths and run length.
import micropython
from mptest import req, eq, raises
from core.base import Refusal
from core.engine import RateIntegrator, StepConverter, Counter

_DAY = 86_400_000


def _lcg(seed):
    # Deterministic pseudo-random numbers (the unix port's random module is optional).
    while True:
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        yield seed


def _check(conc, pl, schedule, seed=1):
    """schedule: list of (rate_ug_day, duration_ms). Returns the worst |cmd - exact| in steps.

    exact = sum(rate * t) * 1e9 / (86.4e6 * conc * pl), computed with the unix port's big ints.
    """
    integ = RateIntegrator()
    conv = StepConverter(conc, pl)
    rnd = _lcg(seed)
    den = _DAY * conc * pl
    acc = 0  # sum of rate * ms
    cmd = 0
    worst_num = 0
    for rate, dur in schedule:
        integ.set_rate(rate)
        left = dur
        while left > 0:
            dt = 1 + next(rnd) % 7_200_000
            if dt > left:
                dt = left
            left -= dt
            cmd += conv.add_q(integ.advance(dt))
            acc += rate * dt
            # |cmd - exact| * den, exact = acc * 1e9 / den
            d = cmd * den - acc * 1_000_000_000
            if d < 0:
                d = -d
            if d > worst_num:
                worst_num = d
    return worst_num, den


@req("SR-005")
def test_continuous_500ug_2000_a_year_never_more_than_one_step():
    worst, den = _check(2000, 50_000, [(500, 365 * _DAY)])
    assert worst <= den, "worst error %d/%d steps" % (worst, den)


@req("SR-005")
def test_awkward_numbers_and_rate_changes_stay_within_one_step():
    # Prime-ish concentration and calibration so no fraction reduces nicely.
    sched = [(437, 3 * _DAY), (1199, _DAY // 3), (0, 5 * 3_600_000), (89, 2 * _DAY), (99_991, 600_000), (7, 40 * _DAY)]
    for conc, pl in ((1999, 51_234), (50, 99_991), (500, 1_003), (2000, 249_999), (50, 211)):
        worst, den = _check(conc, pl, sched, seed=conc)
        assert worst <= den, "conc %d pl %d: worst %d/%d" % (conc, pl, worst, den)


def test_exact_day_count_500ug_per_day():
    integ = RateIntegrator()
    conv = StepConverter(2000, 50_000)  # 0.05 µL/step: 250 µL/day = 5000 steps
    integ.set_rate(500)
    total = 0
    for _ in range(86_400):
        total += conv.add_q(integ.advance(1000))
    eq(total, 5000)


def test_ms_to_q_is_never_late():
    integ = RateIntegrator()
    integ.set_rate(777)
    integ.advance(12_345)
    for n in (1, 3, 500):
        t = integ.ms_to_q(n)
        a = RateIntegrator()
        a.set_rate(777)
        a.remainder_units = integ.remainder_units
        eq(a.advance(t) >= n, True)
        b = RateIntegrator()
        b.set_rate(777)
        b.remainder_units = integ.remainder_units
        eq(b.advance(t - 1) < n, True)


@req("SR-006")
def test_advance_allocates_nothing():
    integ = RateIntegrator()
    conv = StepConverter(1999, 51_234)
    integ.set_rate(99_991)
    c = Counter()
    micropython.heap_lock()
    try:
        for _ in range(1000):
            s = conv.add_q(integ.advance(997))
            c.add(s)
    finally:
        micropython.heap_unlock()
    assert c.k > 0


def test_refuses_a_step_holding_too_much_drug():
    e = raises(Refusal, StepConverter, 2000, 500_000)
    assert "0.5 µg" in e.msg
    e = raises(Refusal, StepConverter, 50, 100)
    assert "0.01 ng" in e.msg
    raises(Refusal, StepConverter, 0, 50_000)
    raises(Refusal, RateIntegrator().set_rate, -1)


def test_small_int_range_of_state():
    integ = RateIntegrator()
    conv = StepConverter(1999, 249_999)
    integ.set_rate(1 << 22)
    for _ in range(20):
        conv.add_q(integ.advance(integ.max_dt()))
    for v in (integ.remainder_units, conv.partial_step_units, conv.units_per_step, conv.units_per_quantum):
        assert -(1 << 30) < v < (1 << 30)
