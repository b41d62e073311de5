# Heap rig: the whole firmware, end to end, inside one MicroPython heap of a chosen size.
#
# Runs on any MicroPython port: the 64-bit unix port (`micropython -X heapsize=N`) and the
# 32-bit WebAssembly port under Node (tests/heap/run32.mjs), whose objects are the size of a
# Pico's. The firmware's own App runs on the sim board (lockstep clock, simulated head) with an
# in-memory programmer port; a scripted programmer signs frames with the device's keys and talks
# to it through the same framing, dispatcher and handlers as a serial host would. Nothing here
# calls gc.collect() between steps except where it measures: fragmentation is left as it comes.
#
# Output: one line per phase ("phase NAME ...") and a final "RESULT {json}".
import sys

if __name__ == "__main__":
    # micropython -X heapsize=N tests/heap/drive.py LIBDIR ROOTDIR [--rig-asyncio]
    sys.path.insert(0, sys.argv[1])
    if "--rig-asyncio" in sys.argv:
        import rig_asyncio
        sys.modules["asyncio"] = rig_asyncio

import asyncio  # noqa: E402
import gc  # noqa: E402
import micropython  # noqa: E402
import json  # noqa: E402

link = None  # services.link and hmac_sha256_hex: imported by run() and counted as firmware
hmac_sha256_hex = None

_KEYS = {"clinician": "11" * 32, "patient": "22" * 32}
_DEVICE = "HEAP-0001"
_HOUR = 3_600_000
_DAY = 86_400_000

CONTINUOUS = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
              "rate_ug_per_day": 500}
FLEX = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex", "min_rate_ug_per_day": 50,
        "overrides": [],
        "steps": [{"start": "00:00", "rate_ug_per_day": 100}, {"start": "18:00", "rate_ug_per_day": 400},
                  {"start": "22:00", "rate_ug_per_day": 200}],
        "periodic_boluses": [{"time": "08:00", "dose_ug": 25, "duration_min": 10}],
        "patient_bolus": {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 180}}


async def measure():
    """The live heap now: under rig_asyncio, sampled right after a collection the port really
    made (the WebAssembly port collects only between calls from JavaScript)."""
    ra = sys.modules.get("rig_asyncio")
    if ra is not None:
        await ra.checkpoint()
        return ra.live
    gc.collect()
    return gc.mem_alloc()


class MemPort:
    """The programmer port as a pair of in-memory pipes (a board's USB CDC, minus the cable)."""

    def __init__(self):
        self.rx = []
        self.flag = asyncio.Event()
        self.tx = bytearray()
        self.dropped = 0

    async def read(self):
        while not self.rx:
            await self.flag.wait()
            self.flag.clear()
        return self.rx.pop(0)

    def write(self, data):
        self.tx.extend(data)

    def send(self, data):
        # The host writes in 64-byte USB packets, as a Pico's CDC port receives them.
        for i in range(0, len(data), 64):
            self.rx.append(data[i:i + 64])
        self.flag.set()


class Rig:
    def __init__(self, board, fw):
        self.board = board
        self.fw = fw
        self.port = board.port
        self.seq = 0
        self.counter = {"clinician": 0, "patient": 0}
        self.requests = 0
        self.phases = []
        self.high_water = [0, 0, b""]  # heap needed by the hungriest request, its allocation, its frame

    async def live(self):
        return await measure()

    async def settle(self):
        await self.board.clock.advance(0)

    async def raw(self, frame):
        """Send bytes; return the reply frames that came back. Under rig_asyncio the request
        starts a fresh slice: on the WebAssembly port nothing is collected inside a slice, so
        live-at-start plus everything allocated until the reply bounds the heap it needed."""
        ra = sys.modules.get("rig_asyncio")
        if ra is not None:
            await ra.checkpoint()
            start = ra.live
        self.port.tx = bytearray()
        self.port.send(frame)
        for _ in range(50):
            await asyncio.sleep_ms(0)
            if not self.port.rx and self.port.tx.endswith(b"\n"):
                break
        await self.settle()
        if ra is not None:
            need = gc.mem_alloc()
            if need > self.high_water[0]:
                self.high_water = [need, need - start, frame[:24]]
        out = bytes(self.port.tx)
        self.port.tx = bytearray()
        return out

    async def request(self, cmd, args=None, role="clinician", signed=True, expect_ok=True):
        self.seq += 1
        obj = {"s": self.seq, "c": cmd}
        if args is not None:
            obj["a"] = args
        mac = None
        if signed:
            self.counter[role] += 1
            obj["r"] = role
            obj["n"] = self.counter[role]
            obj["d"] = _DEVICE
        body = link.ascii_json(obj).encode()
        if signed:
            mac = hmac_sha256_hex(bytes.fromhex(_KEYS[role]), body)
        inner = body + (b"~" + mac.encode() if mac else b"")
        frame = b"$" + inner + b"*" + (b"%08x" % (link.crc32(inner) & 0xFFFFFFFF)) + b"\n"
        out = await self.raw(frame)
        self.requests += 1
        reply = None
        for line in out.split(b"\n"):
            if line.startswith(b"$"):
                body, _mac = link.decode(line)
                r = json.loads(body)
                if r.get("s") == self.seq:
                    reply = r
        if reply is None:
            raise AssertionError("no reply to %s: %r" % (cmd, out[:200]))
        if expect_ok and not reply.get("ok"):
            raise AssertionError("%s refused: %r" % (cmd, reply.get("e")))
        if not expect_ok and reply.get("ok"):
            raise AssertionError("%s accepted but should have been refused" % cmd)
        return reply.get("d") if reply.get("ok") else reply.get("e")

    async def advance(self, ms, step=_HOUR):
        while ms > 0:
            d = step if ms > step else ms
            await self.board.clock.advance(d)
            ms -= d

    async def phase(self, name, **extra):
        live = await self.live()
        self.phases.append([name, live])
        s = " ".join("%s=%s" % (k, extra[k]) for k in extra)
        print("phase %-24s live %6d  %s" % (name, live, s))
        # MicroPython prints its qstr pools ("qstr pool: n_pool=..."): rig.py pairs the line
        # with this phase. A new pool is one block of ~6 bytes per interned name, doubling
        # each time (7.7 KB on a Pico at the seventh): taken after boot, in a heap already in
        # pieces, it is the MemoryError a request once met with 90 KB free.
        micropython.qstr_info()


