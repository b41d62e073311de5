"""The patient bolus usage report: per day of the pump's clock, how many patient boluses were
asked for and what came of each (delivered, refused by the lockout, refused by the daily
limit, refused as too many requests a minute, other). Built on api.Pump and logs.

The pump counts the requests itself (`patient_usage`, about 31 days kept, docs/protocol.md),
including those whose own log record was not written because patient traffic has a flash
budget; its counts are used whenever it answers. A pump whose firmware does not know the
request (UNKNOWN_CMD) is counted from its logs instead: `patient_bolus` records of the event
log and of the refusals' ring, and the `refusals_counted` records that stand for refusals
past the budget. The log can only count what it still holds: the result says so in `notes`.

Nothing here prints: the sentences for people are in cli_report.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Optional, Sequence

from . import logs
from .api import Pump
from .errors import DeviceError, UsageError

FIELDS = ("attempts", "delivered", "lockout", "limit", "rate_limited", "other")
# The patient gate's outcomes (firmware/core/patient.py) and the auth budget's code
# (firmware/services/auth.py), as the firmware's usage counter files them (core/usage.py).
_COLUMN = {"delivered": "delivered", "refused_lockout": "lockout", "refused_limit": "limit",
           "rate_limited": "rate_limited", "RATE_LIMITED": "rate_limited"}
_EPOCH = dt.date(2000, 1, 1)  # the pump's day 0
UNKNOWN = ("UNKNOWN_CMD", "UNKNOWN_COMMAND")
MAX_DAYS = 366


@dataclass(frozen=True)
class UsageRow:
    """One day of the pump's clock. day: days since 2000-01-01, or None for requests made while
    the pump's clock was not set (date is None then too)."""
    day: Optional[int]
    date: Optional[dt.date]
    attempts: int = 0
    delivered: int = 0
    lockout: int = 0
    limit: int = 0
    rate_limited: int = 0
    other: int = 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["date"] = [self.date.year, self.date.month, self.date.day] if self.date else None
        return d

    @property
    def refused(self) -> int:
        return self.lockout + self.limit + self.rate_limited


@dataclass(frozen=True)
class Usage:
    """rows: oldest first. source: "pump" (its own counts) or "log" (counted from its logs).
    today: the pump's day number now (None: its clock is not set or not known).
    notes: sentences on what the counts may miss."""
    rows: list[UsageRow]
    source: str
    today: Optional[int]
    notes: list[str]

    def totals(self) -> dict[str, int]:
        return {f: sum(getattr(r, f) for r in self.rows) for f in FIELDS}

    def as_dict(self) -> dict[str, Any]:
        return {"days": [r.as_dict() for r in self.rows], "totals": self.totals(), "source": self.source,
                "today": self.today, "notes": list(self.notes)}


def date_of(day: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=day)


def _count(v: Any, name: str) -> int:
    if type(v) is not int or v < 0:
        raise DeviceError(f"the pump's bolus usage reply has a bad {name} count ({v!r})", "BAD_REPLY")
    return v


def rows_from_reply(reply: dict[str, Any]) -> list[UsageRow]:
    """The rows of a `patient_usage` reply ({"days": [{"day", "date", "attempts", ...}]}),
    oldest first; a day of -1 (the clock was not set) becomes day None."""
    days = reply.get("days") if isinstance(reply, dict) else None
    if not isinstance(days, list):
        raise DeviceError("the pump's bolus usage reply has no list of days", "BAD_REPLY")
    rows = []
    for d in days:
        if not isinstance(d, dict) or type(d.get("day")) is not int:
            raise DeviceError(f"the pump's bolus usage reply has a malformed day: {d!r}"[:120], "BAD_REPLY")
        day = d["day"] if d["day"] >= 0 else None
        rows.append(UsageRow(day, date_of(day) if day is not None else None,
                             **{f: _count(d.get(f, 0), f) for f in FIELDS}))
    return sorted(rows, key=lambda r: -1 if r.day is None else r.day)


def record_day(rec: dict[str, Any]) -> Optional[int]:
    """The day of the pump's clock a log record was written on, or None (clock not set). Takes
    the protocol's [day, ms] and also [y, m, d, h, min, s]."""
    w = rec.get("wall")
    if not isinstance(w, (list, tuple)) or not w:
        return None
    try:
        if len(w) >= 3 and 1999 < int(w[0]) < 3000:
            return (dt.date(int(w[0]), int(w[1]), int(w[2])) - _EPOCH).days
        return int(w[0])
    except (TypeError, ValueError):
        return None


