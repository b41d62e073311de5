# Power-cut campaign for the persistence services, on the real MicroPython interpreter.
#
#   .venv/bin/micropython tests/powercut/campaign.py --seed S --cuts N [--days D] [--blocks B]
#
# Phase 1, wear: D simulated days of normal use on a fresh Pico-sized littlefs (352 x 4 KiB)
# with the production defaults (state saved every 15 min, ~30 events + 3 alarms a day,
# history: each hour closed into the pend file, six at a time into the day files, as the firmware
# does). Prints bytes written and blocks erased per day and the projected
# flash life at 100 000 erase cycles, from the mean and from the most-erased block.
#
# Phase 2, cuts: the same workload on a fresh image, with the event log on a small ring
# (6 x 4096 bytes) so that segment rotation is cut often too. Before each flash-writing
# operation the campaign may arm a power cut at a random flash operation inside it (clean or
# torn half-way, programs and erases alike). After each cut: power on, remount (a format
# counts as a failure), reopen the services and check
#   - the state is exactly the last saved one or the one being saved;
#   - every log record that was acknowledged (append returned) and is still inside the ring
#     reads back unchanged, the record being appended is there whole or not at all, the log
#     never loses a record it guarantees to keep, and sequence numbers keep growing;
#   - the hour being flushed holds the old or the new figures, and all other hours are intact;
#   - no damaged record is ever seen (littlefs commits whole).
# Every 100 cuts and at the end the whole log and history are compared with the model.
# Deterministic from --seed; a failure prints the seed, the cut number and what differed.
import sys
import gc
import json
import time
from array import array
from binascii import crc32

_parts = sys.argv[0].split("/")
ROOT = "/".join(_parts[:-3]) or "."
sys.path.insert(0, ROOT + "/boards")
sys.path.insert(0, ROOT + "/firmware")

from sim.blockdev import BlockDev, PowerCut, mount_lfs  # noqa: E402
from services.storage import StateStore  # noqa: E402
from services.eventlog import EventLog  # noqa: E402
from services.history import History, PendingHours, DAYS  # noqa: E402

MP = "/flash"
STEP_MIN = 15
STEPS_PER_DAY = 24 * 60 // STEP_MIN
DAY0 = 9131  # 2025-01-01 in days since 2000-01-01
ERASE_CYCLES = 100000
LOG_RING = 4096  # more than the phase-2 log can hold (6 x 4096 bytes / 21-byte minimum)
HIST_RING = DAYS * 24


def usage(msg):
    print("campaign.py: " + msg)
    print("usage: micropython tests/powercut/campaign.py --seed S --cuts N [--days D] [--blocks B]")
    sys.exit(2)


def parse(argv):
    opts = {"seed": None, "cuts": 1000, "days": 30, "blocks": 352}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            usage("help")
        if not a.startswith("--") or a[2:] not in opts or i + 1 >= len(argv):
            usage("bad argument %r" % a)
        try:
            v = int(argv[i + 1])
        except ValueError:
            usage("%s needs an integer, got %r" % (a, argv[i + 1]))
        if v < 0 or (a != "--seed" and v < 1) or (a == "--blocks" and v < 64):
            usage("%s out of range: %d" % (a, v))
        opts[a[2:]] = v
        i += 2
    if opts["seed"] is None:
        opts["seed"] = time.time() & 0x3FFFFFFF
    return opts


class Rng:
    # xorshift32: the same sequence on every port and every run
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def chance(self, num, den):
        return self.below(den) < num


EVENTS = ("bolus", "bolus_refused", "program", "refill", "calibration", "clock_set",
          "auth_fail", "under_delivery", "settings", "self_test")
ALARMS = ("low_reservoir", "motor_stall", "occlusion", "battery_low")


