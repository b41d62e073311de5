# The attacks of issue 16 against the whole App on the unix port, frames through the dispatcher
# as the link loop hands them over, storage on a plain file system (power cuts are a new App on
# the same files without a shutdown): what anyone without the clinician's key can still do.
import os
from mptest import eq, req

import app as app_mod
from services import link
from services.hmac_sha256 import HmacKey
from services.refusals import BUDGET, FLUSH_MS
from sim.board import SimBoard, FileNvram
from pumpsim import NullPort

KEYS = {"clinician": "11" * 32, "patient": "22" * 32}
_HMAC = {}
_N = {"clinician": 0, "patient": 0}


def _board(root):
    b = SimBoard(lockstep=True, port=NullPort())
    b.storage_root = root
    b.nvram = FileNvram(root + "/nvram")
    b.clock.set_wall(9800, 36_000_000)
    b.scale = None  # no physics runs here (time is moved by hand): a scale would see no water
    return b


def _boot(root):
    a = app_mod.App(_board(root))
    a.boot()
    a.save()
    return a


def _reboot(a, root):
    """A power cut: a new App on the same files, nothing saved on the way down; the board's
    clock keeps the pump's wall time, as the bench's does."""
    day, ms = a.clock.wall()
    b = _board(root)
    b.clock.set_wall(day, ms)
    n = app_mod.App(b)
    n.boot()
    return n


def _fresh():
    root = "/tmp/_attack_%d" % id(object())
    os.mkdir(root)
    a = _boot(root)
    _N["clinician"] = _N["patient"] = 0
    eq(_send(a, {"s": 1, "c": "provision", "a": {"keys": KEYS}})["ok"], True)
    return root, a


def _send(a, obj, role=None, mac=None):
    """One request; signed with `role`'s key (next counter) unless mac is given."""
    if role is not None:
        _N[role] += 1
        obj = dict(obj, r=role, n=_N[role], d=a.board.device_id)
    body = link.ascii_json(obj)
    if role is not None and mac is None:
        k = _HMAC.get(role)
        if k is None:
            from binascii import unhexlify
            k = _HMAC[role] = HmacKey(unhexlify(KEYS[role]))
        mac = k.hexdigest(body.encode())
    reply = a.protocol.handle_line(link.encode(obj, mac)[:-1])
    return link.parse_body(link.decode(reply[:-1])[0])


def _advance(a, ms):
    a.board.clock._v += ms
    a.sync()


def _kinds(ring):
    return [r["type"] for r in ring.read(0, 1000)]


_PROGRAM = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
            "rate_ug_per_day": 500,
            "patient_bolus": {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 60}}


def _programmed():
    root, a = _fresh()
    eq(_send(a, {"s": 2, "c": "program_set", "a": {"program": _PROGRAM}}, "clinician")["ok"], True)
    eq(_send(a, {"s": 3, "c": "bolus", "a": {"dose_ug": 20, "duration_min": 10}}, "clinician")["ok"], True)
    return root, a


@req("SR-048")
def test_a_slow_unsigned_stream_never_pushes_out_the_therapy_record():
    root, a = _programmed()
    log = a.stores.log
    kept = _kinds(log)
    first = log.first_seq()
    for name in ("power_on", "provision", "program", "bolus"):
        eq(any(k.startswith(name) for k in kept), True, "%s in %r" % (name, kept))
    # 6000 unsigned therapy requests, 10 a virtual minute for 10 virtual hours: the attack
    # that erased the log's first 436 records before issue 16
    for i in range(6000):
        r = _send(a, {"s": 100 + i, "c": "stop"})
        eq(r["e"]["code"], "AUTH_REQUIRED")
        _advance(a, 6000)
    eq(a.pump.state, "running", "%s %r" % (a.pump.stop_reason, a.alarms.active()))
    eq(log.first_seq(), first)
    eq(_kinds(log)[:len(kept)], kept)  # every record kept, in order
    eq("auth_fail" in _kinds(log), False)  # none of the refusals took a place in it
    ref = a.stores.refusals
    eq(ref.last_seq() >= 6000, True)
    eq(ref.first_seq() > 1, True, "the refusals' ring wrapped, and says so by its first_seq")
    # each record stays small: the claimed role and command are cut, never escaped at length
    rec = ref.read(ref.last_seq() - 1, 1)[0]
    eq(rec["type"], "auth_fail")
    eq(len(link.ascii_json(rec)) < 140, True, repr(rec))


