"""`pumpctl bench advance --until WHEN` on the host, with no bench: reading WHEN, the time to a
date, the request loop (day chunks, the baseline handed back, the cap), the sentences, and the
command line's refusals (each one sentence, before any bench is looked for)."""
from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from pumpctl import benchctl, render
from pumpctl.benchctl import DEFAULT_CAP_MS, EVENTS, Bench, ms_to, parse_when
from pumpctl.cli import build_parser, main
from pumpctl.errors import UsageError

DAY = 86_400_000
UTC = dt.timezone.utc


# ---- WHEN -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", EVENTS)
def test_every_event_reads_as_itself(text: str) -> None:
    assert parse_when(text) == text
    assert parse_when(f" {text.upper().replace('-', '_')} ") == text


@pytest.mark.parametrize("text, want", [
    ("2027-03-01", dt.datetime(2027, 3, 1, tzinfo=UTC)),
    ("2027-03-01T08:00", dt.datetime(2027, 3, 1, 8, tzinfo=UTC)),
    ("2027-03-01 08:00", dt.datetime(2027, 3, 1, 8, tzinfo=UTC)),
    ("2027-03-01T08:00:30", dt.datetime(2027, 3, 1, 8, 0, 30, tzinfo=UTC)),
    ("2027-03-01T09:00+01:00", dt.datetime(2027, 3, 1, 8, tzinfo=UTC)),
    ("2027-03-01T08:00Z", dt.datetime(2027, 3, 1, 8, tzinfo=UTC)),
])
def test_iso_dates_and_times_are_the_pumps_utc_clock(text: str, want: dt.datetime) -> None:
    got = parse_when(text)
    assert isinstance(got, dt.datetime) and got.tzinfo is not None
    assert got == want


def test_python_dates_and_datetimes_are_taken_as_they_are() -> None:
    assert parse_when(dt.date(2027, 3, 1)) == dt.datetime(2027, 3, 1, tzinfo=UTC)
    assert parse_when(dt.datetime(2027, 3, 1, 8)) == dt.datetime(2027, 3, 1, 8, tzinfo=UTC)


@pytest.mark.parametrize("text, says", [
    ("soon", "neither an event"),
    ("low reservoir", "neither an event"),
    ("", "neither an event"),
    ("2027-13-01", "not a date or time that can be read"),
    ("2027-02-30", "not a date or time that can be read"),
    ("2027-03-01 25:00", "not a date or time that can be read"),
])
def test_a_when_that_cannot_be_read_is_one_sentence(text: str, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_when(text)
    msg = e.value.message
    assert says in msg and "\n" not in msg and "2027-03-01T08:00" in msg, msg


@pytest.mark.parametrize("bad", [None, 42, 3.5, ["empty"]])
def test_a_when_of_another_type_is_refused(bad: Any) -> None:
    with pytest.raises(UsageError, match="event or a date"):
        parse_when(bad)


# ---- the time to a date -------------------------------------------------------------------------
WALL = [9921, 8 * 3_600_000]  # 2027-03-01 is day 9921; 08:00


def test_ms_to_a_later_time_of_the_pumps_clock() -> None:
    assert benchctl.wallclock.from_pump([9921, 0]) == dt.datetime(2027, 3, 1, tzinfo=UTC)
    assert ms_to(dt.datetime(2027, 3, 1, 9, tzinfo=UTC), WALL) == 3_600_000
    assert ms_to(dt.datetime(2027, 3, 2, tzinfo=UTC), WALL) == 16 * 3_600_000
    # a fraction of a ms rounds up: the advance never stops short of the time asked
    assert ms_to(dt.datetime(2027, 3, 1, 8, 0, 0, 500, tzinfo=UTC), WALL) == 1


@pytest.mark.parametrize("at", [dt.datetime(2027, 3, 1, 8, tzinfo=UTC), dt.datetime(2027, 2, 28, tzinfo=UTC),
                                dt.datetime(1999, 1, 1, tzinfo=UTC),
                                dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=14)))])
def test_a_time_not_after_the_pumps_is_refused(at: dt.datetime) -> None:
    with pytest.raises(UsageError) as e:
        ms_to(at, WALL)
    assert "is not after the pump's time now (2027-03-01 08:00:00 UTC)" in e.value.message


