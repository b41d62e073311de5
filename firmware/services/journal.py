# The step journal: the delivery counters written after every motor move (and once a minute) to a
# small non-volatile memory that takes millions of writes (FRAM on a board; a file on the bench).
# The state file is saved every 15 minutes; after a power cut the journal says what was really
# commanded since, so nothing delivered is forgotten and the outage is measured from the cut.
import struct
from binascii import crc32

_FMT = "<18i"
_N = 18
_SIZE = 4 * _N + 4
_MAGIC = 0x4A524E31  # "JRN1"


class Journal:
    def __init__(self, nvram):
        self.nv = nvram
        self.buf = bytearray(_SIZE)
        self.gen = 0

    def write(self, pump, wall):
        p = pump
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
