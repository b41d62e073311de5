# Therapy history: hourly figures in a ring of day files.
import gc
import os
import vfs
from mptest import eq, raises, req
from sim.blockdev import BlockDev, mount_lfs
from services.history import History, DAYS

MP = "/shi"
H = MP + "/hist"
H0 = 9131 * 24  # an hour index in 2025


def _fresh(blocks=64):
    # Let the last test's device go first: these tests share one 1 MB heap, in name order.
    try:
        vfs.umount(MP)
    except OSError:
        pass
    gc.collect()
    d = BlockDev(block_count=blocks)
    mount_lfs(d, MP)
    return d


def test_add_and_read_back():
    _fresh()
    h = History(H)
    h.add(H0 + 3, 20833, 10, 20833)
    h.add(H0 + 5, 0, 0, 20833)  # an hour with no delivery is still a record
    eq(h.read(H0, H0 + 24), [(H0 + 3, 20833, 10, 20833), (H0 + 5, 0, 0, 20833)])
    eq(h.read(H0 + 4, H0 + 5), [])
    eq(h.read(H0 + 5, H0 + 6), [(H0 + 5, 0, 0, 20833)])
    eq(h.read(H0, H0), [])


def test_add_sums_onto_the_same_hour():
    _fresh()
    h = History(H)
    h.add(H0, 1000, 1, 2000)  # flushed before a reset
    h.add(H0, 500, 2, 0)      # rest of the hour after the reset
    eq(h.read(H0, H0 + 1), [(H0, 1500, 3, 2000)])


def test_persists_across_reopen():
    _fresh()
    h = History(H)
    for i in range(30):
        h.add(H0 + i, i * 100, i, 2400)
    h2 = History(H)
    r = h2.read(H0, H0 + 30)
    eq(len(r), 30)
    eq(r[29], (H0 + 29, 2900, 29, 2400))


