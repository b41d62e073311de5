# The condition rules on their own (core/conditions.py): numbers in, decisions out, no board.
from mptest import eq
from core import conditions as c
from core.pump_tick import (FLAG_EMPTY, FLAG_LOW, FLAG_LIMIT24, FLAG_STOPPED_LONG, FLAG_PERIODIC_STARTED,
                       FLAG_PERIODIC_REFUSED, FLAG_PERIODIC_SKIPPED, FLAG_BRIDGE_DONE, FLAG_PRIME_DONE,
                       FLAG_CALIBRATION_RUN_DONE)


def test_flags_raise_their_alarms_in_order():
    eq(c.alarms_for_flags(0), [])
    eq(c.alarms_for_flags(FLAG_STOPPED_LONG | FLAG_EMPTY | FLAG_LIMIT24 | FLAG_LOW),
       ["RESERVOIR_EMPTY", "RESERVOIR_LOW", "DOSE_LIMIT_24H", "STOPPED_TOO_LONG"])
    eq(c.alarms_for_flags(FLAG_PRIME_DONE), [])
    eq(c.SAVE_ON_RAISE, ("RESERVOIR_EMPTY",))


def test_flags_ask_for_their_log_records():
    eq(c.events_for_flags(FLAG_EMPTY, 2000), [])
    got = c.events_for_flags(FLAG_PERIODIC_STARTED | FLAG_PERIODIC_REFUSED | FLAG_PERIODIC_SKIPPED
                             | FLAG_BRIDGE_DONE | FLAG_PRIME_DONE | FLAG_CALIBRATION_RUN_DONE, 2000)
    eq([k for k, d in got], ["bolus", "bolus", "bolus", "bridge_done", "prime_done", "calibration_run_done"])
    eq([d.get("outcome") for k, d in got[:3]], ["started", "refused_limit", "skipped"])
    eq(got[3][1], {"conc": 2000})
    eq(c.events_for_flags(FLAG_CALIBRATION_RUN_DONE, None), [("calibration_run_done", {})])


def test_battery_end_of_service_with_hysteresis():
    eos, hyst = c.BATTERY_EOS_MV, c.BATTERY_HYST_MV
    eq(c.battery_eos(eos), c.RAISE)
    eq(c.battery_eos(eos - 500), c.RAISE)
    eq(c.battery_eos(eos + 1), c.KEEP)
    eq(c.battery_eos(eos + hyst), c.KEEP)  # not yet past the hysteresis: neither
    eq(c.battery_eos(eos + hyst + 1), c.CLEAR)


def test_battery_elective_replacement_between_the_thresholds():
    eos, eri, hyst = c.BATTERY_EOS_MV, c.BATTERY_ERI_MV, c.BATTERY_HYST_MV
    eq(eos < eri, True)
    eq(c.battery_eri(eos), c.KEEP)  # at end of service EOS says it all
    eq(c.battery_eri(eos + 1), c.RAISE)
    eq(c.battery_eri(eri), c.RAISE)
    eq(c.battery_eri(eri + hyst), c.KEEP)
    eq(c.battery_eri(eri + hyst + 1), c.CLEAR)


def test_refill_due_on_and_after_the_forecast_day():
    eq(c.refill_due(9800, None), False)
    eq(c.refill_due(9799, 9800), False)
    eq(c.refill_due(9800, 9800), True)
    eq(c.refill_due(9801, 9800), True)


def test_occlusion_seen_once_a_minute():
    eq(c.occlusion(True, True, False), c.RAISE)
    eq(c.occlusion(True, True, True), c.RAISE)
    eq(c.occlusion(True, False, True), c.KEEP)  # stalled but stopped: nothing new to stop
    eq(c.occlusion(False, True, True), c.CLEAR)  # the head moves again: the cause is gone
    eq(c.occlusion(False, False, False), c.KEEP)


def test_minute_clears_what_is_measured_gone():
    eq(c.minute_clears(False, True, True, False), [])
    eq(c.minute_clears(True, False, False, True),
       ["AUTH_FAILURES", "CLOCK_NOT_SET", "STOPPED_TOO_LONG", "RESERVOIR_LOW"])
    eq(c.minute_clears(False, False, True, True), ["CLOCK_NOT_SET", "RESERVOIR_LOW"])
