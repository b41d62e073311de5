"""Annunciation and the battery on real pins: the alarm test and a high-priority alarm, seen as
the buzzer's PWM on GP15 and the LEDs on GP14/GP13, against the IEC 60601-1-8 timelines of
docs/alarms.md; the battery on ADC0 raising ERI, then end of service stopping therapy."""
from __future__ import annotations

import datetime as dt

import pytest

from .conftest import IDLE_SPEED
from .rig import Board, wait_until
from pumpctl import pico

PINS = pico.board_pins()
BUZZER, RED, YELLOW = PINS["BUZZER"], PINS["LED_RED"], PINS["LED_YELLOW"]
TOL_MS = 30  # each pulse edge within 30 ms of the pattern on a Pico (docs/alarms.md, "On the Pico")
# and every pulse and spacing inside the IEC 60601-1-8 ranges (docs/alarms.md's table).
IEC_TD = {523: (75, 200), 440: (125, 250), 392: (125, 250)}

# docs/alarms.md: high burst pulses start at these ms, 150 ms each, at 523 Hz; medium 3 x 200 ms
# at 440 Hz every 400 ms; low 2 x 200 ms at 392 Hz. The alarm test plays them in turn, each
# burst followed by 1 s of silence.
HIGH = [0, 250, 500, 1000, 1250, 2400, 2650, 2900, 3400, 3650]
TEST = ([(t, 150, 523) for t in HIGH] + [(4800 + t, 200, 440) for t in (0, 400, 800)]
        + [(6800 + t, 200, 392) for t in (0, 400)])


def pulses(history: list[list[float]]) -> list[tuple[float, float, float]]:
    """(start_ms, length_ms, freq_hz) of every sounding interval in a PWM history."""
    out, on = [], None
    for t_ns, freq, duty in history:
        t = t_ns / 1e6
        if duty > 0 and on is None:
            on = (t, freq)
        elif duty == 0 and on is not None:
            out.append((on[0], t - on[0], on[1]))
            on = None
    return out


def rising_ms(changes: list[list[int]]) -> list[float]:
    return [t / 1e6 for t, level in changes if level == 1]


def _match(got: list[tuple[float, float, float]], want: list[tuple[int, int, int]]) -> None:
    assert len(got) == len(want), (len(got), got)
    t0 = got[0][0]
    for (start, length, freq), (w_start, w_len, w_freq) in zip(got, want):
        assert abs((start - t0) - w_start) <= TOL_MS, (start - t0, w_start)
        assert abs(length - w_len) <= TOL_MS, (length, w_len)
        assert abs(freq - w_freq) <= 2, (freq, w_freq)
        lo, hi = IEC_TD[w_freq]
        assert lo <= length <= hi, f"pulse of {length:.0f} ms at {w_freq} Hz outside IEC {lo}..{hi} ms"


@pytest.mark.safety("SR-028")
def test_alarm_test_plays_each_iec_pattern_on_the_buzzer_and_leds(module_board: Board) -> None:
    board = module_board
    board.ctl("clear")
    t0 = board.t_ns()
    with board.pump() as p:
        p.link.request("alarms_test")
    wait_until("the alarm test sequence", lambda: board.t_ns() - t0 > 9.5e9, 60)
    pwm = board.ctl(f"pwm {BUZZER}")
    got = pulses(pwm["history"])
    _match(got, TEST)
    assert pwm["sounding"] is False, "silent again after the test"
    start = got[0][0]
    red = [t - start for t in rising_ms(board.edges(RED)["recent"])]
    yellow = [t - start for t in rising_ms(board.edges(YELLOW)["recent"])]
    # High: red flashing at 2 Hz through the 4.8 s stage; medium yellow flashing, low yellow steady.
    assert 9 <= len([t for t in red if -TOL_MS <= t < 4800]) <= 11, red
    assert [t for t in red if t >= 4800 + TOL_MS] == [], red
    assert yellow and all(t >= 4800 - TOL_MS for t in yellow), yellow
    assert board.level(RED) == 0 and board.level(YELLOW) == 0


@pytest.mark.safety("SR-013", "SR-028")
def test_battery_eri_then_end_of_service_stops_therapy_with_the_high_pattern(module_board: Board) -> None:
    board = module_board
    with board.pump() as p:
        p.link.request("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
        p.program_continuous(1000, 1000, "water", confirm=True)
    codes = lambda: [a["code"] for a in board.request("status")["alarms"]]  # noqa: E731
    # The battery is read at the pump's quarter-hour checks. Setting the clock to just before a
    # quarter hour brings the next check there (App.clock_set), so each wait is seconds of the
    # Pico's time, not up to 15 min; emulated time runs as fast as it goes meanwhile (speed 0).
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0) + dt.timedelta(minutes=15)
    with board.flat_out(then=IDLE_SPEED):
        pico.set_battery(board.info, 3250)  # below the 3300 mV elective replacement indicator
        board.time_sync(quarter - dt.timedelta(seconds=5))
        wait_until("BATTERY_ERI", lambda: "BATTERY_ERI" in codes(), 300, every=1)  # the quarter-hour check
        st = board.request("status")
        assert st["state"] == "running", "ERI keeps delivering"
        assert {a["code"]: a["priority"] for a in st["alarms"]}["BATTERY_ERI"] == "medium"
        pico.set_battery(board.info, 2950)  # below the 3000 mV end of service
        board.time_sync(quarter + dt.timedelta(minutes=15, seconds=-5))
        wait_until("BATTERY_EOS", lambda: "BATTERY_EOS" in codes(), 300, every=1)
        st = board.request("status")
        assert st["state"] == "stopped" and "end of service" in st["stop_reason"], st["stop_reason"]
        assert {a["code"]: a["priority"] for a in st["alarms"]}["BATTERY_EOS"] == "high"
        delivered = st["delivered_steps"]
        board.ctl("clear")
        t0 = board.t_ns()
        # The pattern's times below are the Pico's own (emulated) ms: the pace does not change them.
        wait_until("a whole high burst", lambda: board.t_ns() - t0 > 19e9, 90)
    got = pulses(board.ctl(f"pwm {BUZZER}")["history"])
    assert len(got) >= 10, (got, board.request("alarms"))
    # The high pattern repeats every 8.8 s: 19 s after clearing hold a whole burst and the
    # start of the next.
    first = next(i for i in range(1, len(got)) if got[i][0] - got[i - 1][0] > 2000)
    burst = got[first:first + 10]
    _match(burst, [(t, 150, 523) for t in HIGH])
    if first + 10 < len(got):
        assert abs((got[first + 10][0] - burst[0][0]) - 8800) <= TOL_MS
    red = rising_ms(board.edges(RED)["recent"])
    gaps = [b - a for a, b in zip(red, red[1:])]
    assert gaps and all(abs(g - 500) <= TOL_MS for g in gaps), gaps  # red flashing at 2 Hz
    assert board.edges(PINS["STEP"])["rising"] == 0, "no step after end of service"
    assert board.request("status")["delivered_steps"] == delivered
