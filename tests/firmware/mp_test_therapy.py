# Full therapy on the pure core, on the real interpreter: flex profiles with periodic boluses,
# clinician and patient boluses, limits, priming, bridging and refill, with the delivered
# steps checked against an independent exact integral.
import micropython
from mptest import req, eq, raises
from pumpsim import make, Exact, error_ok, walk_ints, DAY
from core.base import Refusal
from core.pump import RUNNING, STOPPED
from core.pump_tick import FLAG_LIMIT24
from core import program as programs
from core.druglib import LIBRARY

DAYS = 365
LAST = {}  # figures of the last year run, for `make bench`

EVENING = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex",
           "steps": [{"start": "00:00", "rate_ug_per_day": 100}, {"start": "18:00", "rate_ug_per_day": 400},
                     {"start": "22:00", "rate_ug_per_day": 200}],
           "periodic_boluses": [{"time": "08:00", "dose_ug": 25, "duration_min": 10}]}


def _lcg(seed):
    while True:
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        yield seed


@req("SR-025")
def test_evening_profile_one_day_exact_with_hourly_rise():
    pump, prog = make(EVENING)
    ex = Exact(prog, 0)
    hourly = []
    last = 0
    for h in range(24):
        for _ in range(60):  # one tick a minute
            pump.tick(60_000)
            ex.basal(60_000)
            ok, err = error_ok(pump.steps_total.value(), ex.total(), 500, 50_000)
            assert ok, "hour %d: error %f steps" % (h, err)
        now = pump.steps_total.value()
        hourly.append(now - last)
        last = now
    # Exact day: (100*18 + 400*4 + 200*2)/24 + 25 = 183.33 µg = 366.67 µL = 7333 steps at 50 nL.
    eq(pump.steps_total.value(), 7333)
    eq(pump.q_total.value() // 1_600_000, 183)
    # 100 µg/day = 4.17 µg/h = 166.7 steps/h; 400 µg/day = 666.7 steps/h.
    assert 165 <= hourly[3] <= 168, hourly
    assert 665 <= hourly[19] <= 668, hourly
    assert 332 <= hourly[23] <= 335, hourly
    assert hourly[8] > hourly[7] + 900, "the 25 µg periodic bolus shows at 08:00: %r" % hourly


@req("SR-005", "SR-006")
def test_year_of_flex_periodic_clinician_and_patient_boluses():
    d = dict(EVENING)
    d["patient_bolus"] = {"dose_ug": 20, "duration_min": 5, "max_per_24h": 3, "lockout_min": 120}
    pump, prog = make(d, pl=51_234)
    ex = Exact(prog, 0)
    rnd = _lcg(7)
    worst = 0.0
    ticks = 0
    delivered = 0
    refused = 0
    for day in range(DAYS):
        if day % 7 == 3:
            pump.reservoir.fill(40_000)  # keep water in; refill does not touch accounting
        t_day = 0
        while t_day < DAY:
            dt = 1 + next(rnd) % 600_000
            if t_day + dt > DAY:
                dt = DAY - t_day
            micropython.heap_lock()
            try:
                pump.tick(dt)
            finally:
                micropython.heap_unlock()
            pump.take_flags()
            ex.basal(dt)
            t_day += dt
            ticks += 1
            ok, err = error_ok(pump.steps_total.value(), ex.total(), 500, 51_234)
            if err > worst:
                worst = err
            assert ok, "day %d: error %f steps" % (day, err)
            # A clinician bolus on some afternoons, a patient request most evenings.
            if 12 * 3_600_000 <= t_day < 12 * 3_600_000 + 600_000 and day % 5 == 0 and pump.bolus_kind is None:
                pump.start_bolus("clinician", 30, 15)
                ex.bolus(30, 15)
            if 20 * 3_600_000 <= t_day < 20 * 3_600_000 + 600_000 and pump.bolus_kind is None:
                outcome, _ = pump.patient_bolus()
                if outcome == "delivered":
                    ex.bolus(20, 5)
                    delivered += 1
                else:
                    refused += 1
        if day % 30 == 0:
            big = walk_ints(pump)
            assert big < (1 << 30), "day %d: an int of %d in the core" % (day, big)
    big = walk_ints(pump)
    assert big < (1 << 30)
    assert delivered >= DAYS * 8 // 10, delivered
    LAST["ticks"], LAST["worst_steps"], LAST["max_int"], LAST["patient_boluses"] = ticks, worst, big, delivered
    assert worst <= 1.0
    print("year: %d ticks, worst %f steps, %d patient boluses" % (ticks, worst, delivered))


@req("SR-026")
def test_clinician_bolus_then_back_to_the_program():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 240})
    pump.start_bolus("clinician", 50, 10)
    eq(pump.bolus_kind, "clinician")
    pump.tick(10 * 60_000)
    pump.tick(60_000)
    eq(pump.bolus_kind, None)
    eq(pump.basal.rate, 240)
    eq(pump.state, RUNNING)
    # 50 µg + 240 µg/day for 11 min = 50 + 1.833 µg -> 51.83 µg = 103.67 µL = 2073 steps.
    eq(pump.steps_total.value(), 2073)