def test_a_date_needs_the_pumps_clock_set() -> None:
    with pytest.raises(UsageError, match="clock is not set"):
        ms_to(dt.datetime(2027, 3, 2, tzinfo=UTC), None)


# ---- the request loop, on a fake control channel ----------------------------------------------------
class FakeBench(Bench):
    """A Bench whose control channel is a script: the event comes after `hit_after_ms`."""

    def __init__(self, hit_after_ms: int | None, wall: list[int] | None = WALL) -> None:
        self.reqs: list[dict[str, Any]] = []
        self.v = 0
        self.hit_after = hit_after_ms
        self.wall0 = wall

    def _clock(self) -> dict[str, Any]:
        w = None
        if self.wall0:
            t = self.wall0[1] + self.v
            w = [self.wall0[0] + t // DAY, t % DAY]
        return {"virtual_ms": self.v, "uptime_s": self.v // 1000, "wall": w, "mode": "lockstep"}

    def control(self, req: dict[str, Any]) -> dict[str, Any]:
        self.reqs.append(req)
        if req["cmd"] == "show":
            return {"ok": True, "clock": self._clock()}
        assert req["cmd"] == "advance"
        if "until" not in req:
            self.v += req["ms"]
            return {"ok": True, "clock": self._clock()}
        v0 = self.v
        hit = None
        if self.hit_after is not None and self.v + req["ms"] >= self.hit_after:
            self.v = self.hit_after
            hit = {"event": req["until"], "virtual_ms": self.v, "wall": self._clock()["wall"],
                   "detail": "RESERVOIR_LOW raised", "code": "RESERVOIR_LOW", "already": False}
        else:
            self.v += req["ms"]
        return {"ok": True, "clock": self._clock(), "advanced_ms": self.v - v0, "hit": hit,
                "alarms": ["RESERVOIR_LOW"] if hit else [], "baseline": {"alarms": ["X"], "bolus": None}}


def test_an_event_advance_goes_a_day_a_request_and_hands_the_baseline_back() -> None:
    b = FakeBench(hit_after_ms=2 * DAY + 5_000)
    told: list[int] = []
    r = b.advance_until("low-reservoir", progress=told.append)
    assert [q.get("ms") for q in b.reqs] == [DAY, DAY, DAY]
    assert "baseline" not in b.reqs[0]
    assert all(q["baseline"] == {"alarms": ["X"], "bolus": None} for q in b.reqs[1:])
    assert all(q["until"] == "low-reservoir" for q in b.reqs)
    assert r["stopped_by"] == "event" and r["hit"]["code"] == "RESERVOIR_LOW"
    assert r["advanced_ms"] == 2 * DAY + 5_000 and r["clock"]["virtual_ms"] == 2 * DAY + 5_000
    assert r["until"] == "low-reservoir" and r["alarms"] == ["RESERVOIR_LOW"] and r["cap_ms"] == DEFAULT_CAP_MS
    assert told == [DAY, 2 * DAY, 2 * DAY + 5_000]


def test_the_cap_stops_an_event_advance_and_its_last_request_is_cut_to_fit() -> None:
    b = FakeBench(hit_after_ms=None)
    r = b.advance_until("empty", cap_ms=DAY + 3_600_000)
    assert [q["ms"] for q in b.reqs] == [DAY, 3_600_000]
    assert r["stopped_by"] == "cap" and r["hit"] is None and r["advanced_ms"] == DAY + 3_600_000


def test_the_default_cap_is_400_days() -> None:
    assert DEFAULT_CAP_MS == 400 * DAY
    b = FakeBench(hit_after_ms=None)
    r = b.advance_until("next-alarm")
    assert len(b.reqs) == 400 and r["advanced_ms"] == 400 * DAY and r["stopped_by"] == "cap"


def test_a_date_is_a_plain_advance_of_the_time_to_it() -> None:
    b = FakeBench(hit_after_ms=None)
    r = b.advance_until("2027-03-03T09:30")
    want = 2 * DAY + 90 * 60_000
    assert b.reqs[0] == {"cmd": "show"}
    assert [q["ms"] for q in b.reqs[1:]] == [DAY, DAY, 90 * 60_000] and all("until" not in q for q in b.reqs[1:])
    assert r == {"advanced_ms": want, "clock": b._clock(), "until": "2027-03-03T09:30:00+00:00", "hit": None,
                 "stopped_by": "time", "cap_ms": DEFAULT_CAP_MS}
    assert r["clock"]["wall"] == [9923, 9 * 3_600_000 + 30 * 60_000]


def test_a_date_beyond_the_cap_stops_at_the_cap() -> None:
    b = FakeBench(hit_after_ms=None)
    r = b.advance_until(dt.date(2027, 3, 10), cap_ms=DAY)
    assert r["stopped_by"] == "cap" and r["advanced_ms"] == DAY
    fresh = FakeBench(hit_after_ms=None)
    assert fresh.until_span("2027-03-10", DAY) == DAY and fresh.until_span("2027-03-01T09:00", DAY) == 3_600_000
    assert fresh.until_span("empty", DAY) == DAY and [q["cmd"] for q in fresh.reqs] == ["show", "show"]


@pytest.mark.parametrize("cap", [0, -1, 1.5, "1d", None, True])
def test_a_bad_cap_is_refused_before_any_request(cap: Any) -> None:
    b = FakeBench(hit_after_ms=0)
    with pytest.raises(UsageError, match="cap"):
        b.advance_until("empty", cap_ms=cap)
    assert b.reqs == []


def test_a_bad_when_or_a_past_date_sends_no_advance() -> None:
    b = FakeBench(hit_after_ms=0)
    with pytest.raises(UsageError):
        b.advance_until("whenever")
    with pytest.raises(UsageError, match="not after"):
        b.advance_until("2027-03-01T07:59")
    nc = FakeBench(hit_after_ms=0, wall=None)
    with pytest.raises(UsageError, match="clock is not set"):
        nc.advance_until("2027-03-02")
    assert [q["cmd"] for q in b.reqs + nc.reqs] == ["show", "show"]


# ---- sentences ------------------------------------------------------------------------------------
def test_span_text() -> None:
    assert render.span_text(44 * DAY + 3 * 3_600_000 + 10 * 60_000) == "44 d 3 h 10 min"
    assert render.span_text(864_000) == "14 min 24 s"
    assert render.span_text(DAY) == "1 d"
    assert render.span_text(250) == "250 ms"
    assert render.span_text(0) == "0 ms"


def _clock(v: int, wall: list[int] | None) -> dict[str, Any]:
    return {"virtual_ms": v, "uptime_s": v // 1000, "wall": wall, "mode": "lockstep"}


def test_the_sentence_for_an_event() -> None:
    v = 44 * DAY + 3 * 3_600_000 + 10 * 60_000
    wall = [9865, 8 * 3_600_000 + 12 * 60_000]  # 2027-01-04 08:12
    hit = {"event": "low-reservoir", "virtual_ms": v, "wall": wall, "detail": "RESERVOIR_LOW raised",
           "code": "RESERVOIR_LOW", "already": False}
    res = {"advanced_ms": v, "clock": _clock(v, wall), "until": "low-reservoir", "hit": hit, "stopped_by": "event",
           "cap_ms": DEFAULT_CAP_MS, "alarms": ["RESERVOIR_LOW"]}
    assert render.advanced_until_text(res) == (
        f"RESERVOIR_LOW raised at 2027-01-04 08:12 pump time (uptime {v // 1000} s), after 44 d 3 h 10 min of "
        "virtual time. Alarms listed: RESERVOIR_LOW.")


def test_the_sentences_for_already_so_no_bolus_the_cap_a_date_and_no_clock() -> None:
    wall = [9865, 0]
    already = {"advanced_ms": 0, "clock": _clock(5000, wall), "until": "empty", "stopped_by": "event",
               "cap_ms": DAY, "alarms": ["RESERVOIR_EMPTY"],
               "hit": {"event": "empty", "virtual_ms": 5000, "wall": wall, "detail": "RESERVOIR_EMPTY was already listed",
                       "code": "RESERVOIR_EMPTY", "already": True}}
    assert render.advanced_until_text(already) == (
        "RESERVOIR_EMPTY was already listed at 2027-01-04 00:00 pump time (uptime 5 s): nothing to wait for, "
        "no time was advanced. Alarms listed: RESERVOIR_EMPTY.")
    nobolus = dict(already, alarms=[], hit={"event": "bolus-end", "virtual_ms": 5000, "wall": None,
                                            "detail": "no bolus is running", "code": None, "already": True})
    assert render.advanced_until_text(nobolus) == (
        "No bolus is running at uptime 5 s (the pump's clock is not set), so there is no bolus end to wait for; "
        "no time was advanced.")
    cap = {"advanced_ms": 2 * 3_600_000, "clock": _clock(7_200_000, [9865, 7_200_000]), "until": "empty",
           "hit": None, "stopped_by": "cap", "cap_ms": 7_200_000, "alarms": []}
    assert render.advanced_until_text(cap) == (
        "The cap of 2 h was reached before empty: advanced 2 h of virtual time; it is now 2027-01-04 02:00 pump "
        "time (uptime 7200 s).")
    datecap = dict(cap, until="2027-03-01T08:00:00+00:00")
    assert "reached before 2027-03-01 08:00 pump time:" in render.advanced_until_text(datecap)
    reached = dict(cap, until="2027-01-04T02:00:00+00:00", stopped_by="time")
    assert render.advanced_until_text(reached) == (
        "Reached 2027-01-04 02:00 pump time (uptime 7200 s), after 2 h of virtual time.")


# ---- the command line ------------------------------------------------------------------------------
@pytest.fixture
def nobench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("argv, says", [
    (["bench", "advance"], "needs a DURATION (e.g. 6h, 2d) or --until WHEN"),
    (["bench", "advance", "1h", "--until", "empty"], "a DURATION or --until WHEN, not both"),
    (["bench", "advance", "1h", "--cap", "2h"], "--cap goes with --until"),
    (["bench", "advance", "--until", "tomorrow"], "neither an event"),
    (["bench", "advance", "--until", "2027-02-30"], "not a date or time that can be read"),
    (["bench", "advance", "--until", "empty", "--cap", "soon"], "cannot read duration 'soon'"),
    (["bench", "advance", "--until", "empty", "--cap", "0s"], "--cap must be more than 0"),
    (["bench", "advance", "--until", "empty", "--cap", "12"], "needs a unit"),
])
def test_the_command_line_refuses_in_one_sentence_before_looking_for_a_bench(
        nobench: None, capsys: pytest.CaptureFixture[str], argv: list[str], says: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("pumpctl: ") and says in err and err.count("\n") == 1, err
    assert "Traceback" not in err and "no virtual bench" not in err
    assert main(["--json", *argv]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["error"]["code"] == "USAGE" and says in out["error"]["message"]


def test_a_good_until_with_no_bench_says_there_is_no_bench(nobench: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "advance", "--until", "empty"]) == 1
    assert "no virtual bench is running" in capsys.readouterr().err


def test_every_option_of_bench_advance_has_help() -> None:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    bench = sub.choices["bench"]
    bsub = next(a for a in bench._actions if isinstance(a, argparse._SubParsersAction))
    adv = bsub.choices["advance"]
    dests = {a.dest: a for a in adv._actions}
    assert {"duration", "until", "cap"} <= set(dests)
    for a in adv._actions:
        assert a.help and a.help != argparse.SUPPRESS, a.dest
    assert all(e in dests["until"].help for e in EVENTS) and "2027-03-01" in dests["until"].help
    assert "400d" in dests["cap"].help


def test_a_bench_older_than_until_is_one_sentence_not_a_key_error() -> None:
    class Old(FakeBench):
        def control(self, req: dict[str, Any]) -> dict[str, Any]:
            self.reqs.append(req)
            self.v += req["ms"]
            return {"ok": True, "clock": self._clock()}  # the plain advance's reply

    with pytest.raises(benchctl.BenchError, match="started before `advance --until` existed.*1d: stop it"):
        Old(hit_after_ms=None).advance_until("empty")


def test_a_time_with_a_zone_is_said_in_the_pumps_utc() -> None:
    got = parse_when("2027-03-01T09:00+01:00")
    assert isinstance(got, dt.datetime) and got.utcoffset() == dt.timedelta(0) and got.hour == 8
    r = FakeBench(hit_after_ms=None).advance_until("2027-03-01T10:00+01:00", cap_ms=60_000)
    assert r["until"] == "2027-03-01T09:00:00+00:00" and r["stopped_by"] == "cap"
    assert "reached before 2027-03-01 09:00 pump time:" in render.advanced_until_text(r)
    # out of range in UTC: kept as given, and still no traceback
    assert parse_when("9999-12-31T23:00-14:00").year == 9999
    assert FakeBench(hit_after_ms=None).until_span("9999-12-31T23:00-14:00", DAY) == DAY
