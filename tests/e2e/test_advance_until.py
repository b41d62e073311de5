"""`pumpctl bench advance --until WHEN` on a real lockstep bench: each event stops virtual time
at the wake that makes it true (the alarm's own raise time, not a day later), a date stops at
that time of the pump's clock, the cap stops an event that does not come, an event already so
answers at once, a WHEN that cannot be used is one sentence, and the Python API does the same.
Benches are small (a few hundred µL) and fast (10 mL/day), so events come within virtual hours."""
from __future__ import annotations

import datetime as dt
import io
import re
import sys
from typing import Any

import pytest

from pumpctl import api, wallclock
from pumpctl import bench as benchmod
from pumpctl.cli import main as cli_main
from pumpctl.errors import UsageError

MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000
FAST = ("program", "continuous", "10000", "--concentration", "1000", "--drug", "water", "--yes")  # 10 mL/day


def clock(info: benchmod.BenchInfo) -> dict:
    return benchmod.control(info, {"cmd": "show"})["clock"]


def codes(st: dict) -> list[str]:
    return [a["code"] for a in st["alarms"]]


def since(st: dict, code: str) -> int:
    return next(a["since"] for a in st["alarms"] if a["code"] == code)


def check_hit(r: dict, event: str, code: Any) -> dict:
    """The reply of an --until advance that stopped at `event`: stopped_by, the hit, and the clock
    at the hit (time stopped there)."""
    assert r["stopped_by"] == "event" and r["until"] == event, r
    h = r["hit"]
    assert h["event"] == event and h["code"] == code and h["already"] is False, h
    assert h["virtual_ms"] == r["clock"]["virtual_ms"] and h["wall"] == r["clock"]["wall"], r
    return h