def _check(cond, what):
    if not cond:
        raise AssertionError(what)


async def scenario(r):
    b = r.board
    bench = b.bench
    await r.phase("boot")

    d = await r.request("identify", signed=False)
    _check(d["device_id"] == _DEVICE, "identify")
    st = await r.request("status", signed=False)
    await r.phase("identify+status")

    # The walking skeleton's figure: 500 µg/day of 2000 µg/mL for one day moves 250 µL.
    await r.request("program_set", {"program": CONTINUOUS})
    res0 = (await r.request("status", signed=False))["reservoir_ul"]
    out0 = bench.truth()["outlet_nl"]
    await r.advance(_DAY)
    st = await r.request("status", signed=False)
    step_ul = b.nominal_pl_per_step / 1_000_000
    fell = res0 - st["reservoir_ul"]
    _check(abs(fell - 250) <= step_ul + 1e-9, "reservoir fell %r µL in a day, want 250" % fell)
    moved_nl = bench.truth()["outlet_nl"] - out0
    _check(abs(moved_nl - 250_000) <= b.nominal_pl_per_step // 1000, "outlet moved %d nL" % moved_nl)
    await r.phase("continuous 1 day", fell_ul=fell, outlet_nl=moved_nl)

    # A refill with a new concentration (and the bridge bolus that pushes the old drug out).
    await r.request("settings", {"tubing_ul": 50, "catheter_cm": 40, "catheter_nl_per_cm": 2300})
    st = await r.request("status", signed=False)
    await r.request("refill", {"withdrawn_ul": st["reservoir_ul"], "volume_ul": 20_000,
                               "concentration_ug_per_ml": 500, "bridge": True})
    await r.advance(_DAY)
    await r.phase("refill + bridge")

    # Full therapy: flex profile with a periodic bolus, clinician and patient boluses.
    await r.request("program_check", {"program": FLEX})
    await r.request("program_set", {"program": FLEX})
    await r.request("program_show")
    await r.advance(30 * 60_000, 60_000)  # past the 08:00 periodic bolus
    await r.request("bolus", {"dose_ug": 20, "duration_min": 10})
    await r.advance(3 * _HOUR, 60_000)  # a clinician bolus starts the patient lockout too
    for i in range(3):
        # The first is given; the next two fall inside the 180-min lockout and are refused.
        await r.request("patient_bolus", role="patient", expect_ok=(i == 0))
        await r.advance(60 * 60_000)
    await r.advance(_DAY)
    await r.phase("flex + boluses")

    # Stop, resume, alarms: occlusion, battery, acknowledge and pause.
    await r.request("stop")
    await r.advance(_HOUR)
    await r.request("resume")
    bench.set_time(b.clock.now_ms())
    bench.block(True)
    codes = []
    for _ in range(72):  # until the pressure trips the occlusion alarm (hours at these rates)
        await r.advance(_HOUR)
        codes = [a["code"] for a in (await r.request("status", signed=False))["alarms"]]
        if "OCCLUSION" in codes:
            break
    _check("OCCLUSION" in codes, "no occlusion alarm after 3 blocked days: %r" % codes)
    await r.request("alarms", signed=False)
    await r.request("alarms_ack", {"code": "OCCLUSION"})
    bench.block(False)
    bench.set_battery_mv(3200)
    await r.advance(_HOUR)
    await r.request("alarms_pause", {"ms": 120_000})
    bench.set_battery_mv(3900)
    await r.advance(_HOUR)
    await r.phase("alarms", codes=",".join(codes))

    # A plain refill at the same concentration.
    st = await r.request("status", signed=False)
    await r.request("refill", {"withdrawn_ul": st["reservoir_ul"], "volume_ul": 18_000})
    await r.advance(_DAY)
    await r.phase("refill")

    # Downloads a clinician does at every visit: the whole event log and the hourly history.
    last = (await r.request("log", {"since": 0, "max": 1}))["last_seq"]
    pos = 0
    records = 0
    while pos < last:
        recs = (await r.request("log", {"since": pos, "max": 40})).get("records") or []
        if not recs:
            break
        records += len(recs)
        _check("internal_error" not in json.dumps(recs), "internal error logged: %r" % (recs,))
        pos = recs[-1]["seq"]
    st = await r.request("status", signed=False)
    now_h = st["wall"][0] * 24 + st["wall"][1] // _HOUR
    hours = 0
    h = now_h - 7 * 24
    while h < now_h:
        hours += len((await r.request("history", {"from_hour": h, "to_hour": h + 48}))["hours"])
        h += 48
    _check(records > 20 and hours > 100, "log %d records, history %d hours" % (records, hours))
    await r.phase("log+history", records=records, hours=hours)

    # Bad input: every refusal is answered and changes nothing.
    bad = [b"$garbage*00000000\n", b"$" + b"x" * 3000 + b"\n", b"\x00\xff\x7f\n", b"$[1,2]*",
           b"$" + b"{" * 200 + b"*00000000\n"]
    for f in bad:
        await r.raw(f)
    await r.request("program_set", {"program": {"drug": "baclofen"}}, expect_ok=False)
    await r.request("bolus", {"dose_ug": 10**9, "duration_min": 1}, expect_ok=False)
    await r.request("stop", role="patient", expect_ok=False)
    # Characters the firmware has never seen, where it checks one character of a string: a
    # qstr is never freed, so interning them would grow the heap with every such frame.
    for ch in ("\u00e9", "\u4e2d", "\u2603", "\u00b5"):
        prog = dict(FLEX)
        prog["steps"] = [{"start": "00" + ch + "00", "rate_ug_per_day": 100}]
        await r.request("program_check", {"program": prog}, expect_ok=False)
    r.counter["clinician"] -= 1  # a replayed counter is refused
    await r.request("stop", expect_ok=False)
    r.counter["clinician"] += 1
    for _ in range(50):
        await r.request("status", signed=False)
    await r.phase("bad input + 50 status")

    await r.advance(_DAY)
    st = await r.request("status", signed=False)
    # Memory trouble shows as alarms or internal errors, not only as exceptions: none allowed.
    codes = [a["code"] for a in st["alarms"]]
    for c in ("MEMORY_ERROR", "MEMORY_CRITICAL", "SELF_TEST_FAILED"):
        _check(c not in codes, "%s raised during the run" % c)
    await r.phase("end", delivered_ul=st["delivered_ul"])
    return st


def make_board(root, lfs):
    """The sim board with an in-memory port; storage under root (littlefs where the port has it)."""
    from sim.board import SimBoard, FileNvram
    b = SimBoard(lockstep=True, device_id=_DEVICE, port=MemPort())
    b.clock.set_wall(9600, 8 * _HOUR)
    if lfs:
        from sim.flashfile import FileBlockDev, mount_lfs
        b.flash = FileBlockDev(root + "/flash.img")
        mount_lfs(b.flash, "/data")
        b.storage_root = "/data"
    else:
        b.storage_root = root
    b.nvram = FileNvram(root + "/nvram")
    from services.auth import Auth
    Auth(b.storage_root, _DEVICE).provision(_KEYS, "physical")
    return b


async def run(root, lfs=False):
    global link, hmac_sha256_hex
    m0 = await measure()  # interpreter, asyncio and this rig
    import sim.board  # noqa: F401
    if lfs:
        import sim.flashfile  # noqa: F401
    m1 = await measure()  # + the sim board's modules
    from services import link
    from services.hmac_sha256 import hmac_sha256_hex
    import app
    m2 = await measure()  # + the firmware's modules
    board = make_board(root, lfs)
    fw = app.App(board)
    rig = Rig(board, fw)
    task = asyncio.create_task(app.main(fw))
    await asyncio.sleep_ms(0)
    await rig.settle()
    error = None
    st = None
    try:
        st = await scenario(rig)
    except Exception as e:
        error = "%s: %s" % (type(e).__name__, e)
        sys.print_exception(e)
    for t in fw.tasks:
        t.cancel()
    task.cancel()
    await asyncio.sleep_ms(0)
    m3 = await measure()
    ra = sys.modules.get("rig_asyncio")
    result = {"ok": error is None, "peak_live": ra.peak_live if ra else None,
              "samples": ra.samples if ra else None,
              "request_high_water": rig.high_water[0], "request_alloc": rig.high_water[1],
              "request_frame": str(rig.high_water[2], "ascii"), "error": error,
              "rig_modules": m0, "sim_modules": m1 - m0, "firmware_modules": m2 - m1, "after_run": m3,
              "requests": rig.requests, "phases": rig.phases,
              "delivered_ul": st["delivered_ul"] if st else None,
              "platform": sys.platform, "maxsize": sys.maxsize}
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    asyncio.run(run(sys.argv[2], lfs=True))
