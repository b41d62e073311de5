"""pumpctl.usage: the patient bolus usage report from the pump's own counts (`patient_usage`),
and counted from the event log and the refusals' ring when the firmware does not know that
request; `pumpctl bolus-usage` on top of it. Offline, with a fake pump."""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import cli_report, usage  # noqa: E402
from pumpctl.errors import DeviceError, UsageError  # noqa: E402

DAY = 9833  # 2026-12-03 of the pump's clock
REPLY = {"today": DAY + 1, "days": [
    {"day": DAY, "date": [2026, 12, 3], "attempts": 7, "delivered": 2, "lockout": 3, "limit": 1,
     "rate_limited": 1, "other": 0},
    {"day": -1, "date": None, "attempts": 1, "delivered": 1, "lockout": 0, "limit": 0, "rate_limited": 0,
     "other": 0},
    {"day": DAY + 1, "date": [2026, 12, 4], "attempts": 300, "delivered": 1, "lockout": 4, "limit": 0,
     "rate_limited": 295, "other": 0}]}


def rec(seq: int, kind: str, data: dict[str, Any], day: Optional[int] = DAY, ms: int = 3_600_000) -> dict[str, Any]:
    return {"seq": seq, "wall": [day, ms] if day is not None else None, "uptime": seq, "type": kind, "data": data}


EVENTS = [rec(1, "power_on", {"fw": "0.0.9"}), rec(2, "program", {"drug": "baclofen"}),
          rec(3, "patient_bolus", {"outcome": "delivered", "src": "button"}),
          rec(4, "bolus", {"kind": "clinician", "outcome": "started", "dose_ug": 50}),
          rec(5, "patient_bolus", {"outcome": "delivered", "src": "programmer"}, day=DAY + 1)]
REFUSALS = [rec(1, "patient_bolus", {"outcome": "refused_lockout", "src": "button"}),
            rec(2, "patient_bolus", {"outcome": "refused_limit", "src": "programmer"}),
            rec(3, "auth_fail", {"code": "RATE_LIMITED", "cmd": "patient_bolus", "role": "patient"}),
            rec(4, "auth_fail", {"code": "AUTH_BAD_MAC", "cmd": "patient_bolus", "role": "patient"}),
            rec(5, "refusals_counted", {"n": 40, "codes": {"refused_lockout": 5, "RATE_LIMITED": 30,
                                                           "AUTH_BAD_MAC": 5}}, day=DAY + 1),
            rec(6, "repeat", {"cmd": "patient_bolus"})]


class FakePump:
    """What usage and logs ask of an api.Pump, answered from lists; `usage` None: old firmware."""

    bench = None

    def __init__(self, reply: Optional[dict[str, Any]], events: list[dict[str, Any]],
                 refusals: Optional[list[dict[str, Any]]], today: Optional[int] = DAY + 1) -> None:
        self.reply, self.rings = reply, {"events": events}
        if refusals is not None:
            self.rings["refusals"] = refusals
        self.today = today

    def identify(self) -> dict[str, Any]:
        return {"device_id": "FAKE-1", "board": "fake"}

    def status(self) -> dict[str, Any]:
        return {"wall": [self.today, 43_200_000] if self.today is not None else None}

    def patient_usage(self) -> dict[str, Any]:
        if self.reply is None:
            raise DeviceError("unknown command 'patient_usage'", "UNKNOWN_CMD")
        return self.reply

    def log_page(self, since: int = 0, max_records: int = 40, ring: str = "events") -> dict[str, Any]:
        if ring not in self.rings:
            ring = "events"  # an old pump ignores the ring argument
        recs = self.rings[ring]
        got = [r for r in recs if r["seq"] > since][:max_records]
        return {"records": got, "first_seq": 1, "last_seq": recs[-1]["seq"] if recs else 0, "corrupt": 0,
                **({"ring": ring} if "refusals" in self.rings else {})}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))  # logs' download cache


def test_rows_from_the_pumps_reply_oldest_first_with_dates() -> None:
    rows = usage.rows_from_reply(REPLY)
    assert [r.day for r in rows] == [None, DAY, DAY + 1]  # the clock-not-set row first
    assert rows[1].date == dt.date(2026, 12, 3) and rows[0].date is None
    r = rows[1]
    assert (r.attempts, r.delivered, r.lockout, r.limit, r.rate_limited, r.refused) == (7, 2, 3, 1, 1, 5)
    assert rows[2].as_dict()["date"] == [2026, 12, 4]


