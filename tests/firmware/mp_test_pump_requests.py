# The core's atomic requests (issue 14: validation once, in the core): a refused prime, settings
# change or refill changes nothing, and the sentences name the field and its range in the
# user's units. And the parts' per-segment work (a volume run, a bridge) allocates nothing.
import micropython
from mptest import eq, raises
from pumpsim import make, DAY
from core.base import Refusal
from core.alarms import AlarmManager
from core.pump import Pump, STOPPED, FLAG_PRIME_DONE, FLAG_BRIDGE_DONE
from core import program as programs
from core.druglib import LIBRARY

PROG = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}


def _catheter(pump):
    return pump.tubing_nl, pump.catheter_cm, pump.catheter_nl_per_cm


def test_a_prime_with_its_catheter_keeps_both():
    pump, _ = make(PROG)
    pump.stop()
    steps = pump.start_prime(20, (250_000, 40, 1_500))
    eq(steps, 310_000 * 1000 // 50_000)
    eq(_catheter(pump), (250_000, 40, 1_500))
    eq(pump.prime_left, steps)


def test_a_refused_prime_leaves_the_catheter_as_it_was():
    pump, _ = make(PROG)
    pump.set_catheter(0, 10, 1_000)
    before = _catheter(pump)
    for duration, catheter, code in ((241, (0, 30, 1_000), "RANGE"), (10, (0, 501, 1_000), "RANGE"),
                                     (10, (0, 30, 50_001), "RANGE"), (10, (2_000_001, 0, 0), "RANGE"),
                                     (10, (0, 0, 0), "RANGE"), (10, (0, 30), "RANGE"), (10, "30 cm", "RANGE")):
        eq(raises(Refusal, pump.start_prime, duration, catheter).code, code)
        eq(_catheter(pump), before)
        eq(pump.prime_left, 0)
    pump.start_bolus("clinician", 10, 10)
    eq(raises(Refusal, pump.start_prime, 10, (0, 30, 1_000)).code, "BUSY")
    eq(_catheter(pump), before)
    empty = Pump(AlarmManager())
    eq(raises(Refusal, empty.start_prime, 10, (0, 30, 1_000)).code, "STATE")
    eq(_catheter(empty), (0, 0, 0))


def test_a_prime_without_a_catheter_uses_the_settings_as_before():
    pump, _ = make(PROG)
    eq(raises(Refusal, pump.start_prime, 10).code, "RANGE")  # nothing to prime yet
    pump.set_catheter(0, 10, 1_000)
    eq(pump.start_prime(10), 10_000 * 1000 // 50_000)


def test_configure_checks_every_setting_before_keeping_any():
    pump, _ = make(PROG)
    got = pump.configure(low_reservoir_ul=3_000, stopped_alarm_h=12, catheter=(100_000, 20, 2_000))
    eq(got, {"low_reservoir_ul": 3_000, "stopped_alarm_h": 12, "tubing_ul": 100,
             "catheter_cm": 20, "catheter_nl_per_cm": 2_000})
    eq((pump.reservoir.low_nl, pump.stopped_alarm_s), (3_000_000, 12 * 3600))
    for kw, words in (({"low_reservoir_ul": 10_001}, ("low-reservoir", "0..10000 µL")),
                      ({"low_reservoir_ul": -1}, ("low-reservoir", "µL")),
                      ({"stopped_alarm_h": 0}, ("stopped-pump alarm", "1..168 h")),
                      ({"stopped_alarm_h": 169}, ("stopped-pump alarm", "1..168 h")),
                      ({"catheter": (0, 501, 0)}, ("catheter length", "0..500 cm")),
                      ({"catheter": (0, 0, 50_001)}, ("volume per cm", "0..50000 nL")),
                      ({"catheter": (3_000_000, 0, 0)}, ("tubing volume", "0..2000 µL"))):
        # Every other setting given is good: none of them may be kept when one is refused.
        args = {"low_reservoir_ul": 1_000, "stopped_alarm_h": 100, "catheter": (0, 1, 1)}
        args.update(kw)
        e = raises(Refusal, pump.configure, **args)
        eq(e.code, "RANGE")
        for w in words:
            assert w in e.msg, (w, e.msg)
        eq((pump.reservoir.low_nl, pump.stopped_alarm_s), (3_000_000, 12 * 3600))
        eq(_catheter(pump), (100_000, 20, 2_000))


def test_the_low_threshold_stays_below_a_small_reservoir():
    pump, _ = make(PROG, model=10, fill_ul=10_000)
    e = raises(Refusal, pump.configure, low_reservoir_ul=10_000)
    assert "below the reservoir size" in e.msg and "µL" in e.msg, e.msg
    pump.configure(low_reservoir_ul=9_999)
    eq(pump.reservoir.low_nl, 9_999_000)


def test_refill_owns_both_ranges_and_changes_nothing_when_refused():
    pump, _ = make(PROG, model=20, fill_ul=20_000)
    pump.configure(low_reservoir_ul=4_000)
    before = (pump.reservoir.volume_nl, pump.reservoir.low_nl)
    e = raises(Refusal, pump.refill, 25_001, 10_000)
    eq(e.code, "RANGE")
    assert "0..25000 µL" in e.msg, e.msg
    eq(raises(Refusal, pump.refill, -1, 10_000).code, "RANGE")
    eq(raises(Refusal, pump.refill, 0, 20_001).code, "OVERFILL")
    eq(raises(Refusal, pump.refill, 0, -5).code, "RANGE")
    eq((pump.reservoir.volume_nl, pump.reservoir.low_nl), before)
    eq(pump.refill(25_000, 15_000), (20_000, 5_000, True))
    eq((pump.reservoir.volume_ul(), pump.reservoir.low_nl), (15_000, 4_000_000))


def _locked_ticks(pump, n, dt):
    flags = 0
    for _ in range(n):
        micropython.heap_lock()
        try:
            pump.tick(dt)
        finally:
            micropython.heap_unlock()
        flags |= pump.take_flags()
    return flags


def test_a_volume_run_and_a_bridge_tick_under_heap_lock():
    pump, _ = make(PROG)
    pump.stop()
    steps = pump.start_prime(20, (250_000, 40, 1_500))
    flags = _locked_ticks(pump, 25, 60_000)
    eq(pump.steps_total.value(), steps)
    eq(pump.state, STOPPED)
    assert flags & FLAG_PRIME_DONE
    low, _ = make({"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 480})
    low.set_catheter(0, 50, 2_000)
    low.refill(low.reservoir.volume_ul(), 20_000)
    new = programs.parse({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                          "rate_ug_per_day": 480}, LIBRARY)
    eq(low.change_concentration(new, True), 2000)
    flags = _locked_ticks(low, 30, 300_000)
    eq(low.bridge_left, 0)
    eq(low.conv.conc, 2000)
    assert flags & FLAG_BRIDGE_DONE
    _locked_ticks(low, 1, DAY)