@req("SR-048")
def test_a_fast_flood_is_counted_past_the_budget_and_the_counts_survive_a_power_cut():
    root, a = _fresh()
    ref = a.stores.refusals
    before = ref.last_seq()
    for i in range(25):  # 25 unsigned requests within a minute
        _send(a, {"s": 10 + i, "c": "stop", "r": "x\x01" * 30})
        _advance(a, 100)
    eq(ref.last_seq() - before, BUDGET)  # one by one while the budget lasts
    eq(a.refusals.ms_to_flush() > 0, True)
    eq(a.next_wake() <= FLUSH_MS, True)  # the control loop wakes to write the counts
    _advance(a, FLUSH_MS)
    recs = ref.read(before, 100)
    eq([r["type"] for r in recs], ["auth_fail"] * BUDGET + ["refusals_counted"])
    eq(recs[-1]["data"], {"n": 25 - BUDGET, "codes": {"AUTH_REQUIRED": 25 - BUDGET}})
    eq(recs[0]["data"]["role"], "x\x01x\x01x\x01x\x01x\x01x\x01")  # cut to 12 characters
    b = _reboot(a, root)  # a power cut: what was written is all there
    got = b.stores.refusals.read(before, 100)
    eq(sum(1 for r in got if r["type"] == "auth_fail") + got[-1]["data"]["n"], 25)


@req("SR-043")
def test_forged_frames_alarm_but_the_clinician_is_answered_and_alarm_survives_a_power_cut():
    root, a = _programmed()
    for i in range(20):
        r = _send(a, {"s": 50 + i, "c": "stop", "r": "clinician", "n": 10_000 + i, "d": a.board.device_id},
                  mac="%064x" % i)
        eq(r["e"]["code"], "AUTH_BAD_MAC")
        _advance(a, 200)
    eq("AUTH_FAILURES" in [x["code"] for x in a.alarms.active()], True)
    # the key holder is answered at once, in the middle of the attack (no lockout)
    eq(_send(a, {"s": 90, "c": "status"}, "clinician")["ok"], True)
    b = _reboot(a, root)  # power cut mid-attack: lock (none), alarm and log agree
    eq("AUTH_FAILURES" in [x["code"] for x in b.alarms.active()], True)
    eq(_send(b, {"s": 91, "c": "stop"}, "clinician")["ok"], True)
    eq(b.pump.state, "stopped")
    eq("alarm" in _kinds(b.stores.log), True)
    # five minutes without a failure and the quarter-hour check finds the cause gone
    _advance(b, 900_000)
    act = [x["state"] for x in b.alarms.active() if x["code"] == "AUTH_FAILURES"]
    eq(act, ["latched"])  # latching: shown until someone acknowledges it


@req("SR-049")
def test_a_junk_mac_copy_sent_early_does_not_block_the_clinicians_stop():
    root, a = _programmed()
    # the attacker guesses the body of the clinician's next stop and sends it first, junk MAC
    n = _N["clinician"] + 1
    body = {"s": 77, "c": "stop", "r": "clinician", "n": n, "d": a.board.device_id}
    eq(_send(a, body, mac="0" * 64)["e"]["code"], "AUTH_BAD_MAC")
    r = _send(a, {"s": 77, "c": "stop"}, "clinician")
    eq((r["ok"], r.get("cached")), (True, None))
    eq(a.pump.state, "stopped")
    # and a junk-MAC copy of the accepted frame does not fetch its OK
    eq(_send(a, body, mac="0" * 64)["e"]["code"], "AUTH_BAD_MAC")