@req("SR-003")
def test_bolus_over_the_24h_maximum_is_refused_whole():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 800})
    eq(pump.max24_ug, 1500)
    pump.tick(DAY)  # 800 µg in the window
    for _ in range(3):  # 3 x 200 µg clinician boluses: 1400 µg
        pump.start_bolus("clinician", 200, 10)
        pump.tick(11 * 60_000)
    total = pump.rolling.total_ug(pump.up_s)
    assert 1400 <= total < 1450, total
    before = pump.steps_total.value()
    e = raises(Refusal, pump.start_bolus, "clinician", 200, 10)
    eq(e.code, "LIMIT_24H")
    assert "refused whole" in e.msg and "1500" in e.msg
    eq(pump.bolus_kind, None)
    pump.tick(60_000)
    assert pump.steps_total.value() - before <= 12  # basal only (800 µg/day = 11.1 steps/min)


def test_bolus_refusals_change_nothing():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 240})
    for dose, dur, code in ((0, 10, "RANGE"), (601, 10, "RANGE"), (10, 0, "RANGE"), ("5", 10, "RANGE")):
        e = raises(Refusal, pump.start_bolus, "clinician", dose, dur)
        eq(e.code, code)
    pump.start_bolus("clinician", 10, 10)
    eq(raises(Refusal, pump.start_bolus, "clinician", 10, 10).code, "BUSY")
    pump.stop()
    eq(raises(Refusal, pump.start_bolus, "clinician", 10, 10).code, "STATE")


@req("SR-004")
def test_patient_lockout_after_programming_and_count():
    d = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 200,
         "patient_bolus": {"dose_ug": 10, "duration_min": 5, "max_per_24h": 2, "lockout_min": 60}}
    pump, prog = make(d)
    eq(pump.patient_bolus()[0], "refused_lockout")  # right after programming
    pump.tick(61 * 60_000)
    eq(pump.patient_bolus()[0], "delivered")
    pump.tick(30 * 60_000)
    eq(pump.patient_bolus()[0], "refused_lockout")
    pump.tick(31 * 60_000)
    eq(pump.patient_bolus()[0], "delivered")
    pump.tick(61 * 60_000)
    eq(pump.patient_bolus()[0], "refused_limit")


