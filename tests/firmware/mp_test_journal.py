# The step journal's record on the real interpreter: the on-store format is fixed (a journal
# written by earlier firmware must still load), so the record is built here field by field,
# independently of services/journal.py.
import struct
from binascii import crc32
from mptest import eq
from pumpsim import make
from services.journal import Journal

PROG = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500}


class _Nvram:
    min_interval_ms = 0
    max_steps = 0

    def __init__(self, data=None):
        self.data = data

    def read(self, n):
        return None if self.data is None else bytes(self.data[:n])

    def write(self, buf):
        self.data = bytes(buf)


def _record(fields):
    body = struct.pack("<18i", *fields)
    return body + struct.pack("<I", crc32(body) & 0xFFFFFFFF)


# magic "JRN1", gen, steps k/u, nL k/u, quanta k/u, pL, reservoir nL/pL, converter partial
# step, basal remainder, bolus quanta left, wall day/ms, concentration, pL per step.
OLD = [0x4A524E31, 7, 12, 345, 600, 17, 9, 999, 250, 19_000_000, 40, 3, 11, 0, 9000, 3_600_000, 2000, 50_000]


def test_a_journal_record_of_the_fixed_format_loads():
    pump, _ = make(PROG)
    j = Journal(_Nvram(_record(OLD)))
    rec = j.read()
    eq(list(rec), OLD)
    eq(j.apply(pump, rec), (9000, 3_600_000))
    eq(j.gen, 7)
    eq(pump.steps_total.value(), 12_345)
    eq(pump.nl_total.value(), 600_017)
    eq(pump.q_total.value(), 9_999)
    eq(pump.pl_below_nl, 250)
    eq((pump.reservoir.volume_nl, pump.reservoir.pl), (19_000_000, 40))
    eq(pump.conv.partial_step_units, 3)
    eq(pump.basal.remainder_units, 11)


def test_a_written_record_is_the_fixed_format_byte_for_byte():
    pump, _ = make(PROG)
    j = Journal(_Nvram(_record(OLD)))
    j.apply(pump, j.read())
    nv = _Nvram()
    j.nv = nv
    j.write(pump, (9000, 3_600_000))
    want = list(OLD)
    want[1] = 8  # the next generation
    eq(nv.data, _record(want))


def test_a_damaged_or_foreign_record_is_ignored():
    bad = bytearray(_record(OLD))
    bad[9] ^= 1
    eq(Journal(_Nvram(bytes(bad))).read(), None)
    other = list(OLD)
    other[0] = 0x4A524E32
    eq(Journal(_Nvram(_record(other))).read(), None)
    pump, _ = make(PROG)
    older = list(OLD)
    older[2], older[3] = 0, 0
    pump.steps_total.restore([0, 1])
    eq(Journal(_Nvram(_record(older))).apply(pump, tuple(older)), None)  # older than the state