@req("SR-050")
def test_a_patient_flood_is_capped_on_flash_and_still_counted():
    root, a = _programmed()
    saves = [0]
    real = a.stores.state.save

    def counting(st):
        saves[0] += 1
        return real(st)

    a.stores.state.save = counting
    log, ref = a.stores.log, a.stores.refusals
    log0, ref0 = log.last_seq(), ref.last_seq()
    codes = {}
    for i in range(300):  # 300 requests in 3 virtual seconds
        r = _send(a, {"s": 200 + i, "c": "patient_bolus"}, "patient")
        c = "OK" if r["ok"] else r["e"]["code"]
        codes[c] = codes.get(c, 0) + 1
        _advance(a, 10)
    _advance(a, FLUSH_MS)
    eq(codes.get("RATE_LIMITED", 0) >= 290, True, repr(codes))
    eq(log.last_seq() - log0 <= 1, True)  # the event log: at most a delivered bolus
    eq(ref.last_seq() - ref0 <= BUDGET + 1, True)  # the refusals' ring: its budget and one count
    eq(saves[0] <= 2, True, "state saves %d" % saves[0])
    eq(a.stores.auth.info(0)["failures"]["rate_limited"], codes["RATE_LIMITED"])
    u = _send(a, {"s": 999, "c": "patient_usage"}, "clinician")["d"]["days"]
    eq(len(u), 1)
    eq((u[0]["attempts"], u[0]["rate_limited"]), (300, codes["RATE_LIMITED"]))
    eq(u[0]["lockout"] + u[0]["limit"] + u[0]["delivered"] + u[0]["rate_limited"], 300)
    eq(u[0]["date"], [2026, 10, 31])
    # the counts survive a power cut within the save bound (one minute)
    _advance(a, 60_000)
    b = _reboot(a, root)
    eq(b.usage.report()[0]["attempts"], 300)


@req("SR-023")
def test_a_refused_program_and_a_refused_bolus_are_logged_with_their_code():
    root, a = _programmed()
    bad = dict(_PROGRAM, rate_ug_per_day=5_000_000)
    r = _send(a, {"s": 300, "c": "program_set", "a": {"program": bad}}, "clinician")
    eq(r["ok"], False)
    r2 = _send(a, {"s": 301, "c": "bolus", "a": {"dose_ug": 600, "duration_min": 10}}, "clinician")
    eq(r2["ok"], False)
    recs = a.stores.log.read(0, 1000)
    refused = [x["data"] for x in recs if x["type"] == "refused"]
    eq({"cmd": "program_set", "code": r["e"]["code"]} in refused, True, repr(refused))
    eq({"cmd": "bolus", "code": r2["e"]["code"]} in refused, True, repr(refused))
    # a refused read is not worth a record
    _send(a, {"s": 302, "c": "log", "a": {"since": -1}}, "clinician")
    eq(len([x for x in a.stores.log.read(0, 1000) if x["type"] == "refused"]), 2)


@req("SR-048")
def test_the_clinicians_own_refusals_are_budgeted_in_the_event_log():
    # a buggy script with the key (T2) cannot flush the therapy records out with refusals either
    root, a = _programmed()
    log = a.stores.log
    n0 = log.last_seq()
    bad = dict(_PROGRAM, rate_ug_per_day=5_000_000)
    for i in range(30):
        eq(_send(a, {"s": 400 + i, "c": "program_set", "a": {"program": bad}}, "clinician")["ok"], False)
        _advance(a, 100)
    _advance(a, FLUSH_MS)
    recs = log.read(n0, 100)
    eq([r["type"] for r in recs], ["refused"] * BUDGET + ["refusals_counted"])
    eq(recs[-1]["data"]["n"], 30 - BUDGET)


@req("SR-046")
def test_a_heap_with_no_block_for_a_log_page_still_downloads_the_whole_log_in_smaller_pages():
    # The rp2 port after a RUN-pin reset: 65 KB free and no block for a 10-record page.
    root, a = _programmed()
    want = [r["seq"] for r in a.stores.log.read(0, 1000)]
    real = link.encode

    def fragmented(obj, mac=None):
        d = obj.get("d")
        if isinstance(d, dict) and len(d.get("records") or ()) > 2:
            raise MemoryError("memory allocation failed, allocating 1203 bytes")
        return real(obj, mac)

    link.encode = fragmented
    try:
        got, since, s = [], 0, 500
        while True:
            s += 1
            r = _send(a, {"s": s, "c": "log", "a": {"since": since}}, "clinician")
            eq(r["ok"], True, repr(r))
            recs = r["d"]["records"]
            if not recs:
                break
            got.extend(x["seq"] for x in recs)
            since = recs[-1]["seq"]
        st = _send(a, {"s": s + 1, "c": "status"}, "clinician")
    finally:
        link.encode = real
    eq(got, want[:len(got)], "in order, none twice")
    eq(got[-1] >= want[-1], True, "every record reached the host: %r of %r" % (got[-5:], want[-5:]))
    eq(st["ok"], True)
    eq(a.commands.log_page_bytes < 700, True, "the pages shrank: %d bytes" % a.commands.log_page_bytes)
