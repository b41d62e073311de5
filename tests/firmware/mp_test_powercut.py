# Power cut at EVERY flash operation (program or erase, clean cut and torn half-write) of a
# state save, a log append (plain and rotating to a new segment) and an hourly history flush.
# Each trial restores the same flash image, arms the cut at op k, runs the operation,
# powers on, remounts and checks: the filesystem mounts without formatting; the state is the
# old or the new one; every record appended before is there unchanged; the sequence keeps
# growing; history holds the old or the new hour. The full seeded campaign over mixed
# workloads is tests/powercut/campaign.py.
import vfs
from mptest import eq, req
from sim.blockdev import BlockDev, PowerCut, mount_lfs
from services.storage import StateStore
from services.eventlog import EventLog
from services.history import History, PendingHours

MP = "/spc"
LOG = MP + "/log"
HIST = MP + "/hist"
SEG = 1024


def _state(n):
    return {"program": {"steps": [[0, 400000 + n], [1080, 600000 + 7 * n]]},
            "reservoir": {"nl": 20000000 - 1000 * n}, "counters": {"n": n, "pad": "x" * (n % 7)},
            "calibration": {"pl_per_step": 812345}, "settings": {"low_res_nl": 2000000}}


def _services():
    return StateStore(MP), EventLog(LOG, segment_bytes=SEG, segments=4), History(HIST)


def _campaign(setup, op, check):
    """Cut at op 1, 2, ... until the operation completes. Returns (cuts, torn)."""
    dev = BlockDev(block_count=32)
    mount_lfs(dev, MP)
    ctx = setup(*_services())
    vfs.umount(MP)
    snap = dev.image()
    cuts = torn = 0
    for mode in (False, True):
        k = 1
        while True:
            dev = dev.reboot()
            dev.restore(snap)
            eq(mount_lfs(dev, MP), False, "baseline remount formatted")
            svc = _services()
            dev.fail_at(k, torn=mode)
            try:
                dev.run(op, ctx, *svc)
                done = True
            except PowerCut:
                done = False
            if done:
                dev.disarm()
                check(ctx, True, *svc)  # the operation completed: new value everywhere
                break
            cuts += 1
            torn += mode
            dev = dev.reboot()
            eq(mount_lfs(dev, MP), False, "remount after cut %d (torn=%s) formatted" % (k, mode))
            check(ctx, None, *_services())
            k += 1
    vfs.umount(MP)
    return cuts, torn


def _log_setup(n):
    def setup(st, log, hist):
        st.save(_state(1))
        recs = []
        for i in range(n):
            d = {"i": i, "ug": 50}
            recs.append((log.append("bolus", d, (9000, i * 1000), i), d))
        hist.add(219000, 10, 1, 10)
        return {"recs": recs, "last": log.last_seq()}
    return setup


def _log_op(ctx, st, log, hist):
    seq = log.append("alarm", {"id": "low_res"}, (9001, 5), 99)
    eq(seq, ctx["last"] + 1)


def _log_check(ctx, done, st, log, hist):
    recs = log.read(0, 1000)
    bytype = [r for r in recs if r["type"] == "bolus"]
    # every record acknowledged before the cut, unchanged (the ring may have dropped the
    # oldest segment only when the append started a new one: all of them must still be
    # there at these sizes because 4 segments hold more than the baseline)
    eq([(r["seq"], r["data"]) for r in bytype], ctx["recs"])
    last = log.last_seq()
    if done:
        eq(last, ctx["last"] + 1)
    if last not in (ctx["last"], ctx["last"] + 1):
        raise AssertionError("last seq %d after cut, before %d" % (last, ctx["last"]))
    if last == ctx["last"] + 1:
        eq(recs[-1]["type"], "alarm")
        eq(recs[-1]["data"], {"id": "low_res"})
    # the sequence keeps growing after power-on
    eq(log.append("power_on", {"cause": "power_on"}, None, 0), last + 1)
    eq([r["seq"] for r in log.read(0, 1000)][-2:], [last, last + 1])
    eq(log.corrupt, 0)  # a power cut never leaves a damaged record behind
    eq(st.load(), _state(1))


def _state_setup(st, log, hist):
    st.save(_state(1))
    st.save(_state(2))
    return {}


def _state_op(ctx, st, log, hist):
    st.save(_state(3))


def _state_check(ctx, done, st, log, hist):
    s = st.load()
    if done:
        eq(s, _state(3))
    if s != _state(2) and s != _state(3):
        raise AssertionError("state after cut is neither old nor new: %r (%s)" % (s, st.status))
    if st.status not in ("ok", "recovered"):
        raise AssertionError("status %s" % st.status)
    # and the store keeps working: a further save lands and loads
    st.save(_state(4))
    eq(StateStore(MP).load(), _state(4))


def _first_state_setup(st, log, hist):
    return {}


def _first_state_check(ctx, done, st, log, hist):
    s = st.load()
    if done:
        eq(s, _state(3))
    if s is not None and s != _state(3):
        raise AssertionError("first save after cut: %r" % (s,))


def _hist_setup(st, log, hist):
    hist.add(219000, 10, 1, 10)
    hist.add(219001, 20, 2, 20)
    return {}


def _hist_op(ctx, st, log, hist):
    hist.add(219001, 5, 1, 5)


def _hist_check(ctx, done, st, log, hist):
    r = hist.read(219000, 219002)
    new = [(219000, 10, 1, 10), (219001, 25, 3, 25)]
    old = [(219000, 10, 1, 10), (219001, 20, 2, 20)]
    if done:
        eq(r, new)
    if r != old and r != new:
        raise AssertionError("history after cut: %r" % (r,))