@req("SR-027")
def test_priming_moves_the_dead_volume_and_no_dose():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500})
    pump.stop()
    pump.set_catheter(250_000, 40, 1_500)  # 250 µL tubing + 40 cm x 1.5 µL/cm = 310 µL
    steps = pump.start_prime(20)
    eq(steps, 310_000 * 1000 // 50_000)
    q = pump.q_total.value()
    for _ in range(25):
        pump.tick(60_000)
    eq(pump.steps_total.value(), 6200)
    eq(pump.q_total.value(), q)  # no dose counted at the tip
    eq(pump.state, STOPPED)
    eq(pump.reservoir.volume_ul(), 40_000 - 310)


@req("SR-021")
def test_bridge_keeps_the_dose_until_the_new_drug_reaches_the_tip():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 480})
    pump.set_catheter(0, 50, 2_000)  # 100 µL of old drug in the catheter
    pump.tick(3_600_000)
    pump.refill(pump.reservoir.volume_ul(), 20_000)
    new = programs.parse({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 480}, LIBRARY)
    left = pump.change_concentration(new, True)
    eq(left, 2000)  # 100 µL at 50 nL/step
    s0 = pump.steps_total.value()
    # Old drug at 500 µg/mL: 480 µg/day = 0.96 mL/day -> 100 µL take 2.5 h.
    pump.tick(150 * 60_000)
    eq(pump.bridge_left, 0)
    eq(pump.steps_total.value() - s0, 2000)
    eq(pump.conv.conc, 2000)
    s1 = pump.steps_total.value()
    pump.tick(DAY)
    assert abs((pump.steps_total.value() - s1) - 4800) <= 1  # 0.24 mL/day at 2000 µg/mL


@req("SR-019", "SR-020")
def test_refill_mismatch_warns_and_overfill_is_refused():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}, model=20, fill_ul=20_000)
    pump.tick(10 * DAY)  # 2.5 mL used: 17.5 mL expected
    eq(raises(Refusal, pump.refill, 17_500, 20_001).code, "OVERFILL")
    eq(pump.reservoir.volume_ul(), 17_500)
    expected, mismatch, warn = pump.refill(17_300, 20_000)
    eq((expected, mismatch, warn), (17_500, -200, False))
    pump.tick(DAY)
    expected, mismatch, warn = pump.refill(18_000, 20_000)
    eq((expected, warn), (19_750, True))
    pump40, _ = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}, model=40, fill_ul=40_000)
    eq(pump40.refill(38_500, 40_000)[2], False)  # 1.5 mL off is within 2 mL on a 40 mL pump
    eq(pump40.refill(37_900, 40_000)[2], True)


@req("SR-022")
def test_forecast_dates():
    pump, prog = make({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}, model=20, fill_ul=20_000)
    f = pump.forecast()
    eq(f["days_to_low"], 72)  # (20 - 2) mL / 0.25 mL/day
    eq(f["days_to_empty"], 80)
    eq(f["low_day"], 9000 + 72)


@req("SR-037")
def test_clock_changes_never_repeat_a_periodic_bolus_or_catch_up():
    pump, prog = make(EVENING, ms=7 * 3_600_000 + 59 * 60_000)
    pump.tick(2 * 60_000)
    eq(pump.bolus_kind, "periodic")
    pump.tick(20 * 60_000)
    n = pump.steps_total.value()
    pump.set_wall(9000, 7 * 3_600_000 + 59 * 60_000)  # set back across 08:00
    pump.tick(2 * 60_000)
    eq(pump.bolus_kind, None)
    pump.set_wall(9000, 12 * 3_600_000)  # forward: no catch-up of the skipped hours
    before = pump.steps_total.value()
    pump.tick(60_000)
    assert pump.steps_total.value() - before <= 2


@req("SR-038")
def test_clock_changes_neither_shorten_nor_lengthen_lockout_or_window():
    d = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 200,
         "patient_bolus": {"dose_ug": 10, "duration_min": 5, "max_per_24h": 2, "lockout_min": 60}}
    pump, prog = make(d)
    pump.tick(61 * 60_000)
    eq(pump.patient_bolus()[0], "delivered")
    total = pump.rolling.total_ug(pump.up_s)
    pump.set_wall(9001, 0)  # the clock jumps a day forward
    eq(pump.patient_bolus()[0], "refused_lockout")
    eq(pump.rolling.total_ug(pump.up_s), total)
    pump.set_wall(8990, 0)  # and far back
    pump.tick(30 * 60_000)
    eq(pump.patient_bolus()[0], "refused_lockout")  # 30 of 60 min elapsed, whatever the clock says
    pump.tick(31 * 60_000)
    eq(pump.patient_bolus()[0], "delivered")
