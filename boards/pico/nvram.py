# The step journal's store on a stock Pico, which has no FRAM: one small file on the Pico's own
# littlefs, overwritten in place and synced. littlefs keeps a file this small inline in its
# directory's metadata log, so a write appends one commit to a 4 KB metadata block and a block
# is erased only when that log is compacted (measured on the emulated Pico: docs/persistence.md).
# Flash still wears, so the journal is written at most every min_interval_ms, or sooner once
# max_steps un-journaled steps have moved; a power cut can lose at most that much delivery
# from the pump's counters (it is then logged as missing, never given twice).
from micropython import const

JOURNAL_MS = const(60000)     # the minute heartbeat: an outage is measured to within a minute
JOURNAL_STEPS = const(320)    # ~10 uL at the nominal 31.25 nL/step: a bolus is journaled often


class FlashNvram:
    kind = "flash"

    def __init__(self, path, min_interval_ms=JOURNAL_MS, max_steps=JOURNAL_STEPS):
        if not isinstance(min_interval_ms, int) or not 1000 <= min_interval_ms <= 3600000:
            raise ValueError("journal interval must be an int of 1000..3600000 ms, got %r" % (min_interval_ms,))
        if not isinstance(max_steps, int) or not 1 <= max_steps <= 1000000:
            raise ValueError("journal step bound must be an int of 1..1000000, got %r" % (max_steps,))
        self.path = path
        self.min_interval_ms = min_interval_ms
        self.max_steps = max_steps
        self.writes = 0  # records written since boot, wraps below 2**30
        try:
            self._f = open(path, "r+b")
        except OSError:
            self._f = open(path, "w+b")

    def write(self, buf):
        f = self._f
        f.seek(0)
        f.write(buf)
        f.flush()  # littlefs commits the record here: a power cut keeps the old or the new one
        self.writes = (self.writes + 1) & 0x3FFFFFFF

    def read(self, n):
        self._f.seek(0)
        d = self._f.read(n)
        return d if d else None