_TOTAL = [0, 0]


def _count(ct):
    _TOTAL[0] += ct[0]
    _TOTAL[1] += ct[1]
    return ct


def _big_state(n):
    s = _state(n)
    s["program"]["steps"] = [[i * 60, 400000 + 1000 * i + n] for i in range(24)]
    s["settings"]["notes"] = "b" * 600  # well past littlefs's 512-byte inline limit
    return s


@req("SR-032")
def test_cut_at_every_op_of_a_state_save():
    # a small (inline) state after 0..9 earlier saves, so the cut meets metadata commits
    # and the compactions littlefs does when the directory's metadata block fills up
    cuts = 0
    for j in range(10):
        def setup(st, log, hist, j=j):
            for i in range(j):
                st.save(_state(100 + i))
            st.save(_state(1))
            st.save(_state(2))
            return {}
        cuts += _count(_campaign(setup, _state_op, _state_check))[0]
    if cuts < 20:
        raise AssertionError("only %d cuts: the save is not exercised" % cuts)


@req("SR-032")
def test_cut_at_every_op_of_a_big_state_save():
    def op(ctx, st, log, hist):
        st.save(_big_state(3))

    def check(ctx, done, st, log, hist):
        s = st.load()
        if done:
            eq(s, _big_state(3))
        if s != _big_state(2) and s != _big_state(3):
            raise AssertionError("big state after cut is neither old nor new (%s)" % st.status)
    cuts = 0
    for j in range(3):
        def setup(st, log, hist, j=j):
            for i in range(j):
                st.save(_big_state(100 + i))
            st.save(_big_state(1))
            st.save(_big_state(2))
            return {}
        cuts += _count(_campaign(setup, op, check))[0]
    if cuts < 12:
        raise AssertionError("only %d cuts" % cuts)


@req("SR-032")
def test_cut_at_every_op_of_the_first_state_save():
    _count(_campaign(_first_state_setup, _state_op, _first_state_check))


@req("SR-032", "SR-035")
def test_cut_at_every_op_of_a_log_append():
    # 3 records (inline file) and 15 (a file in its own data block, copied on append)
    cuts = 0
    for n in (3, 9, 15, 20):
        cuts += _count(_campaign(_log_setup(n), _log_op, _log_check))[0]
    if cuts < 10:
        raise AssertionError("only %d cuts" % cuts)


@req("SR-032", "SR-035")
def test_cut_at_every_op_of_an_append_that_starts_a_new_segment():
    # 22 bolus records (45 or 46 bytes) fill 1002 of 1024 bytes, so the 46-byte alarm
    # record must start the next segment
    def setup(st, log, hist):
        ctx = _log_setup(22)(st, log, hist)
        eq(len(log._first_seq) - log._first_seq.count(0), 1)
        eq(log._head_size + 46 > SEG, True)
        return ctx
    c = _count(_campaign(setup, _log_op, _log_check))
    if c[0] < 2:
        raise AssertionError("only %d cuts" % c[0])


@req("SR-032")
def test_cut_at_every_op_of_an_hourly_history_flush():
    _count(_campaign(_hist_setup, _hist_op, _hist_check))


_PEND = HIST + "/pend"
_PH = [(219000 + i, 10 + i, 1 + i, 10 + i) for i in range(6)]


def _pend_setup(st, log, hist):
    hist.add(219000, 4, 0, 4)  # already in the day file: the pending total sums onto it
    p = PendingHours(hist, _PEND)
    p.close(219000, 6, 1, 6)
    for h, ng, nl, png in _PH[1:5]:
        p.close(h, ng, nl, png)
    return {}


def _pend_check_with(last):
    def check(ctx, done, st, log, hist):
        p = PendingHours(hist, _PEND)
        r = p.read(219000, 219010)
        old, new = _PH[:last - 1], _PH[:last]
        if done:
            eq(r, new)
        if r != old and r != new:
            raise AssertionError("pending hours after cut: %r" % (r,))
        p.flush()  # a flush after the cut (or a repeated one) never doubles an hour
        eq(hist.read(219000, 219010), r)
    return check


@req("SR-025", "SR-032")
def test_cut_at_every_op_of_closing_an_hour_into_the_pend_file():
    def op(ctx, st, log, hist):
        PendingHours(hist, _PEND).close(*_PH[4])  # the 5th closed hour: one small file write

    def setup(st, log, hist):
        _pend_setup(st, log, hist)
        p = PendingHours(hist, _PEND)
        p.n -= 1  # the 5th is the operation under test
        p._write()
        return {}
    cuts = _count(_campaign(setup, op, _pend_check_with(5)))[0]
    eq(cuts >= 2, True, "cuts: %d" % cuts)


@req("SR-025", "SR-032")
def test_cut_at_every_op_of_the_sixth_hour_that_writes_the_day_files():
    def op(ctx, st, log, hist):
        PendingHours(hist, _PEND).close(*_PH[5])  # day file commit, then the pend file emptied
    cuts = _count(_campaign(_pend_setup, op, _pend_check_with(6)))[0]
    eq(cuts >= 4, True, "cuts: %d (the day file and the pend file)" % cuts)


def test_zz_campaign_size():
    # runs last (sorted by name): the exhaustive trials above add up to a real campaign
    print("powercut cuts=%d torn=%d" % (_TOTAL[0], _TOTAL[1]))
    if _TOTAL[0] < 60 or _TOTAL[1] < 25:
        raise AssertionError("only %d cuts (%d torn)" % (_TOTAL[0], _TOTAL[1]))
