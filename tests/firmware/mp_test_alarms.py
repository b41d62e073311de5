# Alarm catalogue and AlarmManager state machine on the real interpreter.
import micropython
from mptest import req, eq, raises
from core import alarms
from core.alarms import AlarmManager

# The catalogue as docs/alarms.md states it: (priority, latching, stops_motor, stops_therapy).
EXPECTED = {
    "RESERVOIR_EMPTY": ("high", False, True, False),
    "RESERVOIR_LOW": ("medium", False, False, False),
    "OCCLUSION": ("high", True, True, False),
    "BATTERY_ERI": ("medium", True, False, False),
    "BATTERY_EOS": ("high", True, True, True),
    "MEMORY_CRITICAL": ("high", True, True, True),
    "MEMORY_ERROR": ("medium", True, False, False),
    "STOPPED_TOO_LONG": ("high", False, False, False),
    "REFILL_DUE": ("low", False, False, False),
    "CLOCK_NOT_SET": ("medium", False, False, False),
    "DOSE_LIMIT_24H": ("medium", True, False, False),
    "WATCHDOG_RESET": ("medium", True, False, False),
    "SELF_TEST_FAILED": ("high", True, True, False),
    "AUTH_FAILURES": ("low", True, False, False),
    "NO_FLOW": ("high", True, True, True),
    "ALARM_TEST": ("low", False, False, False),
}


def _evs(m):
    return [(e["t"], e["ev"], e["code"]) for e in m.drain_events()]


def test_catalogue_has_every_code_with_its_priority_and_latching():
    eq(sorted(alarms.CODES), sorted(EXPECTED.keys()))
    eq(len(alarms.CODES), len(set(alarms.CODES)), "duplicate codes")
    for code, exp in EXPECTED.items():
        i = alarms.info(code)
        eq((i["priority"], i["latching"], i["stops_motor"], i["stops_therapy"]), exp, code)
    eq([c["code"] for c in alarms.catalogue()], list(alarms.CODES))


@req("SR-010", "SR-012", "SR-013")
def test_synchromed_critical_alarms_are_high_and_non_critical_are_not():
    # DOMAIN.md: critical = empty reservoir, motor stall, end of service, critical memory error,
    # stopped too long; non-critical = low reservoir, ERI, non-critical memory error, refill date.
    for c in ("RESERVOIR_EMPTY", "OCCLUSION", "BATTERY_EOS", "MEMORY_CRITICAL", "STOPPED_TOO_LONG"):
        eq(alarms.info(c)["priority"], "high", c)
    for c in ("RESERVOIR_LOW", "BATTERY_ERI", "MEMORY_ERROR", "REFILL_DUE"):
        eq(alarms.info(c)["priority"] in ("medium", "low"), True, c)
    # Empty reservoir and occlusion stop the motor; low reservoir keeps delivering (SR-011);
    # end of service stops therapy.
    eq(alarms.info("RESERVOIR_EMPTY")["stops_motor"], True)
    eq(alarms.info("RESERVOIR_LOW")["stops_motor"], False)
    eq(alarms.info("BATTERY_EOS")["stops_therapy"], True)


def test_bad_input_is_refused_and_changes_nothing():
    m = AlarmManager()
    m.raise_alarm("REFILL_DUE", 1)
    _evs(m)
    before = m.active()
    e = raises(ValueError, m.raise_alarm, "NOT_A_CODE", 5)
    eq("NOT_A_CODE" in str(e) and "OCCLUSION" in str(e), True, str(e))
    raises(ValueError, m.raise_alarm, None, 5)
    raises(ValueError, m.clear, "occlusion", 5)  # codes are case-sensitive
    raises(ValueError, m.ack, "ALL", 5)
    raises(ValueError, m.ack, 3, 5)
    for bad_t in (-1, 1.5, "7", True, None, 1 << 30):
        raises(ValueError, m.raise_alarm, "OCCLUSION", bad_t)
        raises(ValueError, m.clear, "REFILL_DUE", bad_t)
        raises(ValueError, m.ack, "all", bad_t)
    for bad_d in (0, -5, alarms.MAX_PAUSE_MS + 1, 1000.0, "60000", None):
        raises(ValueError, m.pause_audio, bad_d, 5)
    for bad_dt in (-1, 0.5, None):
        raises(ValueError, m.tick, bad_dt)
    for bad_n in (-1, "3"):
        raises(ValueError, m.history, bad_n)
    for bad_len in (0, 1001, "5", 2.0):
        raises(ValueError, AlarmManager, bad_len)
    eq(m.active(), before)
    eq(m.audio_paused(), False)
    eq(m.drain_events(), [])
    eq(m.motor_blocked(), False)


