# The step journal: the delivery counters written to a small non-volatile store after motor moves
# and once a minute. On a store that takes millions of writes (FRAM, the bench's file) that is
# after every move; on a stock Pico's flash at most once a minute or every ~10 uL (the store's
# policy, boards/pico/nvram.py). The state file is saved every 15 minutes; after a power cut the
# journal says what was commanded since, so the pump forgets at most what moved after the last
# record, and the outage is measured from it.
import struct
from binascii import crc32

_FMT = "<18i"
_N = 18
_SIZE = 4 * _N + 4
_MAGIC = 0x4A524E31  # "JRN1"


class Journal:
    """The store's write policy comes with it: nvram.min_interval_ms 0 (FRAM, the bench's file)
    takes a record after every move; flash (a stock Pico) one at most every min_interval_ms,
    or once max_steps have moved since the last record."""

    def __init__(self, nvram):
        self.nv = nvram
        self.buf = bytearray(_SIZE)
        self.gen = 0
        self.pending = 0  # steps moved since the last record (small: reset at each write)
        self._at = None   # board ticks of the last record

    def due(self, moved, clock):
        """After a move of `moved` steps: is a record due under the store's policy?"""
        nv = self.nv
        if nv.min_interval_ms == 0:
            return True
        self.pending += moved
        if self.pending >= nv.max_steps or self._at is None:
            return True
        return clock.diff(clock.ticks(), self._at) >= nv.min_interval_ms

    def write(self, pump, wall, clock=None):
        p = pump
        self.pending = 0
        if clock is not None:
            self._at = clock.ticks()
        self.gen += 1
        day, ms = wall if wall else (-1, -1)
        struct.pack_into(_FMT, self.buf, 0, _MAGIC, self.gen, p.steps_total.k, p.steps_total.u,
                         p.nl_total.k, p.nl_total.u, p.q_total.k, p.q_total.u, p._pl,
                         p.reservoir.volume_nl, p.reservoir.pl, p.conv.vb if p.conv else 0,
                         p.basal.da, p.bolus_left_q, day, ms, p.conv.conc if p.conv else 0, p.pl_per_step)
        struct.pack_into("<I", self.buf, _SIZE - 4, crc32(memoryview(self.buf)[:_SIZE - 4]) & 0xFFFFFFFF)
        self.nv.write(self.buf)

    def read(self):
        """The last record as a tuple, or None if there is none or it is damaged."""
        data = self.nv.read(_SIZE)
        if data is None or len(data) != _SIZE:
            return None
        v = struct.unpack_from(_FMT, data, 0)
        if v[0] != _MAGIC or struct.unpack_from("<I", data, _SIZE - 4)[0] != crc32(memoryview(data)[:_SIZE - 4]) & 0xFFFFFFFF:
            return None
        return v

    def apply(self, pump, rec):
        """Bring restored counters forward to the journal's (same concentration and calibration
        only). Returns the journal's wall time (day, ms) or None."""
        p = pump
        if rec[16] != (p.conv.conc if p.conv else 0) or rec[17] != p.pl_per_step:
            return None
        if rec[2] * 1000 + rec[3] < p.steps_total.value():
            return None  # older than the saved state: nothing to add
        self.gen = rec[1]
        p.steps_total.restore([rec[2], rec[3]])
        p.nl_total.restore([rec[4], rec[5]])
        p.q_total.restore([rec[6], rec[7]])
        p._pl = rec[8]
        p.reservoir.volume_nl, p.reservoir.pl = rec[9], rec[10]
        if p.conv is not None and 0 <= rec[11] < p.conv.q:
            p.conv.vb = rec[11]
        p.basal.da = rec[12]
        return (rec[14], rec[15]) if rec[14] >= 0 else None
