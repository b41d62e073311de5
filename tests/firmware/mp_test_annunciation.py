# Annunciation pattern engine on the real interpreter: timings against IEC 60601-1-8's ranges,
# lights, audio pause, priority changes, the alarm test and allocation-free stepping.
import micropython
from mptest import req, eq, raises
from core import annunciation as an
from core.annunciation import Annunciator, timeline, alarm_test_timeline

# IEC 60601-1-8 ranges (ms), independent of the module's constants.
TD = {"high": (75, 200), "medium": (125, 250), "low": (125, 250)}
TS = {"high": (50, 125), "medium": (125, 250), "low": (125, 250)}
INTERBURST = {"high": (2500, 15000), "medium": (2500, 30000), "low": (15001, 10 ** 9)}


def _pulses(edges, end_ms):
    """(start, end, hz_first) of each sounding stretch in an edge list."""
    out = []
    start = None
    hz0 = 0
    for t, hz, _r, _y in edges:
        if hz and start is None:
            start, hz0 = t, hz
        elif not hz and start is not None:
            out.append((start, t, hz0))
            start = None
    if start is not None:
        out.append((start, end_ms, hz0))
    return out


def _bursts(pulses, min_gap):
    """Group pulses into bursts split by silences of at least min_gap ms."""
    bursts = [[pulses[0]]]
    for p in pulses[1:]:
        if p[0] - bursts[-1][-1][1] >= min_gap:
            bursts.append([p])
        else:
            bursts[-1].append(p)
    return bursts


def _check_burst_timings(priority, n_expected, span_ms):
    edges = timeline(priority, span_ms)
    pulses = _pulses(edges, span_ms)
    bursts = _bursts(pulses, 2500)
    eq(len(bursts) >= 2, True, "%s: at least two bursts in %d ms" % (priority, span_ms))
    lo, hi = TD[priority]
    for b in bursts[:-1]:
        eq(len(b), n_expected, priority + " pulses per burst")
        for s, e, hz in b:
            eq(lo <= e - s <= hi, True, "%s pulse duration %d" % (priority, e - s))
    # Interburst: end of last pulse to start of the next burst's first pulse.
    lo, hi = INTERBURST[priority]
    for k in range(len(bursts) - 1):
        gap = bursts[k + 1][0][0] - bursts[k][-1][1]
        eq(lo <= gap <= hi, True, "%s interburst %d" % (priority, gap))
    return bursts


@req("SR-028")
def test_high_priority_is_a_repeating_10_pulse_burst_3_2_3_2():
    bursts = _check_burst_timings("high", 10, 30000)
    b = bursts[0]
    td = b[0][1] - b[0][0]
    gaps = [b[k + 1][0] - b[k][1] for k in range(9)]
    x = gaps[0]
    eq(50 <= x <= 125, True, "x %d" % x)
    for k in (0, 1, 3, 5, 6, 8):  # spacings inside the 3 and 2 groups are all x
        eq(gaps[k], x, "spacing %d" % k)
    eq(gaps[2], 2 * x + td)  # 3rd-4th
    eq(gaps[7], 2 * x + td)  # 8th-9th
    eq(350 <= gaps[4] <= 1300, True, "5th-6th %d" % gaps[4])
    # Exactly the values docs/alarms.md states.
    eq((td, x, gaps[2], gaps[4]), (150, 100, 350, 1000))
    eq(bursts[1][0][0] - b[0][0], 8800)  # burst repeat period
    eq(bursts[1][0][0] - b[-1][1], 5000)  # interburst interval


@req("SR-028")
def test_medium_priority_is_a_3_pulse_burst():
    bursts = _check_burst_timings("medium", 3, 40000)
    b = bursts[0]
    gaps = [b[k + 1][0] - b[k][1] for k in range(2)]
    for g in gaps:
        eq(TS["medium"][0] <= g <= TS["medium"][1], True, "spacing %d" % g)
    eq([e - s for s, e, _ in b], [200, 200, 200])
    eq(bursts[1][0][0] - b[-1][1], 10000)


@req("SR-028")
def test_low_priority_is_1_or_2_pulses_repeating_after_more_than_15_s():
    bursts = _check_burst_timings("low", 2, 70000)
    b = bursts[0]
    eq(b[1][0] - b[0][1], 200)
    eq(bursts[1][0][0] - b[-1][1], 20000)


def test_tones_are_in_range_with_four_harmonics():
    # 150..1000 Hz fundamental, and a square wave's odd harmonics give >= 4 components in
    # 300..4000 Hz. The priorities differ in pitch as well as rhythm.
    seen = []
    for p in ("high", "medium", "low"):
        hz = set(x[1] for x in timeline(p, 30000) if x[1])
        eq(len(hz), 1, p)
        f = hz.pop()
        eq(150 <= f <= 1000, True, "%s %d Hz" % (p, f))
        n = len([k for k in range(1, 40, 2) if 300 <= k * f <= 4000])
        eq(n >= 4, True, "%s: %d harmonics" % (p, n))
        seen.append(f)
    eq(len(set(seen)), 3)