def test_non_latching_alarm_leaves_when_its_cause_clears():
    m = AlarmManager()
    eq(m.raise_alarm("RESERVOIR_LOW", 10), True)
    eq(m.active(), [{"code": "RESERVOIR_LOW", "priority": "medium", "since": 10, "since_wall": None,
                     "state": "active"}])
    eq(m.highest(), "medium")
    eq(m.clear("RESERVOIR_LOW", 20), True)
    eq(m.active(), [])
    eq(m.highest(), None)
    eq(m.clear("RESERVOIR_LOW", 21), False)  # nothing left to clear, nothing logged
    eq(_evs(m), [(10, "raise", "RESERVOIR_LOW"), (20, "clear", "RESERVOIR_LOW")])


@req("SR-029")
def test_latching_alarm_keeps_sounding_after_cause_clears_until_acknowledged():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 100)
    eq(m.motor_blocked(), True)
    m.clear("OCCLUSION", 160)
    eq(m.state("OCCLUSION"), "latched")
    eq(m.highest(), "high")  # still annunciating
    eq(m.motor_blocked(), False)  # the cause is gone; the owner of the cause decided that
    eq(m.active()[0]["since"], 100)
    eq(m.ack("OCCLUSION", 200), ["OCCLUSION"])
    eq(m.state("OCCLUSION"), None)
    eq(m.active(), [])
    eq(m.highest(), None)
    eq(_evs(m), [(100, "raise", "OCCLUSION"), (160, "clear", "OCCLUSION"), (200, "ack", "OCCLUSION")])


@req("SR-029")
def test_every_latching_code_latches_and_every_other_code_does_not():
    for code, exp in EXPECTED.items():
        m = AlarmManager()
        m.raise_alarm(code, 1)
        m.clear(code, 2)
        eq(m.state(code), "latched" if exp[1] else None, code)
        eq(m.highest(), exp[0] if exp[1] else None, code)


def test_acknowledging_a_persisting_cause_silences_it_but_keeps_it_listed():
    m = AlarmManager()
    m.raise_alarm("RESERVOIR_EMPTY", 5)
    eq(m.ack("RESERVOIR_EMPTY", 6), ["RESERVOIR_EMPTY"])
    eq(m.state("RESERVOIR_EMPTY"), "acknowledged")
    eq(m.highest(), None)  # silent
    eq(m.motor_blocked(), True)  # acknowledging does not make the reservoir any less empty
    eq(m.ack("RESERVOIR_EMPTY", 7), [])  # already acknowledged: nothing new, nothing logged
    eq(m.raise_alarm("RESERVOIR_EMPTY", 8), False)  # cause still present: no re-annunciation
    eq(m.state("RESERVOIR_EMPTY"), "acknowledged")
    m.clear("RESERVOIR_EMPTY", 9)
    eq(m.active(), [])
    eq(m.motor_blocked(), False)
    eq(_evs(m), [(5, "raise", "RESERVOIR_EMPTY"), (6, "ack", "RESERVOIR_EMPTY"),
                 (9, "clear", "RESERVOIR_EMPTY")])


def test_acknowledged_latching_alarm_leaves_when_cause_clears():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 1)
    m.ack("OCCLUSION", 2)
    m.clear("OCCLUSION", 3)
    eq(m.state("OCCLUSION"), None)