@req("SR-025")
def test_keeps_90_days_and_ring_replaces_oldest():
    _fresh(blocks=96)
    h = History(H)
    eq(DAYS >= 91, True)
    start = H0
    for d in range(DAYS + 10):
        h.add(start + d * 24 + 12, d + 1, d + 2, d + 3)  # one hour per day keeps it quick
    last = start + (DAYS + 9) * 24 + 12
    r = h.read(start, last + 1)
    eq(len(r), DAYS)  # the oldest 10 days were replaced
    eq(r[0][0], start + 10 * 24 + 12)
    eq(r[-1], (last, DAYS + 10, DAYS + 11, DAYS + 12))
    eq(len(h.read(last - 90 * 24, last + 1)), 91)
    eq(len(os.listdir(H)), (DAYS + 12) // 13)  # 13 days to a one-block file
    for name in os.listdir(H):
        eq(os.stat(H + "/" + name)[6] <= 4096, True)
    # an hour from a day that the ring has already reused is refused
    raises(ValueError, h.add, start + 12, 1, 1, 1)


def test_damaged_day_file_reads_as_empty_and_is_counted():
    _fresh()
    h = History(H)
    h.add(H0 + 1, 5, 5, 5)
    h.add(H0 + 25, 7, 7, 7)
    i = 9131 % DAYS
    p = H + "/h%02d" % (i // 13)
    data = bytearray(open(p, "rb").read())
    data[(i % 13) * 300 + 20] ^= 0x10
    with open(p, "wb") as f:
        f.write(data)
    h2 = History(H)
    eq(h2.read(H0, H0 + 48), [(H0 + 25, 7, 7, 7)])
    eq(h2.damaged, 1)
    h2.add(H0 + 2, 1, 1, 1)  # the day starts again from the damaged slot
    eq(h2.read(H0, H0 + 24), [(H0 + 2, 1, 1, 1)])


def test_bad_input_refused_and_nothing_written():
    d = _fresh()
    h = History(H)
    h.add(H0, 1, 1, 1)
    ops = d.stats.ops
    for args in ((-1, 0, 0, 0), (2 ** 30, 0, 0, 0), (H0, -1, 0, 0), (H0, 0, 2 ** 30, 0),
                 (H0, 0, 0, "5"), (H0, 1.0, 0, 0), (True, 0, 0, 0), (None, 0, 0, 0)):
        raises(ValueError, h.add, *args)
    h.add(H0 + 1, 2 ** 30 - 1, 0, 0)
    ops = d.stats.ops
    raises(ValueError, h.add, H0 + 1, 1, 0, 0)  # sum would pass 2**30
    eq(d.stats.ops, ops)
    eq(h.read(H0, H0 + 2), [(H0, 1, 1, 1), (H0 + 1, 2 ** 30 - 1, 0, 0)])
    raises(ValueError, h.read, H0 + 2, H0)
    raises(ValueError, h.read, -1, H0)
    raises(ValueError, History, "", 92)
    raises(ValueError, History, H, 1)


def test_long_read_is_clamped_to_the_ring():
    _fresh()
    h = History(H)
    h.add(H0 + 7, 1, 2, 3)
    eq(h.read(0, H0 + 100), [(H0 + 7, 1, 2, 3)])


def test_hourly_flush_costs_about_one_block_copy():
    d = _fresh()
    h = History(H)
    h.add(H0, 1, 1, 1)
    b0, e0 = d.stats.bytes_written, d.stats.blocks_erased
    for i in range(1, 49):
        h.add(H0 + i, 20833, 10, 20833)
    per = (d.stats.bytes_written - b0) // 48
    er = d.stats.blocks_erased - e0
    if per > 6000:
        raise AssertionError("%d bytes per hourly flush" % per)
    if er > 48 * 2:
        raise AssertionError("%d erases for 48 hourly flushes" % er)
    eq(h.writes, 49)


def test_whole_history_fits_in_a_few_blocks():
    d = _fresh(blocks=64)
    free0 = os.statvfs(MP)[3]
    h = History(H)
    for day in range(DAYS):
        h.add(H0 + day * 24, 1, 1, 1)
    used = free0 - os.statvfs(MP)[3]
    if used > (DAYS + 12) // 13 + 4:
        raise AssertionError("history uses %d blocks" % used)
    eq(len(h.read(H0, H0 + DAYS * 24)), DAYS)


def test_put_replaces_and_is_idempotent():
    d = _fresh()
    h = History(H)
    h.add(H0 + 4, 100, 10, 100)
    h.put(H0 + 4, 300, 30, 250)
    h.put(H0 + 4, 300, 30, 250)
    eq(h.read(H0, H0 + 24), [(H0 + 4, 300, 30, 250)])
    ops = d.stats.ops
    raises(ValueError, h.put, H0 + 4, -1, 0, 0)
    eq(d.stats.ops, ops)


def test_the_hour_accumulator_closes_an_hour_into_the_history():
    from services.history import HourAccumulator, programmed_ng_for_hour
    from core.engine import Counter

    class P:  # the pump's two running totals HourAccumulator reads
        def __init__(self):
            self.q_total = Counter()
            self.nl_total = Counter()
    _fresh()
    h = History(H)
    p = P()
    acc = HourAccumulator(h)
    eq(acc.flush(H0, p, 0), False)  # the first call only starts the hour
    p.q_total.add(1600 * 20833)
    p.nl_total.add(10)
    eq(acc.flush(H0, p, 0), False)  # the same hour: nothing to close
    eq(acc.flush(H0 + 1, p, 20833), True)
    eq(h.read(H0, H0 + 2), [(H0, 20833, 10, 20833)])
    eq(programmed_ng_for_hour(None, 3), 0)


# ---- PendingHours: closed hours held in a small file, into the day files six at a time ----
from services.history import PendingHours, PENDING

PEND = H + "/pend"


def _pending():
    h = History(H)
    return h, PendingHours(h, PEND)


def test_closed_hours_wait_in_the_pend_file_and_read_back_merged():
    _fresh()
    h, p = _pending()
    h.add(H0 + 1, 100, 1, 100)  # an hour already in the day file
    w = h.writes
    for i in range(PENDING - 1):
        p.close(H0 + 2 + i, 10 * i, i, 5)
    eq(h.writes, w, "no day file written before %d hours wait" % PENDING)
    eq(p.n, PENDING - 1)
    want = [(H0 + 1, 100, 1, 100)] + [(H0 + 2 + i, 10 * i, i, 5) for i in range(PENDING - 1)]
    eq(p.read(H0, H0 + 24), want)
    eq(p.read(H0 + 3, H0 + 4), [(H0 + 3, 10, 1, 5)])
    h2, p2 = _pending()  # a reboot: the waiting hours are still there
    eq(p2.n, PENDING - 1)
    eq(p2.read(H0, H0 + 24), want)


def test_the_sixth_hour_writes_them_all_in_one_commit_per_day():
    _fresh()
    h, p = _pending()
    for i in range(PENDING):
        p.close(H0 + 20 + i, i + 1, i + 1, i + 1)  # hours 20..25: two days
    eq((p.n, p.flushes, h.writes), (0, 1, 2))
    eq(h.read(H0, H0 + 48), [(H0 + 20 + i, i + 1, i + 1, i + 1) for i in range(PENDING)])
    eq(PendingHours(History(H), PEND).n, 0, "the pend file is empty after the flush")


def test_closing_an_hour_again_sums_onto_it_here_or_in_the_day_file():
    _fresh()
    h, p = _pending()
    h.add(H0, 1000, 1, 2000)  # flushed before a clock change
    p.close(H0, 500, 2, 0)
    p.close(H0 + 1, 7, 7, 7)
    p.close(H0 + 1, 3, 3, 3)
    eq(p.read(H0, H0 + 2), [(H0, 1500, 3, 2000), (H0 + 1, 10, 10, 10)])
    p.flush()
    eq(h.read(H0, H0 + 2), [(H0, 1500, 3, 2000), (H0 + 1, 10, 10, 10)])


def test_a_flush_repeated_after_a_cut_never_doubles_an_hour():
    _fresh()
    h, p = _pending()
    for i in range(3):
        p.close(H0 + i, 100, 10, 100)
    # The cut came after the day file's commit and before the pend file was emptied:
    h.put_hours(sorted(p._row(i) for i in range(p.n)))
    h2, p2 = _pending()
    eq(p2.n, 3)
    p2.flush()
    eq(h2.read(H0, H0 + 3), [(H0 + i, 100, 10, 100) for i in range(3)])


def test_bad_figures_and_a_damaged_pend_file_change_nothing():
    _fresh()
    h, p = _pending()
    p.close(H0, 5, 5, 5)
    raises(ValueError, p.close, H0, -1, 0, 0)
    raises(ValueError, p.close, H0, 2 ** 30 - 1, 0, 0)  # the sum would pass 2**30
    eq(p.read(H0, H0 + 1), [(H0, 5, 5, 5)])
    with open(PEND, "r+b") as f:
        f.seek(10)
        f.write(b"\x00\x01")
    h2, p2 = _pending()
    eq((p2.n, p2.damaged), (0, 1))
    p2.close(H0 + 1, 1, 1, 1)  # and it works again
    eq(p2.read(H0, H0 + 2), [(H0 + 1, 1, 1, 1)])


# ---- the hour in progress at a power cut (HourAccumulator.resume) ----
from services.history import HourAccumulator
from core.engine import Counter


class _Pump:  # the pump's two running totals HourAccumulator reads
    def __init__(self, q, nl):
        self.q_total = Counter()
        self.nl_total = Counter()
        self.add(q, nl)

    def add(self, q, nl):
        self.q_total.add(q)
        self.nl_total.add(nl)


def _boot(pump, hour_now):
    h = History(H)
    p = PendingHours(h, PEND)
    acc = HourAccumulator(p)
    acc.resume(hour_now, pump, lambda hod: 777)
    return h, p, acc


@req("SR-025")
def test_the_hour_in_progress_at_a_power_cut_keeps_what_it_delivered_before():
    _fresh()
    pump = _Pump(10 * 1600, 10)
    h, p, acc = _boot(pump, H0)  # first boot: the hour starts at these counters
    pump.add(30 * 1600, 3)  # 30 ng, 3 nL before the cut
    # Power cut; the counters come back from the journal; the same hour goes on.
    h, p, acc = _boot(pump, H0)
    pump.add(5 * 1600, 1)
    eq(acc.flush(H0 + 1, pump, 500), True)
    eq(p.read(H0, H0 + 2), [(H0, 35, 4, 500)])
    # A cut during hour H0+1 after 2 ng; the pump is off until H0+4.
    pump.add(2 * 1600, 0)
    h, p, acc = _boot(pump, H0 + 4)
    eq(p.read(H0, H0 + 5), [(H0, 35, 4, 500), (H0 + 1, 2, 0, 777)])
    eq(acc.hour, H0 + 4)
    # And that close is not made twice by another boot in the same hour.
    h, p, acc = _boot(pump, H0 + 4)
    eq(p.read(H0, H0 + 5), [(H0, 35, 4, 500), (H0 + 1, 2, 0, 777)])


def test_counters_behind_the_recorded_start_start_the_hour_afresh():
    _fresh()
    pump = _Pump(100 * 1600, 100)
    _boot(pump, H0)
    _, p, acc = _boot(_Pump(50 * 1600, 50), H0 + 1)  # a journal older than the hour's start
    eq(p.read(H0, H0 + 2), [])
    eq((acc.hour, acc.q0), (H0 + 1, 50 * 1600))
