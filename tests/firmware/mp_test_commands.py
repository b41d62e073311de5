# The command layer on the unix port: requests decoded and handed to the core, through the App
# as the protocol calls it (no storage: storage_root None).
from mptest import eq
from core.base import Refusal

from pumpsim import booted_app


def _app():
    a = booted_app()  # a sim board keeps nothing (storage_root None) unless run.py mounts it
    a.commands.program_set({"program": {"drug": "baclofen", "concentration_ug_per_ml": 2000,
                                        "mode": "continuous", "rate_ug_per_day": 500}})
    return a


def test_prime_takes_the_catheter_volume_per_cm_given_alone():
    # `pumpctl prime --catheter-nl-per-cm N` sends only catheter_nl_per_cm: it was ignored
    # (the handler looked for catheter_ul_per_cm), so the prime filled the old dead volume.
    a = _app()
    a.commands.settings({"catheter_cm": 10, "catheter_nl_per_cm": 1000})
    r = a.commands.prime({"catheter_nl_per_cm": 3000, "duration_min": 10})
    eq(a.pump.catheter_nl_per_cm, 3000)
    eq(r["volume_ul"], 30.0)


def test_prime_keeps_the_settings_not_given():
    a = _app()
    a.commands.settings({"tubing_ul": 20, "catheter_cm": 10, "catheter_nl_per_cm": 1000})
    a.commands.prime({"catheter_cm": 5})
    eq((a.pump.tubing_nl, a.pump.catheter_cm, a.pump.catheter_nl_per_cm), (20_000, 5, 1000))


def _refused(fn, args):
    try:
        fn(args)
    except Refusal as e:
        return e
    raise AssertionError("accepted %r" % (args,))


def test_a_bolus_out_of_range_is_refused_by_the_pump_in_ug_before_the_library():
    # The range is the core's (core.pump.check_bolus_size); the command only types the values,
    # and still asks the range before the drug's own limits (baclofen's hard limit is 200 µg).
    a = _app()
    for dose, dur, words in ((700, 10, "1..600 µg, not 700"), (0, 10, "not 0"), (10, 1441, "1..1440 minutes")):
        e = _refused(a.commands.bolus, {"dose_ug": dose, "duration_min": dur})
        eq(e.code, "RANGE")
        assert words in e.msg, e.msg
    eq(_refused(a.commands.bolus, {"dose_ug": "5", "duration_min": 10}).code, "BAD_ARGS")
    eq(_refused(a.commands.bolus, {"dose_ug": 300, "duration_min": 10}).code, "HARD_LIMIT")
    eq(a.pump.bolus_kind, None)


def test_a_calibration_out_of_range_is_refused_before_its_distance_from_the_last():
    a = _app()
    was = a.pump.pl_per_step
    for pl in (50, 2_000_000):
        e = _refused(a.commands.calibrate, {"pl_per_step": pl})
        eq(e.code, "RANGE")
        assert "100..1000000 pL per step" in e.msg, e.msg
    eq(_refused(a.commands.calibrate, {"pl_per_step": 90_000}).code, "FAR_FROM_LAST")
    eq(a.pump.pl_per_step, was)


def test_a_clock_out_of_range_is_refused_and_changes_nothing():
    a = _app()
    w = a.clock.wall()
    for day, ms, words in ((1 << 20, 0, "0..1048575"), (9800, 86_400_000, "0..86399999 ms")):
        e = _refused(a.commands.time_set, {"day": day, "ms": ms})
        eq(e.code, "RANGE")
        assert words in e.msg, e.msg
    eq(a.clock.wall(), w)


def test_catheter_and_priming_ranges_are_the_pumps_in_the_units_given():
    a = _app()
    a.commands.settings({"tubing_ul": 20, "catheter_cm": 10, "catheter_nl_per_cm": 1000})
    for args, words in (({"tubing_ul": 2001}, "tubing volume must be 0..2000 µL, not 2001"),
                        ({"catheter_cm": 501}, "catheter length must be 0..500 cm, not 501"),
                        ({"catheter_nl_per_cm": -1}, "volume per cm must be 0..50000 nL, not -1")):
        for fn in (a.commands.settings, a.commands.prime):
            e = _refused(fn, args)
            eq(e.code, "RANGE")
            assert words in e.msg, e.msg
    # A priming duration out of range is refused before the catheter settings change.
    e = _refused(a.commands.prime, {"duration_min": 241, "catheter_cm": 30})
    eq((e.code, e.msg), ("RANGE", "priming duration must be 1..240 minutes"))
    eq((a.pump.tubing_nl, a.pump.catheter_cm, a.pump.catheter_nl_per_cm, a.pump.run.steps_left), (20_000, 10, 1000, 0))