def test_low_reservoir_stops_when_the_alarm_is_raised(bench, pumpctl):
    info = bench(reservoir_ul=300)
    pumpctl("settings", "--low-reservoir-ul", "200")
    pumpctl(*FAST)
    v0 = clock(info)["virtual_ms"]
    r = pumpctl("bench", "advance", "--until", "low-reservoir")
    h = check_hit(r, "low-reservoir", "RESERVOIR_LOW")
    # 100 µL at 10 mL/day takes 864 s; the alarm follows within a quarter hour at the latest
    assert 800_000 <= r["advanced_ms"] <= 864_000 + 15 * MIN, r
    assert r["advanced_ms"] == h["virtual_ms"] - v0 and r["alarms"] == ["RESERVOIR_LOW"]
    st = pumpctl("status")
    assert codes(st) == ["RESERVOIR_LOW"] and st["state"] == "running"
    assert abs(since(st, "RESERVOIR_LOW") - h["virtual_ms"] // 1000) <= 1, (st["alarms"], h)  # stopped at the raise
    assert st["uptime_s"] == h["virtual_ms"] // 1000
    assert 150 <= st["reservoir_ul"] <= 200, st["reservoir_ul"]


def test_empty_stops_when_the_pump_stops_and_then_is_already_so(bench, pumpctl):
    info = bench(reservoir_ul=100)
    pumpctl("settings", "--low-reservoir-ul", "0")  # only the empty alarm
    pumpctl(*FAST)
    r = pumpctl("bench", "advance", "--until", "empty")
    h = check_hit(r, "empty", "RESERVOIR_EMPTY")
    assert 800_000 <= r["advanced_ms"] <= 864_000 + 2 * MIN, r  # the 2000th step of 50 nL falls at 864 s
    st = pumpctl("status")
    assert st["state"] == "stopped" and "RESERVOIR_EMPTY" in codes(st)
    assert abs(since(st, "RESERVOIR_EMPTY") - h["virtual_ms"] // 1000) <= 1
    # Asked again: already so, answered at once, no time moves.
    again = pumpctl("bench", "advance", "--until", "empty")
    assert again["advanced_ms"] == 0 and again["stopped_by"] == "event", again
    assert again["hit"]["already"] is True and "already" in again["hit"]["detail"]
    assert again["clock"]["virtual_ms"] == clock(info)["virtual_ms"] == h["virtual_ms"]


def test_refill_due_stops_on_the_refill_by_day(bench, pumpctl):
    bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")  # 250 µL/day
    rf = pumpctl("refill", "--withdrawn-ul", "20000", "--volume-ul", "2375")
    assert rf["forecast"]["days_to_low"] == 1
    r = pumpctl("bench", "advance", "--until", "refill-due")
    h = check_hit(r, "refill-due", "REFILL_DUE")
    assert h["wall"][0] == rf["refill_day"] and h["wall"][1] <= 15 * MIN, h  # checked each quarter hour
    assert r["alarms"] == ["REFILL_DUE"]  # before the low reservoir (1.5 days away)
    assert r["advanced_ms"] <= DAY + 15 * MIN
    assert codes(pumpctl("status")) == ["REFILL_DUE"]


def test_next_alarm_skips_the_alarms_already_listed(bench, pumpctl):
    info = bench(reservoir_ul=300)
    pumpctl("settings", "--low-reservoir-ul", "1000")  # RESERVOIR_LOW from the start
    pumpctl(*FAST)
    pumpctl("bench", "advance", "1m")
    assert codes(pumpctl("status")) == ["RESERVOIR_LOW"]
    v0 = clock(info)["virtual_ms"]
    r = pumpctl("bench", "advance", "--until", "next-alarm")
    h = check_hit(r, "next-alarm", "RESERVOIR_EMPTY")
    assert h["detail"] == "RESERVOIR_EMPTY raised"
    # 300 µL at 10 mL/day: empty at 2592 s of delivery
    assert 2_500_000 <= h["virtual_ms"] <= 2_592_000 + 2 * MIN and h["virtual_ms"] > v0, h
    assert sorted(r["alarms"]) == ["RESERVOIR_EMPTY", "RESERVOIR_LOW"]


def test_an_event_days_away_is_found_across_day_requests(bench, pumpctl):
    info = bench(reservoir_ul=600)
    pumpctl("settings", "--low-reservoir-ul", "1000")  # RESERVOIR_LOW from the start: the baseline
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")  # 250 µL/day: empty in 2.4 days
    v_start = clock(info)["virtual_ms"]
    low = pumpctl("bench", "advance", "--until", "low-reservoir", "--cap", "1h")
    assert low["stopped_by"] == "event", low  # raised by the firmware's first check, within minutes
    pumpctl("alarms", "ack", "RESERVOIR_LOW")  # still listed (in the baseline), but silent: a quiet bench is fast
    v0 = clock(info)["virtual_ms"]
    r = pumpctl("bench", "advance", "--until", "next-alarm")
    h = check_hit(r, "next-alarm", "RESERVOIR_EMPTY")
    assert abs(h["virtual_ms"] - v_start - 2.4 * DAY) <= 5 * MIN, (r, v_start)
    assert h["virtual_ms"] - v0 == r["advanced_ms"] and sorted(r["alarms"]) == ["RESERVOIR_EMPTY", "RESERVOIR_LOW"]


def test_bolus_end_stops_when_the_bolus_is_done_and_answers_at_once_without_one(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    v0 = clock(info)["virtual_ms"]
    none = pumpctl("bench", "advance", "--until", "bolus-end")
    assert none["advanced_ms"] == 0 and none["hit"]["already"] is True, none
    assert none["hit"]["detail"] == "no bolus is running" and clock(info)["virtual_ms"] == v0
    pumpctl("bolus", "50", "--duration", "10m")
    assert pumpctl("status")["bolus"]["kind"] == "clinician"
    r = pumpctl("bench", "advance", "--until", "bolus-end")
    h = check_hit(r, "bolus-end", None)
    assert h["detail"] == "the clinician bolus ended"
    assert 9 * MIN <= r["advanced_ms"] <= 11 * MIN, r
    st = pumpctl("status")
    assert st["bolus"] is None and st["state"] == "running"


def test_a_date_stops_at_that_time_of_the_pumps_clock(bench, pumpctl):
    info = bench()
    wall0 = clock(info)["wall"]
    now = wallclock.from_pump(wall0)
    at = (now + dt.timedelta(hours=3)).replace(second=0, microsecond=0)
    r = pumpctl("bench", "advance", "--until", at.strftime("%Y-%m-%dT%H:%M"))
    assert r["stopped_by"] == "time" and r["hit"] is None, r
    assert r["clock"]["wall"] == list(wallclock.to_pump(at)) == clock(info)["wall"]
    assert r["advanced_ms"] == (at - now) // dt.timedelta(milliseconds=1)
    assert r["until"] == at.isoformat()
    # a date alone is midnight; the space-separated form is read too
    midnight = dt.datetime.combine(at.date() + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
    r = pumpctl("bench", "advance", "--until", midnight.strftime("%Y-%m-%d"))
    assert r["clock"]["wall"] == [wallclock.to_pump(midnight)[0], 0] and r["stopped_by"] == "time"
    r = pumpctl("bench", "advance", "--until", (midnight + dt.timedelta(hours=1, minutes=30)).strftime("%Y-%m-%d %H:%M"))
    assert r["clock"]["wall"] == [wallclock.to_pump(midnight)[0], 90 * MIN] and r["advanced_ms"] == 90 * MIN


def test_the_cap_stops_an_event_that_does_not_come(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")  # empty in 80 days
    v0 = clock(info)["virtual_ms"]
    r = pumpctl("bench", "advance", "--until", "empty", "--cap", "1d2h")
    assert r["stopped_by"] == "cap" and r["hit"] is None, r
    assert r["advanced_ms"] == DAY + 2 * HOUR and clock(info)["virtual_ms"] == v0 + DAY + 2 * HOUR
    assert r["cap_ms"] == DAY + 2 * HOUR and r["alarms"] == []
    # a date further than the cap stops at the cap too
    far = wallclock.from_pump(clock(info)["wall"]) + dt.timedelta(days=3)
    r = pumpctl("bench", "advance", "--until", far.strftime("%Y-%m-%d %H:%M"), "--cap", "2h")
    assert r["stopped_by"] == "cap" and r["advanced_ms"] == 2 * HOUR


def test_a_when_that_cannot_be_used_is_one_sentence_and_moves_nothing(bench, pumpctl):
    info = bench()
    v0 = clock(info)["virtual_ms"]
    for when, says in (("tomorrow", "neither an event"), ("2027-02-30", "not a date or time"),
                       ("2020-01-01", "is not after the pump's time now")):
        err = pumpctl("bench", "advance", "--until", when, ok=False)["error"]
        assert err["code"] == "USAGE" and says in err["message"], err
    past = wallclock.from_pump(clock(info)["wall"]) - dt.timedelta(minutes=1)
    err = pumpctl("bench", "advance", "--until", past.strftime("%Y-%m-%d %H:%M"), ok=False)["error"]
    assert "is not after the pump's time now" in err["message"]
    assert clock(info)["virtual_ms"] == v0
    # the installed command: one line on stderr, no traceback
    p = pumpctl.script("bench", "advance", "--until", "whenever", "--bench-dir", str(info.dir))
    assert p.returncode == 1 and p.stdout == "" and p.stderr.count("\n") == 1, p.stderr
    assert p.stderr.startswith("pumpctl: --until 'whenever' is neither an event") and "Traceback" not in p.stderr


def test_a_date_on_a_pump_whose_clock_is_not_set_is_refused(bench, pumpctl):
    info = bench(wall=None)
    err = pumpctl("bench", "advance", "--until", "2030-01-01", ok=False)["error"]
    assert err["code"] == "USAGE" and "clock is not set" in err["message"]
    assert clock(info)["virtual_ms"] == 0
    # an event needs no clock: the pump's time is its uptime
    r = pumpctl("bench", "advance", "--until", "empty", "--cap", "1h")
    assert r["clock"]["wall"] is None and r["stopped_by"] == "cap" and r["advanced_ms"] == HOUR


def test_json_gives_the_event_the_clock_and_what_stopped_it(bench, pumpctl):
    bench(reservoir_ul=100)
    pumpctl("settings", "--low-reservoir-ul", "0")
    pumpctl(*FAST)
    r = pumpctl("bench", "advance", "--until", "next-alarm", "--cap", "2h")
    assert set(r) == {"advanced_ms", "clock", "until", "hit", "stopped_by", "cap_ms", "alarms"}, r
    assert set(r["hit"]) == {"event", "virtual_ms", "wall", "detail", "code", "already"}
    assert set(r["clock"]) == {"virtual_ms", "uptime_s", "wall", "mode"}
    assert r["stopped_by"] == "event" and r["cap_ms"] == 2 * HOUR and r["alarms"] == ["RESERVOIR_EMPTY"]
    assert r["hit"]["code"] == "RESERVOIR_EMPTY" and r["advanced_ms"] < 20 * MIN, r  # 864 s, not the cap
    plain = pumpctl("bench", "advance", "1m")
    assert plain["until"] is None and plain["hit"] is None and plain["stopped_by"] == "time"
    assert plain["advanced_ms"] == MIN


def test_people_get_a_sentence_and_on_a_terminal_a_bar_by_virtual_days(bench, pumpctl, capsys, monkeypatch):
    bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")  # no alarm for weeks

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    capsys.readouterr()
    assert cli_main(["bench", "advance", "--until", "empty", "--cap", "2d"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(r"The cap of 2 d was reached before empty: advanced 2 d of virtual time; it is now "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d pump time \(uptime \d+ s\)\.\n", out), out
    bar = tty.getvalue()
    assert "until empty: day 1 of 2 [" in bar and "until empty: day 2 of 2 [" in bar, bar
    # --json: no bar even on a terminal
    tty.seek(0)
    tty.truncate(0)
    assert cli_main(["--json", "bench", "advance", "--until", "empty", "--cap", "1d"]) == 0
    assert tty.getvalue() == ""


def test_the_event_sentence(bench, pumpctl, capsys):
    bench(reservoir_ul=100)
    pumpctl("settings", "--low-reservoir-ul", "0")
    pumpctl(*FAST)
    capsys.readouterr()
    assert cli_main(["bench", "advance", "--until", "empty"]) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"RESERVOIR_EMPTY raised at \d{4}-\d\d-\d\d \d\d:\d\d pump time \(uptime \d+ s\), after "
                        r"1[45] min( \d+ s)? of virtual time\. Alarms listed: RESERVOIR_EMPTY\.\n", out), out
    assert err == ""  # not a terminal: no progress bar


def test_the_python_api(bench, home):
    info = bench(reservoir_ul=100)
    with api.connect(bench_dir=info.dir) as pump:
        pump.settings(low_reservoir_ul=0)
        pump.program_continuous(10_000, 1000, drug="water", confirm=True)
        told: list[int] = []
        r = pump.bench_advance_until("empty", cap_ms=DAY, progress=told.append)
        assert r["stopped_by"] == "event" and r["hit"]["code"] == "RESERVOIR_EMPTY"
        assert told == [r["advanced_ms"]]
        assert pump.status()["state"] == "stopped"
        at = wallclock.from_pump(r["clock"]["wall"]) + dt.timedelta(minutes=5)
        r2 = pump.bench_advance_until(at)
        assert r2["stopped_by"] == "time" and r2["advanced_ms"] == 5 * MIN
        with pytest.raises(UsageError, match="not after"):
            pump.bench_advance_until(at - dt.timedelta(minutes=1))


def test_a_bench_that_is_not_lockstep_refuses_an_until_advance(bench, pumpctl):
    bench(lockstep=False, speed=1)
    err = pumpctl("bench", "advance", "--until", "empty", ok=False)["error"]
    assert err["code"] == "BENCH" and "lockstep" in err["message"], err