def test_ack_all_returns_what_it_acknowledged():
    m = AlarmManager()
    m.raise_alarm("REFILL_DUE", 1)
    m.raise_alarm("OCCLUSION", 2)
    m.clear("OCCLUSION", 3)
    m.raise_alarm("BATTERY_ERI", 4)
    eq(m.ack("CLOCK_NOT_SET", 5), [])  # valid but not listed
    got = m.ack("all", 6)
    eq(sorted(got), ["BATTERY_ERI", "OCCLUSION", "REFILL_DUE"])
    eq([(a["code"], a["state"]) for a in m.active()],
       [("BATTERY_ERI", "acknowledged"), ("REFILL_DUE", "acknowledged")])
    eq(m.ack("all", 7), [])
    eq(m.highest(), None)


def test_cause_returning_to_a_latched_alarm_makes_it_active_again():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 1)
    m.clear("OCCLUSION", 2)
    eq(m.raise_alarm("OCCLUSION", 3), True)
    eq(m.state("OCCLUSION"), "active")
    eq(m.active()[0]["since"], 1)  # it never left the list
    eq(m.motor_blocked(), True)
    eq(m.raise_alarm("OCCLUSION", 4), False)
    eq(_evs(m), [(1, "raise", "OCCLUSION"), (2, "clear", "OCCLUSION"), (3, "raise", "OCCLUSION")])


def test_reraise_after_acknowledged_and_cleared_is_a_new_alarm():
    m = AlarmManager()
    m.raise_alarm("RESERVOIR_LOW", 1)
    m.ack("RESERVOIR_LOW", 2)
    m.clear("RESERVOIR_LOW", 3)
    m.raise_alarm("RESERVOIR_LOW", 40)
    eq(m.active(), [{"code": "RESERVOIR_LOW", "priority": "medium", "since": 40, "since_wall": None,
                     "state": "active"}])


@req("SR-030")
def test_audio_comes_back_when_the_pause_ends():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 10)
    m.pause_audio(120000, 10)
    eq(m.audio_paused(), True)
    eq(m.highest(), "high")  # lights still show it; only the buzzer is paused
    m.tick(60000)
    m.tick(59999)
    eq(m.audio_paused(), True)
    eq(m.pause_remaining_ms(), 1)
    m.tick(1)
    eq(m.audio_paused(), False)
    eq(m.pause_remaining_ms(), 0)
    eq(m.state("OCCLUSION"), "active")
    eq(_evs(m), [(10, "raise", "OCCLUSION"), (10, "pause", None), (130, "resume", None)])


@req("SR-030")
def test_latched_alarm_sounds_again_after_pause_too():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 0)
    m.clear("OCCLUSION", 1)
    m.pause_audio(2000, 2)
    m.tick(5000)
    eq(m.audio_paused(), False)
    eq(m.highest(), "high")


def test_pause_event_carries_duration_and_new_pause_replaces_old():
    m = AlarmManager()
    m.raise_alarm("REFILL_DUE", 0)
    m.pause_audio(60000, 1)
    m.tick(30000)
    m.pause_audio(10000, 31)
    eq(m.pause_remaining_ms(), 10000)
    m.tick(10000)
    evs = m.drain_events()
    eq([(e["t"], e["ev"], e["ms"]) for e in evs],
       [(0, "raise", 0), (1, "pause", 60000), (31, "pause", 10000), (41, "resume", 0)])


def test_resume_logged_no_later_than_callers_clock():
    # The caller's seconds may lag its ticks; the log must still stay in time order.
    m = AlarmManager()
    m.pause_audio(5000, 100)
    m.tick(5000)
    m.raise_alarm("REFILL_DUE", 102)
    eq([(e["t"], e["ev"]) for e in m.drain_events()], [(100, "pause"), (102, "resume"), (102, "raise")])


def test_a_more_urgent_new_alarm_ends_the_audio_pause():
    m = AlarmManager()
    m.raise_alarm("RESERVOIR_LOW", 1)
    m.pause_audio(120000, 2)
    m.raise_alarm("REFILL_DUE", 3)  # less urgent: stays paused
    eq(m.audio_paused(), True)
    m.raise_alarm("CLOCK_NOT_SET", 4)  # as urgent: stays paused
    eq(m.audio_paused(), True)
    m.raise_alarm("OCCLUSION", 5)  # worse: must be heard now
    eq(m.audio_paused(), False)
    evs = _evs(m)
    eq(evs[-2:], [(5, "raise", "OCCLUSION"), (5, "resume", None)])