def _kind(rec: dict[str, Any]) -> Any:
    return rec.get("type", rec.get("ev"))


def _data(rec: dict[str, Any]) -> dict[str, Any]:
    d = rec.get("data", rec.get("d"))
    return d if isinstance(d, dict) else {}


def rows_from_log(records: Iterable[dict[str, Any]]) -> list[UsageRow]:
    """Count patient bolus requests in log records (of either ring, in any order):
    `patient_bolus` records by outcome; `auth_fail` records of a patient_bolus refused as too
    many requests; `refusals_counted` records' refused_lockout, refused_limit and RATE_LIMITED
    counts (refusals past the flash budget, written as counts)."""
    per: dict[Optional[int], dict[str, int]] = {}

    def add(day: Optional[int], outcome: str, n: int = 1) -> None:
        row = per.setdefault(day, {f: 0 for f in FIELDS})
        row["attempts"] += n
        row[_COLUMN.get(outcome, "other")] += n

    for rec in records:
        if not isinstance(rec, dict):
            continue
        kind, data, day = _kind(rec), _data(rec), record_day(rec)
        if kind == "patient_bolus":
            add(day, str(data.get("outcome", "")))
        elif kind == "auth_fail" and data.get("code") == "RATE_LIMITED" and data.get("cmd") == "patient_bolus":
            add(day, "rate_limited")
        elif kind == "refusals_counted" and isinstance(data.get("codes"), dict):
            for code, n in data["codes"].items():
                if code in ("refused_lockout", "refused_limit", "RATE_LIMITED") and type(n) is int and n > 0:
                    add(day, code, n)
    out = [UsageRow(d, date_of(d) if d is not None else None, **c) for d, c in per.items()]
    return sorted(out, key=lambda r: -1 if r.day is None else r.day)


def last_days(rows: Sequence[UsageRow], days: int, today: Optional[int]) -> list[UsageRow]:
    """The `days` days of the pump's clock up to `today`, a row for each (zeros where nothing
    was asked); without `today`, the last `days` rows that have a date."""
    if type(days) is not int or not 1 <= days <= MAX_DAYS:
        raise UsageError(f"--days must be a whole number of days from 1 to {MAX_DAYS}, got {days!r}")
    dated = {r.day: r for r in rows if r.day is not None}
    if today is None:
        return [dated[d] for d in sorted(dated)][-days:]
    return [dated.get(d) or UsageRow(d, date_of(d)) for d in range(today - days + 1, today + 1)]


def _today(pump: Pump, reply: Optional[dict[str, Any]]) -> Optional[int]:
    if reply and type(reply.get("today")) is int:
        return int(reply["today"])
    wall = pump.status().get("wall")
    return int(wall[0]) if wall else None


def has_refusals_ring(pump: Pump) -> bool:
    """Whether the pump keeps patient refusals in a ring of their own (issue 16); an older
    pump answers a log request for it with its event log, or refuses it."""
    try:
        return pump.log_page(0, 1, "refusals").get("ring") == "refusals"
    except DeviceError:
        return False


def _log_records(pump: Pump) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of the event log and (when the pump has one) of the refusals' ring, with
    a sentence for each run of records the pump no longer holds."""
    notes: list[str] = []
    recs: list[dict[str, Any]] = []
    for ring in ["events"] + (["refusals"] if has_refusals_ring(pump) else []):
        got = logs.fetch(pump, since=0, ring=ring, progress=False)
        recs.extend(got["records"])
        if got["lost_total"]:
            notes.append(f"{got['lost_total']} records of the {ring} log are no longer on the pump: "
                         "requests they held are not counted.")
    return recs, notes


def fetch(pump: Pump, days: Optional[int] = None) -> Usage:
    """The usage report: the pump's own counts, or counted from its logs when its firmware
    does not know `patient_usage`; with `days`, the last `days` days of the pump's clock."""
    if days is not None:
        last_days([], days, None)  # the same refusal before anything is asked of the pump
    try:
        reply: Optional[dict[str, Any]] = pump.patient_usage()
    except DeviceError as e:
        if e.code not in UNKNOWN:
            raise
        reply = None
    if reply is not None:
        rows, source = rows_from_reply(reply), "pump"
        notes: list[str] = []
    else:
        recs, notes = _log_records(pump)
        rows, source = rows_from_log(recs), "log"
        notes.insert(0, "This pump's firmware does not count patient requests itself: they were counted "
                        "from the records its logs still hold.")
    today = _today(pump, reply)
    if days is not None:
        rows = last_days(rows, days, today)
    return Usage(rows, source, today, notes)