def _light_stats(priority, span):
    """Frequency (mHz) and on-duty (%) of each light over span ms, from the edges."""
    edges = timeline(priority, span)
    res = {}
    for idx, name in ((2, "red"), (3, "yellow")):
        ons = [edges[k][0] for k in range(len(edges))
               if edges[k][idx] and (k == 0 or not edges[k - 1][idx])]
        on_ms = 0
        for k in range(len(edges)):
            t_end = edges[k + 1][0] if k + 1 < len(edges) else span
            if edges[k][idx]:
                on_ms += t_end - edges[k][0]
        res[name] = (ons, on_ms * 100 // span)
    return res


@req("SR-028")
def test_lights_high_red_flashing_medium_yellow_flashing_low_yellow_steady():
    s = _light_stats("high", 20000)
    ons, duty = s["red"]
    period = ons[1] - ons[0]
    eq(all(ons[k + 1] - ons[k] == period for k in range(len(ons) - 1)), True)
    eq(1400 <= 1000000 // period <= 2800, True, "red %d mHz" % (1000000 // period))
    eq(20 <= duty <= 60, True, "red duty %d" % duty)
    eq(s["yellow"], ([], 0))
    s = _light_stats("medium", 20000)
    ons, duty = s["yellow"]
    period = ons[1] - ons[0]
    eq(400 <= 1000000 // period <= 800, True, "yellow %d mHz" % (1000000 // period))
    eq(20 <= duty <= 60, True, "yellow duty %d" % duty)
    eq(s["red"], ([], 0))
    s = _light_stats("low", 20000)
    eq(s["yellow"], ([0], 100))
    eq(s["red"], ([], 0))
    eq(timeline(None, 20000), [(0, 0, False, False)])


def test_audio_paused_silences_the_buzzer_but_not_the_lights():
    for p in ("high", "medium", "low"):
        edges = timeline(p, 30000, audio_paused=True)
        eq([e for e in edges if e[1]], [], p)
        paused_lights = [(e[0], e[2], e[3]) for e in edges]
        loud_lights = []
        for e in timeline(p, 30000):
            if not loud_lights or loud_lights[-1][1:] != (e[2], e[3]):
                loud_lights.append((e[0], e[2], e[3]))
        eq(paused_lights, loud_lights, p)


@req("SR-030")
def test_end_of_pause_restarts_the_burst_from_its_first_pulse():
    a = Annunciator()
    a.update("high", False)
    a.advance(5000)  # inside the interburst silence
    eq(a.buzzer_hz, 0)
    a.update("high", True)
    a.advance(100000)
    eq((a.buzzer_hz, a.red), (0, True))  # 105000 ms: silent, red in an "on" phase
    a.update("high", False)
    eq(a.buzzer_hz, an.HZ_HIGH)  # heard at once, not after the rest of an interburst
    eq(a.ms_to_next_change(), 150)  # a whole first pulse
    eq(a.red, True)  # the lights did not restart


def test_new_priority_restarts_at_its_first_pulse_and_same_update_changes_nothing():
    a = Annunciator()
    a.update("high", False)
    a.advance(3000)
    before = (a.buzzer_hz, a.red, a.yellow, a.ms_to_next_change())
    a.update("high", False)  # unchanged: must not restart
    eq((a.buzzer_hz, a.red, a.yellow, a.ms_to_next_change()), before)
    a.update("medium", False)
    eq((a.buzzer_hz, a.red, a.yellow), (an.HZ_MEDIUM, False, True))
    eq(a.ms_to_next_change(), 200)
    a.update(None, False)
    eq((a.buzzer_hz, a.red, a.yellow, a.ms_to_next_change()), (0, False, False, None))


def test_one_big_advance_equals_many_small_ones():
    for p in ("high", "medium", "low"):
        for total in (0, 149, 150, 8799, 8800, 123457, 3600000 + 77):
            big = Annunciator()
            big.update(p, False)
            big.advance(total)
            small = Annunciator()
            small.update(p, False)
            left = total
            while left > 0:
                step = min(left, 37)
                small.advance(step)
                left -= step
            eq((big.buzzer_hz, big.red, big.yellow, big.ms_to_next_change()),
               (small.buzzer_hz, small.red, small.yellow, small.ms_to_next_change()),
               "%s after %d ms" % (p, total))


def test_ms_to_next_change_lands_exactly_on_edges():
    a = Annunciator()
    a.update("high", False)
    t = 0
    while t < 9000:
        step = a.ms_to_next_change()
        eq(step > 0, True, "step at %d" % t)
        state = (a.buzzer_hz, a.red)
        if step > 1:
            a.advance(step - 1)
            eq((a.buzzer_hz, a.red), state, "changed early at %d" % (t + step - 1))
            a.advance(1)
        else:
            a.advance(1)
        t += step
    eq(t, 9000)  # edges at 8800 (burst) and 9000 (light) both hit


def test_two_tone_option_like_the_real_pump():
    edges = timeline("high", 20000, mode=an.MODE_TWO_TONE)
    tones = set(e[1] for e in edges if e[1])
    eq(sorted(tones), sorted([an.HZ_TWO_A, an.HZ_TWO_B]))
    # Alternating tones inside each burst.
    burst = [e[1] for e in edges if e[0] < 1500]
    eq(burst, [an.HZ_TWO_A, an.HZ_TWO_B] * 3)
    for p in ("medium", "low"):
        tones = set(e[1] for e in timeline(p, 40000, mode=an.MODE_TWO_TONE) if e[1])
        eq(len(tones), 1, p)
    # Lights are the same in both modes.
    eq([(e[0], e[2], e[3]) for e in timeline("medium", 1, mode=an.MODE_TWO_TONE)],
       [(0, False, True)])


@req("SR-028")
def test_alarm_test_plays_each_pattern_in_turn_then_returns():
    edges = alarm_test_timeline(after="low")
    pulses = _pulses(edges, 10 ** 6)
    by_hz = {}
    for s, e, hz in pulses:
        by_hz.setdefault(hz, []).append(s)
    eq(len(by_hz[an.HZ_HIGH]), 10)
    eq(len(by_hz[an.HZ_MEDIUM]), 3)
    eq(by_hz[an.HZ_HIGH][-1] < by_hz[an.HZ_MEDIUM][0], True)
    eq(by_hz[an.HZ_MEDIUM][-1] < by_hz[an.HZ_LOW][0], True)
    # Stages start at 0, 4800 (high burst 3800 + 1000) and 6800 (medium 1000 + 1000); the low
    # stage's 2 pulses end the test at 8400, where the requested "low" pattern starts afresh.
    eq((by_hz[an.HZ_HIGH][0], by_hz[an.HZ_MEDIUM][0], by_hz[an.HZ_LOW][0]), (0, 4800, 6800))
    eq(by_hz[an.HZ_LOW], [6800, 7200, 8400])
    eq(edges[-1], (8400, an.HZ_LOW, False, True))
    eq(edges[0][2], True)  # red flashes during the high stage
    a = Annunciator()
    a.update("high", True)  # audio paused: the test still sounds
    a.start_test()
    eq((a.testing, a.priority, a.buzzer_hz), (True, "high", an.HZ_HIGH))
    a.update("medium", True)  # remembered, shown after the test
    a.advance(4800)
    eq((a.priority, a.buzzer_hz, a.yellow), ("medium", an.HZ_MEDIUM, True))
    a.advance(2000 + 1600)
    eq((a.testing, a.priority, a.buzzer_hz, a.yellow), (False, "medium", 0, True))
    a.start_test()
    a.stop_test()
    eq((a.testing, a.priority, a.buzzer_hz), (False, "medium", 0))


def test_bad_input_is_refused_and_changes_nothing():
    raises(ValueError, Annunciator, "loud")
    a = Annunciator()
    a.update("medium", False)
    a.advance(300)
    before = (a.buzzer_hz, a.red, a.yellow, a.ms_to_next_change())
    e = raises(ValueError, a.update, "critical", False)
    eq("critical" in str(e), True)
    raises(ValueError, a.update, 3, False)
    raises(ValueError, a.update, "high", 1)
    raises(ValueError, a.update, "high", None)
    for bad in (-1, 1.5, None, "10", 1 << 30):
        raises(ValueError, a.advance, bad)
    eq((a.buzzer_hz, a.red, a.yellow, a.ms_to_next_change()), before)
    raises(ValueError, timeline, "high", -1)
    raises(ValueError, timeline, "bogus", 10)


def _locked_run(a, n):
    changes = 0
    micropython.heap_lock()
    try:
        last = a.buzzer_hz
        for k in range(n):
            a.update("high", k % 50 > 40)
            step = a.ms_to_next_change()
            a.advance(step if step is not None else 100)
            if a.buzzer_hz != last:
                changes += 1
                last = a.buzzer_hz
        a.start_test()
        a.advance(3000)
        a.advance(10000)
        a.advance(2000000)
    finally:
        micropython.heap_unlock()
    return changes


def test_update_advance_and_next_change_run_under_heap_lock():
    a = Annunciator()
    eq(_locked_run(a, 500) > 50, True)
    b = Annunciator(an.MODE_TWO_TONE)
    eq(_locked_run(b, 200) > 20, True)
