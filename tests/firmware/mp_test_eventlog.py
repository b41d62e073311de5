# EventLog: records, ring rotation, recovery after damage, refusal of bad input, capacity.
import os
from mptest import eq, raises, req
from sim.blockdev import BlockDev, mount_lfs
from services.eventlog import EventLog, SEGMENT_BYTES, SEGMENTS, MAX_PAYLOAD

MP = "/sev"
LOG = MP + "/log"


def _fresh(blocks=48):
    d = BlockDev(block_count=blocks)
    mount_lfs(d, MP)
    return d


def _fill(log, n, start=0):
    seqs = []
    for i in range(start, start + n):
        seqs.append(log.append("bolus", {"ug": 50, "i": i}, (9000 + i // 100, (i % 100) * 1000), i))
    return seqs


def test_empty_log():
    _fresh()
    log = EventLog(LOG)
    eq((log.first_seq(), log.last_seq()), (0, 0))
    eq(log.read(0, 10), [])


@req("SR-034", "SR-035")
def test_append_returns_increasing_seq_and_reads_back_exactly():
    _fresh()
    log = EventLog(LOG)
    eq(log.append("power_on", {"cause": "watchdog"}, (9131, 3600000), 0), 1)
    eq(log.append("clock_set", [9131, 0], None, 7), 2)
    eq(log.append("alarm", None, (0, 0), 1073741823), 3)
    r = log.read(0, 10)
    eq(r[0], {"seq": 1, "wall": [9131, 3600000], "uptime": 0, "type": "power_on",
              "data": {"cause": "watchdog"}})
    eq(r[1], {"seq": 2, "wall": None, "uptime": 7, "type": "clock_set", "data": [9131, 0]})
    eq(r[2]["data"], None)
    eq(r[2]["uptime"], 1073741823)
    eq((log.first_seq(), log.last_seq()), (1, 3))


def test_read_since_and_max_n():
    _fresh()
    log = EventLog(LOG, segment_bytes=1024, segments=8)
    _fill(log, 100)
    eq([r["seq"] for r in log.read(0, 5)], [1, 2, 3, 4, 5])
    eq([r["seq"] for r in log.read(41, 3)], [42, 43, 44])
    eq([r["seq"] for r in log.read(98, 10)], [99, 100])
    eq(log.read(100, 10), [])
    eq(log.read(5000, 10), [])
    # paging through everything gives every seq once, in order
    got, since = [], 0
    while True:
        page = log.read(since, 7)
        if not page:
            break
        got.extend(r["seq"] for r in page)
        since = page[-1]["seq"]
    eq(got, list(range(1, 101)))


def test_read_stops_at_max_bytes_and_pages_cover_everything():
    _fresh()
    log = EventLog(LOG, segment_bytes=1024, segments=8)
    _fill(log, 60)
    big = "x" * 150
    for i in range(10):
        log.append("note", {"t": big, "i": i}, None, 0)
    # Small records: a 200-byte budget holds a few of them, never all 40 asked for.
    page = log.read(0, 40, 200)
    req_n = len(page)
    if not 2 <= req_n < 40:
        raise AssertionError("a 200-byte page returned %d records" % req_n)
    # A record bigger than the budget still comes back alone: paging always moves on.
    eq(len(log.read(60, 40, 50)), 1)
    got, since = [], 0
    while True:
        page = log.read(since, 40, 300)
        if not page:
            break
        got.extend(r["seq"] for r in page)
        since = page[-1]["seq"]
    eq(got, list(range(1, 71)))
    eq(len(log.read(0, 40)), 40)  # no budget: max_n alone


def test_ring_drops_oldest_segment_and_keeps_capacity():
    _fresh()
    log = EventLog(LOG, segment_bytes=1024, segments=4)
    _fill(log, 200)
    eq(log.last_seq(), 200)
    eq(sorted(os.listdir(LOG)), ["seg000", "seg001", "seg002", "seg003"])
    recs = log.read(0, 1000)
    seqs = [r["seq"] for r in recs]
    eq(seqs, list(range(log.first_seq(), 201)))
    kept = sum(20 + len('["bolus",{"ug":50,"i":%d}]' % (r["data"]["i"])) for r in recs)
    if kept < 3 * 1024 - 3 * 60:  # (segments - 1) full segments at least (minus end slack)
        raise AssertionError("only %d bytes kept" % kept)
    if kept > 4 * 1024:
        raise AssertionError("%d bytes kept in 4 segments of 1024" % kept)
    for s in os.listdir(LOG):
        if os.stat(LOG + "/" + s)[6] > 1024:
            raise AssertionError("segment over its size")


def test_reopen_continues_sequence():
    _fresh()
    log = EventLog(LOG, segment_bytes=1024, segments=4)
    _fill(log, 150)
    log2 = EventLog(LOG, segment_bytes=1024, segments=4)
    eq(log2.last_seq(), 150)
    eq(log2.first_seq(), log.first_seq())
    eq(log2.append("refill", {"nl": 20000000}, None, 1), 151)
    eq(log2.read(149, 5)[-1]["type"], "refill")


def _head():
    best, seq = None, -1
    for s in os.listdir(LOG):
        data = open(LOG + "/" + s, "rb").read()
        first = data[2] | data[3] << 8
        if first > seq:
            best, seq = LOG + "/" + s, first
    return best


@req("SR-035")
def test_torn_tail_ignored_and_new_records_after_it_are_readable():
    _fresh()
    log = EventLog(LOG, segment_bytes=2048, segments=4)
    _fill(log, 10)
    head = _head()
    rec = open(head, "rb").read()[:30]
    with open(head, "ab") as f:
        f.write(rec[:25])  # half a record: as if torn
    log2 = EventLog(LOG, segment_bytes=2048, segments=4)
    eq(log2.last_seq(), 10)
    eq(log2.append("after", {"k": 1}, None, 0), 11)
    eq([r["seq"] for r in log2.read(0, 50)], list(range(1, 12)))
    eq(log2.read(10, 1)[0]["type"], "after")
    eq(log2.corrupt > 0, True)
    log3 = EventLog(LOG, segment_bytes=2048, segments=4)
    eq(log3.last_seq(), 11)


@req("SR-035")
def test_corrupt_record_in_the_middle_is_skipped_not_returned():
    _fresh()
    log = EventLog(LOG, segment_bytes=4096, segments=4)
    _fill(log, 20)
    path = _head()
    data = bytearray(open(path, "rb").read())
    # flip one bit in the payload of record 5 (records are all the same length here... find it)
    pos = 0
    for _ in range(4):
        pos += 20 + data[pos + 1]
    data[pos + 20] ^= 0x01
    with open(path, "wb") as f:
        f.write(data)
    log2 = EventLog(LOG, segment_bytes=4096, segments=4)
    seqs = [r["seq"] for r in log2.read(0, 100)]
    eq(seqs, [1, 2, 3, 4] + list(range(6, 21)))
    eq(log2.last_seq(), 20)
    eq(log2.corrupt > 0, True)
    for r in log2.read(0, 100):
        eq(r["data"]["i"], r["seq"] - 1)


def test_all_segments_garbage_starts_fresh_without_crash():
    _fresh()
    os.mkdir(LOG)
    for s in range(3):
        with open(LOG + "/seg%03d" % s, "wb") as f:
            f.write(b"\xe5" * 300 + b"\x00" * 300)
    log = EventLog(LOG, segment_bytes=1024, segments=3)
    eq(log.last_seq(), 0)
    eq(log.append("power_on", None, None, 0), 1)
    eq([r["seq"] for r in EventLog(LOG, segment_bytes=1024, segments=3).read(0, 5)], [1])


def test_bad_input_refused_and_nothing_written():
    d = _fresh()
    log = EventLog(LOG)
    log.append("ok", None, None, 0)
    ops = d.stats.ops
    bad = [
        (("",), {}), (("Bolus",), {}), (("a b",), {}), (("x" * 25,), {}), ((5,), {}),
        (("t", {"a": 1.5}), {}), (("t", {1: 2}), {}), (("t", b"x"), {}),
        (("t", "x" * MAX_PAYLOAD), {}),
        (("t", None, (1, 2, 3)), {}), (("t", None, (-1, 0)), {}), (("t", None, (0, 86400000)), {}),
        (("t", None, (65535, 0)), {}), (("t", None, "now"), {}),
        (("t", None, None, -1), {}), (("t", None, None, 2 ** 30), {}), (("t", None, None, True), {}),
    ]
    for args, kw in bad:
        raises(ValueError, log.append, *args, **kw)
    eq(d.stats.ops, ops)
    eq(log.last_seq(), 1)
    raises(ValueError, log.read, -1, 5)
    raises(ValueError, log.read, 0, 0)
    raises(ValueError, log.read, 0, 1001)
    raises(ValueError, EventLog, LOG, 100, 4)
    raises(ValueError, EventLog, LOG, 4096, 1)
    raises(ValueError, EventLog, "", 4096, 4)


def test_full_filesystem_drops_oldest_segment_instead_of_failing():
    _fresh(blocks=24)  # ~20 usable blocks; the log is allowed far more than fits
    log = EventLog(LOG, segment_bytes=16368, segments=20)
    n = 0
    for i in range(1500):
        log.append("fill", {"i": i, "pad": "p" * 40}, None, i)
        n += 1
    eq(log.last_seq(), 1500)
    seqs = [r["seq"] for r in log.read(log.first_seq() - 1, 1000)]
    eq(seqs[-1], 1500)
    eq(seqs, list(range(seqs[0], 1501)))


def test_defaults_hold_a_year_of_normal_events():
    # 30 events a day of 80 bytes plus 3 alarms a day, for 365 days, must fit in what the
    # ring always keeps ((segments - 1) full segments).
    eq((SEGMENTS - 1) * SEGMENT_BYTES >= 365 * 33 * 80, True)
    eq(SEGMENT_BYTES, 16368)  # 4 littlefs blocks exactly (4096 + 4092 + 4088 + 4092)


def test_unreadable_segment_is_skipped_not_a_crash():
    _fresh()
    log = EventLog(LOG, segment_bytes=1024, segments=4)
    _fill(log, 30)  # two segments
    os.mkdir(LOG + "/seg003")  # a directory where a segment would be
    log2 = EventLog(LOG, segment_bytes=1024, segments=4)
    eq(log2.last_seq(), 30)
    eq(len(log2.read(0, 100)), 30)
