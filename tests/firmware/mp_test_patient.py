# The patient bolus gate on the real MicroPython interpreter (core/patient.py).
import json
from mptest import req, eq, raises
from core.patient import PatientGate
from core.rolling import Rolling24

# 20 µg over 5 min, at most 4 per 24 h, 180 min lockout (the documented example).
S = (20, 5, 4, 180)
H = 3600
DAY = 86400


@req("SR-004")
def test_lockout_after_each_bolus():
    g = PatientGate(S)
    eq(g.request(1000), ("delivered", "patient bolus 20 µg over 5 min (1 of 4 in 24 h)"))
    eq(g.request(1001), ("refused_lockout", "locked out: next patient bolus allowed in 3 h 00 min"))
    eq(g.request(1000 + 180 * 60 - 1)[0], "refused_lockout")
    eq(g.request(1000 + 180 * 60 - 1)[1], "locked out: next patient bolus allowed in 1 min")
    eq(g.request(1000 + 180 * 60)[0], "delivered")
    eq(g.count_24h(1000 + 180 * 60), 2)


@req("SR-004")
def test_refused_requests_change_nothing():
    g = PatientGate(S)
    g.request(0)
    before = (g.lockout_until, list(g.given))
    for t in range(60, 180 * 60, 600):
        eq(g.request(t)[0], "refused_lockout")
    eq((g.lockout_until, list(g.given)), before)
    eq(g.count_24h(180 * 60 - 1), 1)


@req("SR-004")
def test_lockout_after_programming_and_refill():
    g = PatientGate(S)
    g.start_lockout(500)                  # a program was just written
    eq(g.request(500)[0], "refused_lockout")
    eq(g.request(500 + 180 * 60 - 1)[0], "refused_lockout")
    eq(g.request(500 + 180 * 60)[0], "delivered")
    # A refill with an explicit lockout; a shorter one never cuts a running lockout.
    g2 = PatientGate(S)
    g2.start_lockout(0, 2 * H)
    g2.start_lockout(10, 60)
    eq(g2.request(2 * H - 1)[0], "refused_lockout")
    eq(g2.request(2 * H)[0], "delivered")


@req("SR-004")
def test_daily_count_over_rolling_window():
    g = PatientGate((20, 5, 4, 60))
    t0 = 10 * H
    for i in range(4):
        eq(g.request(t0 + i * 2 * H)[0], "delivered")
    # 5th within 24 h of the 1st: refused by limit, even though the lockout has passed.
    out, detail = g.request(t0 + 8 * H)
    eq(out, "refused_limit")
    eq(detail, "4 of 4 patient boluses per 24 h already given: next allowed in 16 h 00 min")
    eq(g.request(t0 + DAY - 1)[0], "refused_limit")
    eq(g.wait_s(t0 + DAY - 1), 1)
    # Exactly 24 h after the first, one slot frees: rolling, not a calendar day.
    eq(g.request(t0 + DAY)[0], "delivered")
    eq(g.request(t0 + DAY + H)[0], "refused_limit")
    eq(g.count_24h(t0 + DAY + H), 4)


@req("SR-004")
def test_reprogramming_keeps_count_and_locks_out():
    g = PatientGate((20, 5, 2, 60))
    g.request(0)
    g.request(H)
    g.reconfigure((30, 5, 3, 30), 2 * H)
    out = g.request(2 * H + 29 * 60)
    eq(out[0], "refused_lockout")
    eq(g.request(2 * H + 30 * 60)[0], "delivered")   # 3rd of the new 3 per 24 h
    eq(g.request(4 * H)[0], "refused_limit")


@req("SR-003", "SR-004")
def test_rolling_24h_maximum_refuses_whole():
    r = Rolling24(900)
    r.add(0, 1490 * 1000)                 # 1490 µg already this day
    g = PatientGate(S)
    out, detail = g.request(60, r, 1500)
    eq(out, "refused_limit")
    eq(detail, "a 20 µg patient bolus would pass the 24 h maximum of 1500 µg (1490 µg given in "
               "the last 24 h)")
    eq(g.count_24h(60), 0)                # nothing recorded, no lockout started
    eq(g.wait_s(60), 0)
    r2 = Rolling24(900)
    r2.add(0, 1480 * 1000)
    eq(g.request(60, r2, 1500)[0], "delivered")


def test_not_programmed():
    g = PatientGate(None)
    eq(g.request(0), ("refused_limit", "no patient bolus is programmed"))
    eq(g.wait_s(0), -1)
    g.start_lockout(0)
    eq(g.request(10)[0], "refused_limit")


def test_bad_settings():
    for s in ((20, 5, 4), (20, 5, 0, 60), (20.0, 5, 4, 60), [20, 5, 4, 60], "x"):
        raises(ValueError, PatientGate, s)


def test_clock_going_back_does_not_shorten_lockout():
    g = PatientGate(S)
    g.request(10000)
    eq(g.request(5)[0], "refused_lockout")
    eq(g.request(10000 + 180 * 60 - 1)[0], "refused_lockout")


def test_state_round_trip_and_reboot():
    g = PatientGate((20, 5, 4, 60))
    g.request(0)
    g.request(2 * H)
    st = g.to_state(2 * H + 600)
    eq(st, {"lockout_s": 3000, "ages": [2 * H + 600, 600]})
    st = json.loads(json.dumps(st))
    # After a reboot uptime starts again near 0.
    h = PatientGate((20, 5, 4, 60))
    h.from_state(st, 5)
    eq(h.request(5 + 2999)[0], "refused_lockout")
    eq(h.request(5 + 3000)[0], "delivered")
    eq(h.count_24h(5 + 3000), 3)
    eq(h.request(5 + 3000 + 3600)[0], "delivered")
    eq(h.request(5 + 3000 + 7200)[0], "refused_limit")
    # Bad state: ValueError, gate unchanged.
    before = json.dumps(h.to_state(20000))
    for bad in ([], {"lockout_s": -1, "ages": []}, {"lockout_s": 0, "ages": [DAY]},
                {"lockout_s": 0, "ages": ["1"]}, {"ages": []}):
        raises(ValueError, h.from_state, bad, 20000)
    eq(json.dumps(h.to_state(20000)), before)