def test_resume_audio_ends_pause_early():
    m = AlarmManager()
    eq(m.resume_audio(1), False)
    m.pause_audio(1000, 1)
    eq(m.resume_audio(1), True)
    eq(m.audio_paused(), False)
    m.tick(2000)  # no second "resume"
    eq([e["ev"] for e in m.drain_events()], ["pause", "resume"])


def test_highest_follows_the_loudest_sounding_alarm():
    m = AlarmManager()
    eq(m.highest(), None)
    m.raise_alarm("REFILL_DUE", 1)
    eq(m.highest(), "low")
    m.raise_alarm("BATTERY_ERI", 2)
    eq(m.highest(), "medium")
    m.raise_alarm("STOPPED_TOO_LONG", 3)
    eq(m.highest(), "high")
    m.raise_alarm("AUTH_FAILURES", 4)
    eq(m.highest(), "high")
    m.ack("STOPPED_TOO_LONG", 5)
    eq(m.highest(), "medium")
    m.clear("BATTERY_ERI", 6)  # latching: still medium
    eq(m.highest(), "medium")
    m.ack("BATTERY_ERI", 7)
    eq(m.highest(), "low")
    m.ack("all", 8)
    eq(m.highest(), None)


def test_motor_blocked_only_by_motor_stopping_causes():
    for code, exp in EXPECTED.items():
        m = AlarmManager()
        m.raise_alarm(code, 1)
        eq(m.motor_blocked(), exp[2], code)
        m.ack(code, 2)
        eq(m.motor_blocked(), exp[2], code + " acknowledged")
        m.clear(code, 3)
        eq(m.motor_blocked(), False, code + " cleared")


def test_active_lists_most_urgent_first_then_oldest():
    m = AlarmManager()
    m.raise_alarm("REFILL_DUE", 1)
    m.raise_alarm("CLOCK_NOT_SET", 2)
    m.raise_alarm("STOPPED_TOO_LONG", 5)
    m.raise_alarm("RESERVOIR_LOW", 3)
    m.raise_alarm("OCCLUSION", 4)
    m.raise_alarm("BATTERY_ERI", 0)  # catalogue order differs from age order
    eq([(a["code"], a["since"]) for a in m.active()],
       [("OCCLUSION", 4), ("STOPPED_TOO_LONG", 5), ("BATTERY_ERI", 0), ("CLOCK_NOT_SET", 2),
        ("RESERVOIR_LOW", 3), ("REFILL_DUE", 1)])
    for a in m.active():
        eq(sorted(a.keys()), ["code", "priority", "since", "since_wall", "state"])


def test_history_keeps_the_last_n_oldest_first():
    m = AlarmManager(history_len=3)
    m.raise_alarm("REFILL_DUE", 1)
    m.raise_alarm("OCCLUSION", 2)
    m.clear("OCCLUSION", 3)
    m.ack("OCCLUSION", 4)
    m.pause_audio(1000, 5)
    eq([(e["t"], e["ev"], e["code"]) for e in m.history()],
       [(3, "clear", "OCCLUSION"), (4, "ack", "OCCLUSION"), (5, "pause", None)])
    eq([e["t"] for e in m.history(2)], [4, 5])
    eq(m.history(0), [])
    eq(len(m.history(100)), 3)
    # Draining events for the log does not empty the history.
    m.drain_events()
    eq(len(m.history()), 3)


@req("SR-034")
def test_every_raise_ack_pause_and_clear_is_drained_once_with_its_time():
    m = AlarmManager()
    m.raise_alarm("MEMORY_ERROR", 11)
    m.clear("MEMORY_ERROR", 11)
    m.pause_audio(30000, 12)
    m.ack("MEMORY_ERROR", 13)
    evs = m.drain_events()
    eq([(e["t"], e["ev"], e["code"]) for e in evs],
       [(11, "raise", "MEMORY_ERROR"), (11, "clear", "MEMORY_ERROR"), (12, "pause", None),
        (13, "ack", "MEMORY_ERROR")])
    eq(m.drain_events(), [])


