# The step journal: the delivery counters written to a small non-volatile store whenever the tick
# counts steps (a control-loop wake, a request) and at every quarter-hour check. On a store that
# takes millions of writes (FRAM, the bench's file) that is every time; on a stock Pico's flash
# at most once a minute or every ~10 uL (the store's policy, boards/pico/nvram.py). The state
# file is saved every 6 hours and on every change; after a power cut the journal says what was
# counted since, so the pump forgets at most what the head pulsed after the last record (the
# rest of one motor batch: docs/persistence.md), and the outage is measured from it.
import struct
from binascii import crc32
from core.base import const
from core.engine import Q_PER_NG

# The record on the store: 18 little-endian int32 then a CRC-32 of them. The field order is the
# on-store format (a journal written by earlier firmware must still load): new fields go at the
# end, with a new magic. read() returns the fields as a tuple indexed by these names.
_FMT = "<18i"
_N = const(18)
_SIZE = const(4 * _N + 4)
_MAGIC = const(0x4A524E31)  # "JRN1"
_MAGIC_AT = const(0)
_GEN = const(1)  # write count: a later record has a higher one
_STEPS_K = const(2)  # delivered steps as k * 1000 + u (core.engine.Counter)
_STEPS_U = const(3)
_NL_K = const(4)  # delivered nL, the same split
_NL_U = const(5)
_Q_K = const(6)  # delivered dose quanta, the same split
_Q_U = const(7)
_PL = const(8)  # delivered pL below one nL
_RES_NL = const(9)  # reservoir volume, nL and pL below one nL
_RES_PL = const(10)
_CONV_PARTIAL_STEP = const(11)  # the step converter's partial step
_BASAL_REMAINDER = const(12)  # the basal integrator's remainder
_BOLUS_LEFT_Q = const(13)  # written for the record's reader; not restored (a bolus never resumes)
_WALL_DAY = const(14)  # wall clock at the write, -1 -1 if unknown
_WALL_MS = const(15)
_CONC = const(16)  # the concentration and calibration the counters were kept under
_PL_PER_STEP = const(17)


class Journal:
    """The store's write policy comes with it: nvram.min_interval_ms 0 (FRAM, the bench's file)
    takes a record after every move; flash (a stock Pico) one at most every min_interval_ms,
    or once max_steps have moved since the last record."""

    def __init__(self, nvram):
        self.nv = nvram
        self.buf = bytearray(_SIZE)
        self.gen = 0
        self.pending = 0  # steps moved since the last record (small: reset at each write)
        self.at = None   # board ticks of the last record

    def due(self, moved, clock):
        """After a move of `moved` steps: is a record due under the store's policy?"""
        nv = self.nv
        if nv.min_interval_ms == 0:
            return True
        self.pending += moved
        if self.pending >= nv.max_steps or self.at is None:
            return True
        return clock.diff(clock.ticks(), self.at) >= nv.min_interval_ms

    def write(self, pump, wall, clock=None):
        p = pump
        self.pending = 0
        if clock is not None:
            self.at = clock.ticks()
        self.gen += 1
        day, ms = wall if wall else (-1, -1)
        # In the order of the indices above (_MAGIC_AT .. _PL_PER_STEP).
        struct.pack_into(_FMT, self.buf, 0, _MAGIC, self.gen, p.steps_total.k, p.steps_total.u,
                         p.nl_total.k, p.nl_total.u, p.q_total.k, p.q_total.u, p.pl_below_nl,
                         p.reservoir.volume_nl, p.reservoir.pl, p.conv.partial_step_units if p.conv else 0,
                         p.basal.remainder_units, p.bolus_left_q, day, ms, p.conv.conc if p.conv else 0, p.pl_per_step)
        struct.pack_into("<I", self.buf, _SIZE - 4, crc32(memoryview(self.buf)[:_SIZE - 4]) & 0xFFFFFFFF)
        self.nv.write(self.buf)

    def read(self):
        """The last record as a tuple, or None if there is none or it is damaged."""
        data = self.nv.read(_SIZE)
        if data is None or len(data) != _SIZE:
            return None
        v = struct.unpack_from(_FMT, data, 0)
        if v[_MAGIC_AT] != _MAGIC or struct.unpack_from("<I", data, _SIZE - 4)[0] != crc32(memoryview(data)[:_SIZE - 4]) & 0xFFFFFFFF:
            return None
        return v

    def apply(self, pump, rec):
        """Bring restored counters forward to the journal's (same concentration and calibration
        only). Returns the journal's wall time (day, ms) or None."""
        p = pump
        if rec[_CONC] != (p.conv.conc if p.conv else 0) or rec[_PL_PER_STEP] != p.pl_per_step:
            return None
        if rec[_STEPS_K] * 1000 + rec[_STEPS_U] < p.steps_total.value():
            return None  # older than the saved state: nothing to add
        self.gen = rec[_GEN]
        # The dose since the last save goes into the 24 h window at the last moment the saved
        # state knew of: later than it was given, so the window over-counts, never under-counts
        # (the state is saved only every 6 hours; a bolus's limit check must still see it).
        q_new = rec[_Q_K] * 1000 + rec[_Q_U]
        ng = (q_new - p.q_total.value()) // Q_PER_NG
        if ng > 0:
            p.rolling.add(p.up_s, ng)
        p.steps_total.restore([rec[_STEPS_K], rec[_STEPS_U]])
        p.nl_total.restore([rec[_NL_K], rec[_NL_U]])
        p.q_total.restore([rec[_Q_K], rec[_Q_U]])
        p.pl_below_nl = rec[_PL]
        p.reservoir.volume_nl, p.reservoir.pl = rec[_RES_NL], rec[_RES_PL]
        if p.conv is not None and 0 <= rec[_CONV_PARTIAL_STEP] < p.conv.units_per_step:
            p.conv.partial_step_units = rec[_CONV_PARTIAL_STEP]
        p.basal.remainder_units = rec[_BASAL_REMAINDER]
        return (rec[_WALL_DAY], rec[_WALL_MS]) if rec[_WALL_DAY] >= 0 else None