def test_a_malformed_reply_is_one_sentence() -> None:
    for bad in ({}, {"days": "x"}, {"days": [{"day": "today"}]}, {"days": [{"day": 1, "attempts": -1}]}):
        with pytest.raises(DeviceError) as e:
            usage.rows_from_reply(bad)
        assert e.value.code == "BAD_REPLY" and "bolus usage" in e.value.message


def test_fetch_uses_the_pumps_counts_when_it_has_them() -> None:
    u = usage.fetch(FakePump(REPLY, EVENTS, REFUSALS))
    assert u.source == "pump" and u.notes == [] and u.today == DAY + 1
    assert u.totals()["rate_limited"] == 296 and u.totals()["attempts"] == 308


@pytest.mark.safety("SR-004")
def test_old_firmware_falls_back_to_counting_the_logs() -> None:
    u = usage.fetch(FakePump(None, EVENTS, REFUSALS))
    assert u.source == "log" and "counted from the records its logs still hold" in u.notes[0]
    by = {r.day: r for r in u.rows}
    d = by[DAY]
    # delivered from the event log; lockout, limit and a rate-limited bolus from the refusals'
    # ring; the bad signature is no bolus request the gate saw, the repeat is no new request.
    assert (d.attempts, d.delivered, d.lockout, d.limit, d.rate_limited, d.other) == (4, 1, 1, 1, 1, 0)
    n = by[DAY + 1]  # a counted record stands for the refusals past the flash budget
    assert (n.attempts, n.delivered, n.lockout, n.rate_limited) == (36, 1, 5, 30)


def test_a_pump_without_a_refusals_ring_is_counted_from_its_event_log_once() -> None:
    events = EVENTS + [rec(6, "patient_bolus", {"outcome": "refused_lockout", "src": "button"})]
    u = usage.fetch(FakePump(None, events, None))
    d = {r.day: r for r in u.rows}[DAY]
    assert (d.attempts, d.delivered, d.lockout) == (2, 1, 1)  # not counted a second time as "refusals"


def test_record_days_from_either_wall_form() -> None:
    assert usage.record_day({"wall": [DAY, 5]}) == DAY
    assert usage.record_day({"wall": [2026, 12, 3, 8, 0, 0]}) == DAY
    assert usage.record_day({"wall": None}) is None
    rows = usage.rows_from_log([{"seq": 1, "wall": [2026, 12, 3, 8, 0, 0], "ev": "patient_bolus",
                                 "d": {"outcome": "refused_limit"}}])
    assert rows[0].day == DAY and rows[0].limit == 1


def test_last_days_fills_quiet_days_and_refuses_bad_counts() -> None:
    rows = usage.rows_from_reply(REPLY)
    last = usage.last_days(rows, 4, DAY + 1)
    assert [r.day for r in last] == [DAY - 2, DAY - 1, DAY, DAY + 1]
    assert last[0].attempts == 0 and last[2].attempts == 7
    assert [r.day for r in usage.last_days(rows, 1, None)] == [DAY + 1]
    for bad in (0, -3, 400, 1.5):
        with pytest.raises(UsageError, match="--days must be a whole number of days"):
            usage.last_days(rows, bad, DAY)  # type: ignore[arg-type]


def test_other_device_errors_are_not_taken_for_old_firmware() -> None:
    class Refusing(FakePump):
        def patient_usage(self) -> dict[str, Any]:
            raise DeviceError("not allowed", "AUTH_ROLE")
    with pytest.raises(DeviceError):
        usage.fetch(Refusing(REPLY, EVENTS, REFUSALS))


def test_the_words_name_each_outcome_and_the_source() -> None:
    u = usage.fetch(FakePump(REPLY, EVENTS, REFUSALS), days=2).as_dict()
    text = cli_report.usage_text(u)
    assert "counted by the pump" in text and "2026-12-04" in text and "2026-12-03" in text
    assert "lockout" in text and "daily limit" in text and "total" in text
    json.dumps(u)  # --json prints it as is
    assert cli_report.usage_text({"days": [], "source": "log", "notes": ["n"]}).startswith("No patient bolus")