def test_undrained_events_overflow_is_counted_not_silent():
    m = AlarmManager()
    for t in range(40):
        m.raise_alarm("RESERVOIR_LOW", t)
        m.clear("RESERVOIR_LOW", t)
    evs = m.drain_events()
    eq(evs[0]["ev"], "lost")
    eq(evs[0]["ms"], 80 - 64)
    eq(len(evs), 65)
    eq((evs[1]["t"], evs[1]["ev"]), (8, "raise"))
    eq((evs[-1]["t"], evs[-1]["ev"]), (39, "clear"))


def _hot_path(m, n):
    # What the control tick may call: no allocation allowed.
    blocked = 0
    loud = None
    micropython.heap_lock()
    try:
        for _ in range(n):
            m.tick(250)
            if m.motor_blocked():
                blocked += 1
            loud = m.highest()
            m.audio_paused()
            m.pause_remaining_ms()
    finally:
        micropython.heap_unlock()
    return blocked, loud


def test_tick_and_queries_run_under_heap_lock():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 0)
    m.raise_alarm("REFILL_DUE", 0)
    m.pause_audio(1000, 0)
    blocked, loud = _hot_path(m, 10)  # the pause expires inside the locked section
    eq(blocked, 10)
    eq(loud, "high")
    eq(m.audio_paused(), False)
    eq([e["ev"] for e in m.drain_events()], ["raise", "raise", "pause", "resume"])
    m2 = AlarmManager()
    eq(_hot_path(m2, 3), (0, None))


def test_docs_table_matches_catalogue():
    # docs/alarms.md states each code's priority and latching; it must agree with the code.
    with open("docs/alarms.md") as f:
        text = f.read()
    for code, exp in EXPECTED.items():
        row = None
        for line in text.split("\n"):
            if line.startswith("| `" + code + "` |"):
                row = [c.strip() for c in line.split("|")]
                break
        if row is None:
            raise AssertionError("docs/alarms.md has no table row for " + code)
        # | code | cause | priority | pump action | clears | latching |
        eq(row[3], exp[0], code + " priority in docs")
        eq(row[6], "yes" if exp[1] else "no", code + " latching in docs")


def test_snapshot_and_restore_keep_a_latched_alarm_across_a_reboot():
    m = AlarmManager()
    m.raise_alarm("OCCLUSION", 100)
    m.clear("OCCLUSION", 120)
    m.raise_alarm("RESERVOIR_LOW", 130)
    m.ack("RESERVOIR_LOW", 131)
    snap = m.snapshot()
    eq(snap, [["RESERVOIR_LOW", True, True], ["OCCLUSION", False, False]])
    m2 = AlarmManager()  # after the reboot
    m2.restore(snap, 3)
    eq([(a["code"], a["state"], a["since"]) for a in m2.active()],
       [("OCCLUSION", "latched", 3), ("RESERVOIR_LOW", "acknowledged", 3)])
    eq(m2.highest(), "high")
    eq(m2.drain_events(), [])
    eq(m2.ack("all", 4), ["OCCLUSION"])


def test_restore_refuses_a_bad_snapshot_whole():
    for bad in ("x", [["OCCLUSION", False]], [["NOPE", True, False]],
                [["OCCLUSION", 1, False]],
                [["RESERVOIR_LOW", False, False]],  # non-latching without its cause
                [["OCCLUSION", False, True]],  # acknowledged and cause gone: not listed
                [["OCCLUSION", True, False], ["OCCLUSION", True, False]],
                [["REFILL_DUE", True, False], ["BAD", True, False]]):
        m = AlarmManager()
        raises(ValueError, m.restore, bad, 1)
        eq(m.active(), [], repr(bad))
    raises(ValueError, AlarmManager().restore, [], -1)
