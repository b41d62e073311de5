# Issue 17's firmware rules on their own: measured delivery (core/flow.py), the 24 h dose
# limit's clear (core/conditions.py), alarms' wall time (core/alarms.py), the reservoir rule of a
# program write and the resume refusal naming its alarm (core/pump.py).
from mptest import eq, raises
from core import conditions as c
from core.flow import FlowWatch, NO_FLOW_MISSING_NL, EVAP_ALLOW_NL_PER_H
from core.alarms import AlarmManager, civil
from core.base import Refusal
from core.pump import Pump
from core.program import parse
from core.druglib import LIBRARY

PL = 50_000  # pL per step: 20 steps per µL


def test_flow_watch_raises_when_no_water_arrives_and_only_then():
    f = FlowWatch()
    eq(f.look(0, PL, 0, True, 0), c.KEEP)  # the window starts
    # Water arrives as expected: clear, and the window starts again once 5 µL were judged.
    eq(f.look(100, PL, 5_000, True, 900), c.CLEAR)
    eq(f.ref_steps, 100)
    # The reservoir runs dry: steps go on, the scale stands still.
    eq(f.look(150, PL, 5_000, True, 1800), c.KEEP)  # 2.5 µL missing: under the threshold
    s = 100 + NO_FLOW_MISSING_NL // 50 + 2
    eq(f.look(s, PL, 5_000, True, 2700), c.RAISE)
    eq(f.expected_nl - f.arrived_nl >= NO_FLOW_MISSING_NL, True)
    eq(f.look(s, PL, 5_000, False, 3600), c.CLEAR)  # the head stopped: the cause is gone
    eq(f.ref_steps, -1)


def test_flow_watch_tolerates_calibration_evaporation_noise_and_an_emptied_beaker():
    f = FlowWatch()
    f.look(0, PL, 0, True, 0)
    # A head 40 % under its calibration: less water, never under half.
    eq(f.look(1000, PL, 30_000, True, 3600), c.CLEAR)
    # The lowest rates: 0.5 µL a day, all of it evaporating from the open beaker.
    g = FlowWatch()
    g.look(0, PL, 0, True, 0)
    for day in range(1, 30):
        eq(g.look(10 * day, PL, 0, True, day * 86_400) == c.RAISE, False)
    eq(EVAP_ALLOW_NL_PER_H * 24 > 500, True)  # that is why: the stated limit (docs/alarms.md)
    # Someone empties the beaker: a new window, not a missing volume.
    h = FlowWatch()
    h.look(0, PL, 50_000, True, 0)
    eq(h.look(2000, PL, 10, True, 900), c.KEEP)
    eq(h.ref_ug, 10)
    # No scale reading yet (an HX711's first sample): nothing is judged.
    eq(FlowWatch().look(10, PL, None, True, 0), c.KEEP)


def test_flow_watch_counts_large_step_totals_without_overflow():
    f = FlowWatch()
    big = 1 << 29
    f.look(big, 51_397, 0, True, 0)
    eq(f.look(big + 40_000, 51_397, 2_055_880, True, 3600), c.CLEAR)
    eq(f.expected_nl, 40_000 * 51_397 // 1000)


def test_dose_limit_clears_only_below_the_margin():
    eq(c.dose_limit_clear(1500, 1500), False)
    eq(c.dose_limit_clear(1426, 1500), False)
    eq(c.dose_limit_clear(1425, 1500), True)  # 5 % under
    eq(c.dose_limit_clear(5, 0), True)  # no maximum


def test_alarms_carry_the_wall_time_they_were_listed_at_across_a_snapshot():
    eq(civil(0), (2000, 1, 1))
    eq(civil(9833), (2026, 12, 3))
    eq(civil(59), (2000, 2, 29))

    class Wall:
        clock_set, day, ms = True, 9833, (8 * 3600 + 45 * 60 + 7) * 1000

    m = AlarmManager()
    m.wall_source = Wall()
    m.raise_alarm("BATTERY_ERI", 10)
    m.raise_alarm("CLOCK_NOT_SET", 11)
    Wall.clock_set = False
    m.raise_alarm("RESERVOIR_LOW", 12)
    got = {a["code"]: a["since_wall"] for a in m.active()}
    eq(got, {"BATTERY_ERI": [2026, 12, 3, 8, 45, 7], "CLOCK_NOT_SET": [2026, 12, 3, 8, 45, 7],
             "RESERVOIR_LOW": None})
    rows = m.snapshot()
    eq([r[3:] for r in rows if r[0] == "BATTERY_ERI"], [[9833, 31507000]])
    eq([r for r in rows if r[0] == "RESERVOIR_LOW"], [["RESERVOIR_LOW", True, False]])
    n = AlarmManager()
    n.restore(rows, 0)
    eq({a["code"]: a["since_wall"] for a in n.active()}, got)
    # A state saved before the wall time was kept restores without it.
    o = AlarmManager()
    o.restore([["BATTERY_ERI", True, False]], 0)
    eq(o.active()[0]["since_wall"], None)
    raises(ValueError, n.restore, [["BATTERY_ERI", True, False, 1]], 0)
    raises(ValueError, n.restore, [["BATTERY_ERI", True, False, 1, 86_400_000]], 0)


def _prog(drug, conc, rate):
    return parse({"drug": drug, "concentration_ug_per_ml": conc, "mode": "continuous",
                  "rate_ug_per_day": rate}, LIBRARY)


def test_a_new_drug_needs_a_refill_while_stopped_and_the_refusal_says_so():
    a = AlarmManager()
    p = Pump(a)
    p.reservoir.fill(20_000)
    water = _prog("water", 1000, 5000)
    p.check_new_program(water)  # no program yet: anything
    p.set_program(water, LIBRARY.max24_ug("water"))
    bac = _prog("baclofen", 2000, 500)
    e = raises(Refusal, p.check_new_program, bac)
    eq(e.code, "STATE")
    eq("water at 1000" in e.msg and "pumpctl refill" in e.msg and "stop" in e.msg, True)
    p.refill(19_000, 20_000)  # while running: the reservoir still holds what the program says
    raises(Refusal, p.check_new_program, bac)
    p.stop("stopped by programmer")
    p.refill(19_000, 20_000)
    p.check_new_program(bac)  # the refill while stopped: the next program says what was filled
    p.set_program(bac, LIBRARY.max24_ug("baclofen"))
    eq(p.refilled_stopped, False)
    e = raises(Refusal, p.check_new_program, _prog("baclofen", 1000, 500))
    eq("refill --concentration 1000" in e.msg, True)


def test_resume_names_the_alarm_that_holds_the_motor():
    a = AlarmManager()
    p = Pump(a)
    p.reservoir.fill(20_000)
    p.set_program(_prog("baclofen", 2000, 500), 1500)
    p.stop("battery end of service")
    a.raise_alarm("BATTERY_ERI", 1)
    a.ack("all", 2)
    a.raise_alarm("BATTERY_EOS", 3)
    eq(a.motor_blocker(), "BATTERY_EOS")
    e = raises(Refusal, p.resume)
    eq(e.code, "ALARM")
    eq("BATTERY_EOS" in e.msg, True)
    a.clear("BATTERY_EOS", 4)
    a.ack("all", 5)
    eq(a.motor_blocker(), None)
    p.resume()  # only the acknowledged ERI is left: it does not hold the motor
    eq(p.state, "running")
