# Patient bolus usage per day of the pump's clock (pure core): what the patient asked for and
# what came of it, kept for the clinician's bolus usage report (`patient_usage`, issue 16).
#
# Counted here rather than only in the log because patient traffic is budgeted on flash: past
# the refusals' budget a refused attempt has no record of its own, but it is still counted,
# and the counts are part of the saved state (services/persist.py), so they survive a power cut.
# A row is [day, attempts, delivered, lockout, limit, rate_limited, other]; day is days since
# 2000-01-01 of the pump's wall clock, -1 while the clock is not set. DAYS rows are kept.
from core.base import const
from core.alarms import civil  # the one days-to-date conversion

DAYS = const(31)
_FIELDS = ("attempts", "delivered", "lockout", "limit", "rate_limited", "other")
_COLUMN = {"delivered": 2, "refused_lockout": 3, "refused_limit": 4, "rate_limited": 5}


class BolusUsage:
    def __init__(self):
        self.rows = []  # oldest first

    def note(self, day, outcome):
        """One patient request on `day` (None: clock not set) and its outcome: "delivered",
        "refused_lockout", "refused_limit", "rate_limited" or anything else (counted as other)."""
        if day is None:
            day = -1
        rows = self.rows
        row = rows[-1] if rows and rows[-1][0] == day else None
        if row is None:
            for r in rows:
                if r[0] == day:
                    row = r
                    break
        if row is None:
            row = [day, 0, 0, 0, 0, 0, 0]
            rows.append(row)
            rows.sort(key=lambda r: r[0])
            while len(rows) > DAYS:
                rows.pop(0)
        row[1] += 1
        row[_COLUMN.get(outcome, 6)] += 1

    def report(self):
        out = []
        for r in self.rows:
            d = {"day": r[0], "date": list(civil(r[0])) if r[0] >= 0 else None}
            for i, name in enumerate(_FIELDS):
                d[name] = r[i + 1]
            out.append(d)
        return out

    def to_state(self):
        return [list(r) for r in self.rows]

    def from_state(self, rows):
        """Rows as saved; anything malformed is dropped (the counts are a report, not therapy)."""
        kept = []
        if isinstance(rows, list):
            for r in rows:
                if (isinstance(r, list) and len(r) == 7 and all(type(v) is int and v >= -1 for v in r)):
                    kept.append(list(r))
        kept.sort(key=lambda r: r[0])
        self.rows = kept[-DAYS:]