def test_a_prime_refused_after_its_catheter_was_checked_leaves_the_catheter_as_it_was():
    # The catheter given with a prime passes its ranges; the prime is then refused (a bolus is
    # running): the settings it brought must not stay behind.
    a = _app()
    a.commands.settings({"tubing_ul": 20, "catheter_cm": 10, "catheter_nl_per_cm": 1000})
    a.commands.bolus({"dose_ug": 50, "duration_min": 30})
    e = _refused(a.commands.prime, {"catheter_cm": 30, "tubing_ul": 40, "duration_min": 10})
    eq(e.code, "BUSY")
    eq((a.pump.tubing_nl, a.pump.catheter_cm, a.pump.catheter_nl_per_cm, a.pump.run.steps_left), (20_000, 10, 1000, 0))


def _events(a):
    seen = []
    a.event = lambda kind, data=None: seen.append(kind) or 0  # the App's log, without storage
    return seen


def test_a_calibration_run_logs_its_own_completion_not_prime_done():
    # Priming and calibration runs move volume through one integrator; each run still ends
    # with its own event, so a calibration run is never logged as a priming bolus.
    a = _app()
    a.commands.stop({})
    seen = _events(a)
    a.commands.run_volume({"steps": 200, "duration_min": 1})
    eq(a.pump.run.steps_left, 200)  # the field the host's calibrate waits on
    a.pump.tick(61_000)
    a.apply_flags(a.pump.take_flags())
    eq(a.pump.run.steps_left, 0)
    eq(seen, ["calibration_run", "calibration_run_done"])
    eq(a.pump.stop_reason, "calibration run done; not resumed")


def test_a_priming_bolus_still_logs_prime_done():
    a = _app()
    a.commands.settings({"catheter_cm": 10, "catheter_nl_per_cm": 1000})
    a.commands.stop({})
    seen = _events(a)
    a.commands.prime({"duration_min": 1})
    a.pump.tick(61_000)
    a.apply_flags(a.pump.take_flags())
    eq(a.pump.run.steps_left, 0)
    assert "prime_done" in seen and "calibration_run_done" not in seen, seen
    eq(a.pump.stop_reason, "primed; not resumed")


def test_refill_ranges_are_the_pumps_one_place():
    # The command once allowed 0..50000 µL withdrawn and the pump its capacity + 5000: now only
    # the pump decides, with its sentence, and nothing changes.
    a = _app()
    before = a.pump.reservoir.volume_ul()
    e = _refused(a.commands.refill, {"withdrawn_ul": 25_001, "volume_ul": 10_000})
    eq((e.code, e.msg), ("RANGE", "withdrawn volume must be 0..25000 µL"))
    eq(_refused(a.commands.refill, {"withdrawn_ul": 0, "volume_ul": 0}).code, "RANGE")
    eq(_refused(a.commands.refill, {"withdrawn_ul": "5", "volume_ul": 10_000}).code, "BAD_ARGS")
    eq(a.pump.reservoir.volume_ul(), before)


def test_settings_are_taken_whole_or_not_at_all():
    a = _app()
    a.commands.settings({"low_reservoir_ul": 3000, "stopped_alarm_h": 24, "catheter_cm": 10})
    for args in ({"low_reservoir_ul": 20_000, "catheter_cm": 30}, {"stopped_alarm_h": 0, "catheter_cm": 30},
                 {"low_reservoir_ul": 10_001}, {"stopped_alarm_h": 169, "low_reservoir_ul": 100}):
        eq(_refused(a.commands.settings, args).code, "RANGE")
    eq((a.pump.reservoir.low_nl, a.pump.stopped_alarm_s, a.pump.catheter_cm), (3_000_000, 24 * 3600, 10))
    eq(_refused(a.commands.settings, {"stopped_alarm_h": "24"}).code, "BAD_ARGS")


def test_one_shutdown_path_leaves_the_board_safe_then_saves():
    import app as app_mod
    a = _app()
    seen = []
    a.board.shutdown = lambda: seen.append("board")
    a.save = lambda: seen.append("save")
    app_mod.shutdown(a, a.board)
    eq(seen, ["board", "save"])
    app_mod.shutdown(None, a.board)  # the firmware never built an App: the board is still made safe
    eq(seen, ["board", "save", "board"])