class World:
    """The pump's workload and the model of what flash must hold."""

    def __init__(self, rng):
        self.rng = rng
        self.step = 0
        self.state_n = 0
        self.state = None  # last saved (acknowledged) state
        # Models in fixed arrays allocated once: dicts that grow would fragment a heap that
        # already holds the 1.4 MB flash image.
        # log: CRC of the compact JSON payload of each acknowledged record, by seq % LOG_RING
        self.seq_arr = array("I", bytes(4 * LOG_RING))
        self.crc_arr = array("I", bytes(4 * LOG_RING))
        self.log_last = 0
        # history: hour + 1 (0 = never flushed) and (ng, nl, png), by hour % HIST_RING
        self.h_arr = array("I", bytes(4 * HIST_RING))
        self.hv_arr = array("I", bytes(12 * HIST_RING))
        self.track = True  # keep the model (phase 2); phase 1 only measures

    def set_crc(self, seq, c):
        i = seq % LOG_RING
        self.seq_arr[i] = seq
        self.crc_arr[i] = c

    def crc_of(self, seq):
        i = seq % LOG_RING
        return self.crc_arr[i] if self.seq_arr[i] == seq else None

    def hist_get(self, h):
        i = h % HIST_RING
        if self.h_arr[i] != h + 1:
            return None
        v = self.hv_arr
        return (v[3 * i], v[3 * i + 1], v[3 * i + 2])

    def hist_set(self, h, t):
        i = h % HIST_RING
        if t is None:
            self.h_arr[i] = 0
            return
        self.h_arr[i] = h + 1
        self.hv_arr[3 * i] = t[0]
        self.hv_arr[3 * i + 1] = t[1]
        self.hv_arr[3 * i + 2] = t[2]

    def make_state(self):
        n = self.state_n
        r = self.rng
        return {"program": {"mode": "flex", "conc": 2000,
                            "steps": [[0, 400000 + (n // 96) % 7 * 1000], [1080, 600000]]},
                "calibration": {"pl_per_step": 812345},
                "reservoir": {"nl": 20000000 - (n * 2604) % 18000000, "refills": n // 5000},
                "counters": {"day": DAY0 + n // 96, "ms": (n % 96) * 900000,
                             "ng_rem": r.below(1000000), "steps": r.below(1 << 29)},
                "settings": {"low_nl": 2000000, "lockout_min": 60}}

    def make_event(self, alarm):
        r = self.rng
        if alarm:
            return "alarm", [ALARMS[r.below(len(ALARMS))], "raise", r.below(3)]
        t = EVENTS[r.below(len(EVENTS))]
        # sized so that records average ~80 bytes, the capacity assumption in the docs
        return t, [r.below(100000), r.below(1000), "ok" if r.chance(3, 4) else "refused",
                   "src=clinician ref=%04d" % r.below(10000)]

    def wall(self):
        day = DAY0 + self.step // STEPS_PER_DAY
        return (day, (self.step % STEPS_PER_DAY) * STEP_MIN * 60000)

    def hour(self):
        return (DAY0 * 24) + self.step * STEP_MIN // 60

    def ops_for_step(self):
        """The flash-writing operations of this 15-minute step, in order."""
        ops = []
        r = self.rng
        if self.step % (60 // STEP_MIN) == 0 and self.step > 0:
            ops.append(("hist",))
        # ~30 events and ~3 alarms a day spread over 96 steps
        if r.chance(30, STEPS_PER_DAY):
            ops.append(("event", False))
        if r.chance(3, STEPS_PER_DAY):
            ops.append(("event", True))
        ops.append(("state",))
        return ops


def payload_crc(t, d):
    return crc32(json.dumps([t, d], separators=(",", ":")).encode())


class Bench:
    def __init__(self, blocks, log_kw):
        self.dev = BlockDev(block_count=blocks)
        self.log_kw = log_kw
        mount_lfs(self.dev, MP)
        self.open()

    def open(self):
        self.st = StateStore(MP)
        self.loaded = self.st.load()
        self.log = EventLog(MP + "/log", **self.log_kw)
        # As the firmware keeps it: closed hours in the pend file, six at a time into the days.
        self.hist = PendingHours(History(MP + "/hist"), MP + "/hist/pend")

    def power_on(self):
        self.dev = self.dev.reboot()
        gc.collect()
        formatted = mount_lfs(self.dev, MP)
        self.open()
        return formatted


def do_op(bench, world, op, pending):
    """Run one operation; `pending` receives what is being written before any flash op."""
    kind = op[0]
    if kind == "state":
        world.state_n += 1
        s = world.make_state()
        pending["state"] = s
        bench.st.save(s)
        world.state = s
    elif kind == "event":
        t, d = world.make_event(op[1])
        pending["event"] = (t, d)
        seq = bench.log.append(t, d, world.wall(), world.step * STEP_MIN * 60 % (1 << 29))
        if seq != world.log_last + 1:
            raise AssertionError("append returned seq %d, expected %d" % (seq, world.log_last + 1))
        if world.track:
            world.set_crc(seq, payload_crc(t, d))
        world.log_last = seq
    elif kind == "hist":
        h = world.hour() - 1
        ng = 20833 + world.rng.below(500)
        v = (ng, ng // 2000, 20833)
        old = world.hist_get(h)
        new = v if old is None else (old[0] + v[0], old[1] + v[1], old[2] + v[2])
        pending["hist"] = (h, old, new)
        bench.hist.close(h, v[0], v[1], v[2])
        if world.track:
            world.hist_set(h, new)


class Failures:
    def __init__(self, seed):
        self.n = 0
        self.seed = seed

    def fail(self, where, msg):
        self.n += 1
        if self.n <= 10:
            print("FAIL seed=%d %s: %s" % (self.seed, where, msg))


def guaranteed_records(log_kw, max_rec):
    return (log_kw["segments"] - 1) * log_kw["segment_bytes"] // max_rec


def check_after_cut(bench, world, op, pending, fails, where, log_kw):
    # state: the last saved or the one being saved
    s = bench.loaded
    if op[0] == "state":
        if s != world.state and s != pending.get("state"):
            fails.fail(where, "state neither old nor new (status %s)" % bench.st.status)
        world.state = s if s is not None else world.state
    elif s != world.state:
        fails.fail(where, "state changed by a cut outside a save (status %s)" % bench.st.status)
    if bench.st.status not in ("ok", "recovered") and world.state is not None:
        fails.fail(where, "state status %s" % bench.st.status)
    # log: last seq, the pending record whole or absent, recent records unchanged
    log = bench.log
    last = log.last_seq()
    if op[0] == "event" and last == world.log_last + 1:
        t, d = pending["event"]
        r = log.read(last - 1, 1)
        if not r or payload_crc(r[0]["type"], r[0]["data"]) != payload_crc(t, d):
            fails.fail(where, "half-appended record %d differs" % last)
        world.set_crc(last, payload_crc(t, d))
        world.log_last = last
    elif last != world.log_last:
        fails.fail(where, "log last seq %d, model %d" % (last, world.log_last))
        world.log_last = max(last, world.log_last)
    lo = max(log.first_seq(), world.log_last - 20)
    for r in log.read(lo - 1 if lo > 0 else 0, 50):
        if world.crc_of(r["seq"]) != payload_crc(r["type"], r["data"]):
            fails.fail(where, "record %d differs after cut" % r["seq"])
    if log.corrupt:
        fails.fail(where, "log met %d damaged region(s)" % log.corrupt)
    # history: the hour being flushed is old or new; model adopts what is there
    if op[0] == "hist":
        h, old, new = pending["hist"]
        got = bench.hist.read(h, h + 1)
        got = got[0][1:] if got else None
        if got != old and got != new:
            fails.fail(where, "history hour %d is %r, neither %r nor %r" % (h, got, old, new))
        world.hist_set(h, got)


def full_check(bench, world, fails, where, log_kw):
    log = bench.log
    first, last = log.first_seq(), log.last_seq()
    if last != world.log_last:
        fails.fail(where, "full check: last seq %d, model %d" % (last, world.log_last))
    keep = guaranteed_records(log_kw, 20 + 60)
    if last and last - first + 1 < min(last, keep):
        fails.fail(where, "log keeps %d records, guarantees %d" % (last - first + 1, min(last, keep)))
    since = first - 1 if first else 0
    expect = first
    while True:
        page = log.read(since, 200)
        if not page:
            break
        for r in page:
            if r["seq"] != expect:
                fails.fail(where, "log seq %d where %d expected" % (r["seq"], expect))
                expect = r["seq"]
            if world.crc_of(r["seq"]) != payload_crc(r["type"], r["data"]):
                fails.fail(where, "record %d differs" % r["seq"])
            expect += 1
        since = page[-1]["seq"]
    if last and expect != last + 1:
        fails.fail(where, "log read ended at %d, last %d" % (expect - 1, last))
    # history, a day at a time: every hour the model has must read back, and no other
    h_now = world.hour()
    lo = max(DAY0 * 24, h_now - (DAYS - 1) * 24)
    lo -= lo % 24
    while lo < h_now:
        got = bench.hist.read(lo, min(lo + 24, h_now))
        k = 0
        for h in range(lo, min(lo + 24, h_now)):
            m = world.hist_get(h)
            g = None
            if k < len(got) and got[k][0] == h:
                g = got[k][1:]
                k += 1
            if g != m:
                fails.fail(where, "history hour %d is %r, model %r" % (h, g, m))
        lo += 24
    if bench.hist.history.damaged or bench.hist.damaged:
        fails.fail(where, "history met damaged day files or a damaged pend file")


def phase_wear(opts):
    rng = Rng(opts["seed"])
    world = World(rng)
    world.track = False
    from services.eventlog import SEGMENTS, SEGMENT_BYTES
    kw = {"segments": SEGMENTS, "segment_bytes": SEGMENT_BYTES}
    bench = Bench(opts["blocks"], kw)
    st = bench.dev.stats
    b0, e0, o0 = st.bytes_written, st.blocks_erased, st.ops
    base = list(st.erase_counts)
    per = {"state": [0, 0, 0], "event": [0, 0, 0], "hist": [0, 0, 0]}  # count, bytes, erases
    for _ in range(opts["days"] * STEPS_PER_DAY):
        for op in world.ops_for_step():
            bw, be = st.bytes_written, st.blocks_erased
            do_op(bench, world, op, {})
            p = per[op[0]]
            p[0] += 1
            p[1] += st.bytes_written - bw
            p[2] += st.blocks_erased - be
        world.step += 1
    days = opts["days"]
    bpd = (st.bytes_written - b0) // days
    epd = (st.blocks_erased - e0) * 10 // days  # tenths
    worst = 0
    for i in range(len(base)):
        worst = max(worst, st.erase_counts[i] - base[i])
    blocks = bench.dev.block_count
    life_mean_y = blocks * ERASE_CYCLES * days * 10 // max(1, (st.blocks_erased - e0) * 10) // 365
    life_worst_y = ERASE_CYCLES * days // max(1, worst) // 365
    print("wear: %d days, %d blocks of %d bytes (%d KiB), defaults: log %d x %d bytes, history %d days"
          % (days, blocks, bench.dev.block_size, blocks * bench.dev.block_size // 1024,
             kw["segments"], kw["segment_bytes"], DAYS))
    for k in ("state", "event", "hist"):
        p = per[k]
        if p[0]:
            print("  %-5s %6d ops  %6d bytes/op  %5d.%02d erases/op  %4d ops/day"
                  % (k, p[0], p[1] // p[0], p[2] // p[0], p[2] * 100 // p[0] % 100, p[0] // days))
    print("  per day: %d bytes written, %d.%d blocks erased, %d flash ops"
          % (bpd, epd // 10, epd % 10, (st.ops - o0) // days))
    print("  most-erased block: %d erases in %d days" % (worst, days))
    print("  projected life at %d cycles: %d years (mean over all blocks), %d years (most-erased block)"
          % (ERASE_CYCLES, life_mean_y, life_worst_y))
    os = __import__("os")
    fs = os.statvfs(MP)
    logbytes = 0
    for name in os.listdir(MP + "/log"):
        logbytes += os.stat(MP + "/log/" + name)[6]
    nrec = bench.log.last_seq() - bench.log.first_seq() + 1
    print("  filesystem after %d days: %d of %d blocks used; log %d records (seq %d..%d), "
          "%d bytes, mean %d bytes/record"
          % (days, fs[2] - fs[3], fs[2], nrec, bench.log.first_seq(), bench.log.last_seq(),
             logbytes, logbytes // max(1, nrec)))
    __import__("vfs").umount(MP)


def phase_cuts(opts):
    rng = Rng(opts["seed"] ^ 0x5A5A5A5)
    world = World(rng)
    log_kw = {"segments": 6, "segment_bytes": 4096}
    bench = Bench(opts["blocks"], log_kw)
    fails = Failures(opts["seed"])
    kmax = {"state": 4, "event": 4, "hist": 4}
    cuts = torn = ops = 0
    want = opts["cuts"]
    t0 = time.ticks_ms()
    while cuts < want:
        for op in world.ops_for_step():
            ops += 1
            pending = {}
            armed = rng.chance(2, 5)
            if armed:
                tear = rng.chance(2, 5)
                bench.dev.fail_at(1 + rng.below(kmax[op[0]] + 1), torn=tear)
            o = bench.dev.stats.ops
            try:
                bench.dev.run(do_op, bench, world, op, pending)
                n = bench.dev.stats.ops - o
                if n > kmax[op[0]]:
                    kmax[op[0]] = n
                bench.dev.disarm()
                continue
            except PowerCut:
                pass
            cuts += 1
            torn += tear
            where = "cut %d (step %d, %s, torn=%s)" % (cuts, world.step, op[0], tear)
            if bench.power_on():
                fails.fail(where, "filesystem had to be formatted")
            check_after_cut(bench, world, op, pending, fails, where, log_kw)
            # the pump logs its power-on: the sequence must continue after the last record
            seq = bench.log.append("power_on", ["power_on"], world.wall(), 0)
            if seq != world.log_last + 1:
                fails.fail(where, "power_on got seq %d after %d" % (seq, world.log_last))
            world.set_crc(seq, payload_crc("power_on", ["power_on"]))
            world.log_last = seq
            if cuts % 100 == 0:
                full_check(bench, world, fails, where + " full", log_kw)
            if cuts >= want:
                break
        world.step += 1
    full_check(bench, world, fails, "final", log_kw)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    st = bench.dev.stats
    print("cuts: %d (torn %d, clean %d) over %d operations, %d simulated days, %d.%d s"
          % (cuts, torn, cuts - torn, ops, world.step // STEPS_PER_DAY, ms // 1000, ms % 1000 // 100))
    print("  max flash ops per operation: state %d, event %d, history %d"
          % (kmax["state"], kmax["event"], kmax["hist"]))
    print("  log: seq %d..%d kept in %d x %d bytes; state generation %d"
          % (bench.log.first_seq(), bench.log.last_seq(), log_kw["segments"], log_kw["segment_bytes"],
             bench.st.generation))
    print("  flash totals: %d ops, %d bytes written, %d blocks erased" % (st.ops, st.bytes_written, st.blocks_erased))
    return fails.n


def main():
    opts = parse(sys.argv[1:])
    print("powercut campaign seed=%d cuts=%d days=%d blocks=%d"
          % (opts["seed"], opts["cuts"], opts["days"], opts["blocks"]))
    phase_wear(opts)
    gc.collect()
    n = phase_cuts(opts)
    print("failures: %d" % n)
    print("%d passed, %d failed" % (1 if n == 0 else 0, 1 if n else 0))
    sys.exit(1 if n else 0)


main()
