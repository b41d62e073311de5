# What the pump refused from anyone without the clinician's key, kept where it cannot push out
# a therapy record (issue 16, docs/security.md "The logs").
#
# The refusals go to their own ring (<root>/refusals, services/eventlog.py with few segments):
# frames that are not well formed, authentication failures, patient requests the gate or the
# budget refused, and repeats answered from the retry cache. A flood fills only this ring;
# therapy, alarm and programming records live in the event log, which only the pump's own
# events and the clinician's requests write.
#
# Flash is bounded too: at most BUDGET records a minute are written one by one; past that the
# refusals are counted and the counts written as one `refusals_counted` record at most FLUSH_MS
# after the first of them (the control loop wakes for it). A power cut can lose the counts of
# at most the last FLUSH_MS; every refusal written one by one is on flash before its reply.
# Runs in the link and control loops, never in the tick; the dict of counts is small.
from core.base import const

BUDGET = const(10)          # refusal records written one by one per window
WINDOW_MS = const(60000)
FLUSH_MS = const(10000)     # counts beyond the budget are on flash within this
_MAX_CODES = const(6)       # distinct codes kept in one counted record; the rest as "other"


class RefusalLog:
    """clock: the board's clock (ticks, diff); write(kind, data): appends one record to the
    refusals ring (the App's, which stamps wall time and uptime)."""

    def __init__(self, clock, write):
        self.clock = clock
        self.write = write
        self._win = None  # ticks the budget's window started
        self._n = 0  # records written in the window
        self._counts = {}  # code -> refusals counted, not yet written
        self._pending = 0
        self._first = 0  # ticks of the first counted refusal not yet written
        self.since_boot = 0
        self.counted = 0  # refusals written as counts since boot

    def note(self, kind, data, code):
        """One refusal: a record of `kind` with `data` while the window's budget lasts, else
        counted under `code`."""
        c = self.clock
        now = c.ticks()
        self.since_boot += 1
        if self._win is None or not 0 <= c.diff(now, self._win) < WINDOW_MS:
            self._win = now
            self._n = 0
        if self._n < BUDGET:
            self._n += 1
            self.write(kind, data)
            return
        if not self._pending:
            self._first = now
        self._pending += 1
        self.counted += 1
        counts = self._counts
        if code not in counts and len(counts) >= _MAX_CODES - 1:
            code = "other"
        counts[code] = counts.get(code, 0) + 1
        if c.diff(now, self._first) >= FLUSH_MS:
            self.flush()

    def ms_to_flush(self):
        """ms until counted refusals must be written (0: now), or -1 when none wait."""
        if not self._pending:
            return -1
        left = FLUSH_MS - self.clock.diff(self.clock.ticks(), self._first)
        return left if left > 0 else 0

    def poll(self):
        """Write the counts if they are due (the control loop calls it at each wake)."""
        if self._pending and self.ms_to_flush() == 0:
            self.flush()

    def flush(self):
        """Write what is counted as one record, now (also before a planned shutdown)."""
        if not self._pending:
            return
        data = {"n": self._pending, "codes": self._counts}
        self._pending = 0
        self._counts = {}
        self.write("refusals_counted", data)

    def info(self):
        return {"since_boot": self.since_boot, "counted": self.counted, "waiting": self._pending}
