# services/auth.py (and auth_roles.py, auth_store.py) on the real interpreter, on littlefs in RAM
# (the Pico's filesystem):
# every refusal code, counters across a reboot (a re-created Auth), the failure alarm (no lockout)
# and the patient budget driven by now_ms, the role table, provisioning rules, and power cuts during a counter save.
import json
import vfs
from mptest import req, eq, raises
from sim.blockdev import BlockDev, PowerCut, mount_lfs
import services.auth_store as auth_store_mod
from core.base import Refusal
from services.auth import (Auth, AuthError, role_may, min_role, COMMAND_MIN_ROLE,
                           FAIL_WINDOW_MS, FAIL_LIMIT, QUIET_MS, PATIENT_FRAMES, PATIENT_WINDOW_MS)
from services.hmac_sha256 import HmacKey

MP = "/authfs"
DEV = "sim-0001"
KEYS = {"clinician": "11" * 32, "patient": "22" * 32}
_MAC = {}


def _fresh():
    d = BlockDev(block_count=32)
    mount_lfs(d, MP)
    return d


def _provisioned():
    dev = _fresh()
    a = Auth(MP, DEV)
    a.provision(KEYS, None)
    return dev, a


def _frame(cmd, role, n, d=DEV, key_role=None, keys=KEYS, extra=None):
    """(body bytes, parsed req, mac) as the integrator would hand them to check()."""
    obj = {"s": n, "c": cmd, "r": role, "n": n, "d": d}
    if extra:
        obj.update(extra)
    body = json.dumps(obj).encode()
    kr = key_role or role
    k = _MAC.get(keys[kr])
    if k is None:
        k = _MAC[keys[kr]] = HmacKey(bytes.fromhex(keys[kr]) if hasattr(bytes, "fromhex") else _unhex(keys[kr]))
    return body, json.loads(body), k.hexdigest(body)


def _unhex(s):
    from binascii import unhexlify
    return unhexlify(s)


def _check(a, cmd, role, n, now=1000, **kw):
    body, r, mac = _frame(cmd, role, n, **kw)
    return a.check(cmd, body, r, mac, now)


_T = [0]


def _later():
    # 15 s apart: never 5 failures inside one 60 s window, so tests of single refusals
    # are not turned into lockouts
    _T[0] += FAIL_WINDOW_MS // 4
    return _T[0]


def _code(fn, *args, **kw):
    e = raises(AuthError, fn, *args, **kw)
    return e.code


def _file():
    with open(MP + "/auth/auth.json") as f:
        return f.read()


# --- public commands and missing credentials -------------------------------------------------

@req("SR-042")
def test_public_commands_need_no_credentials_even_unprovisioned():
    _fresh()
    a = Auth(MP, DEV)
    eq(a.is_provisioned(), False)
    for cmd in ("hello", "identify", "status", "alarms", "drugs"):
        eq(a.check(cmd, b"{}", {"s": 1, "c": cmd}, None, 0), "anyone")


@req("SR-040")
def test_unprovisioned_refuses_therapy_commands():
    _fresh()
    a = Auth(MP, DEV)
    eq(_code(a.check, "program_continuous", b"{}", {"c": "program_continuous"}, None, 0), "AUTH_UNPROVISIONED")
    # even with a well-formed frame: there is no key to check it against
    body, r, mac = _frame("stop", "clinician", 1)
    eq(_code(a.check, "stop", body, r, mac, 0), "AUTH_UNPROVISIONED")


@req("SR-040")
def test_auth_required_without_mac_or_role():
    _, a = _provisioned()
    eq(_code(a.check, "stop", b'{"c":"stop"}', {"c": "stop"}, None, 0), "AUTH_REQUIRED")
    eq(_code(a.check, "patient_bolus", b"{}", {"c": "patient_bolus"}, None, 0), "AUTH_REQUIRED")
    body, r, mac = _frame("stop", "clinician", 1)
    eq(_code(a.check, "stop", body, r, None, 0), "AUTH_REQUIRED")  # role, no MAC
    del r["r"]
    eq(_code(a.check, "stop", body, r, mac, 0), "AUTH_REQUIRED")  # MAC, no role
    eq(a.counters(), {"clinician": 0, "patient": 0})


# --- MAC, device, counter, role ---------------------------------------------------------------

@req("SR-040")
def test_accepts_good_frames_and_returns_role():
    _, a = _provisioned()
    eq(_check(a, "program_continuous", "clinician", 1), "clinician")
    eq(_check(a, "patient_bolus", "patient", 1), "patient")
    eq(_check(a, "status", "patient", 2), "patient")  # credentials on a public command are checked too
    eq(a.counters(), {"clinician": 1, "patient": 2})


@req("SR-040")
def test_bad_mac_refused():
    _, a = _provisioned()
    body, r, mac = _frame("stop", "clinician", 1)
    eq(_code(a.check, "stop", body, r, "0" * 64, _later()), "AUTH_BAD_MAC")
    eq(_code(a.check, "stop", body, r, mac.upper(), _later()), "AUTH_BAD_MAC")   # only lowercase hex
    eq(_code(a.check, "stop", body, r, mac[:63], _later()), "AUTH_BAD_MAC")
    eq(_code(a.check, "stop", body, r, 12345, _later()), "AUTH_BAD_MAC")
    # body changed after signing (e.g. a rate edited in transit)
    eq(_code(a.check, "stop", body + b" ", r, mac, _later()), "AUTH_BAD_MAC")
    # clinician command signed with the patient key but claiming clinician
    body, r, mac = _frame("stop", "clinician", 1, key_role="patient")
    eq(_code(a.check, "stop", body, r, mac, _later()), "AUTH_BAD_MAC")
    eq(a.counters(), {"clinician": 0, "patient": 0})


@req("SR-040")
def test_other_keys_refused():
    _, a = _provisioned()
    other = {"clinician": "33" * 32, "patient": "44" * 32}
    body, r, mac = _frame("stop", "clinician", 1, keys=other)
    e = raises(AuthError, a.check, "stop", body, r, mac, 0)
    eq(e.code, "AUTH_BAD_MAC")


def test_wrong_device_refused():
    _, a = _provisioned()
    body, r, mac = _frame("stop", "clinician", 1, d="sim-0002")
    e = raises(AuthError, a.check, "stop", body, r, mac, 0)
    eq(e.code, "AUTH_DEVICE")
    eq("sim-0002" in e.msg and DEV in e.msg, True)


@req("SR-041")
def test_replay_refused():
    _, a = _provisioned()
    body, r, mac = _frame("patient_bolus", "patient", 5)
    eq(a.check("patient_bolus", body, r, mac, 0), "patient")
    e = raises(AuthError, a.check, "patient_bolus", body, r, mac, 10)  # the same capture again
    eq(e.code, "AUTH_REPLAY")
    eq("last accepted 5" in e.msg, True)
    eq(_code(_check, a, "patient_bolus", "patient", 4), "AUTH_REPLAY")  # older
    eq(_check(a, "patient_bolus", "patient", 6), "patient")
    # counters are per role: clinician 1 is still fresh
    eq(_check(a, "stop", "clinician", 1), "clinician")


@req("SR-041")
def test_counter_survives_reboot():
    _, a = _provisioned()
    body, r, mac = _frame("bolus", "clinician", 7)
    eq(a.check("bolus", body, r, mac, 0), "clinician")
    b = Auth(MP, DEV)  # reboot: everything re-read from flash
    eq(b.is_provisioned(), True)
    eq(b.counters(), {"clinician": 7, "patient": 0})
    eq(_code(b.check, "bolus", body, r, mac, 0), "AUTH_REPLAY")
    eq(_code(_check, b, "bolus", "clinician", 7), "AUTH_REPLAY")
    eq(_check(b, "bolus", "clinician", 8), "clinician")


@req("SR-041")
def test_counter_is_on_flash_when_check_returns():
    _, a = _provisioned()
    _check(a, "stop", "clinician", 42)
    d = json.loads(_file())
    eq(d["ctr"], {"clinician": 42, "patient": 0})


@req("SR-042")
def test_patient_may_not_change_therapy():
    _, a = _provisioned()
    for cmd in ("program_continuous", "program_set", "program_check", "bolus", "prime", "bridge",
                "stop", "resume", "refill", "time_set", "time_sync", "provision", "alarms_test", "calibrate", "future_command"):
        eq(_code(_check, a, cmd, "patient", 1, _later()), "AUTH_ROLE", cmd)
    eq(a.counters()["patient"], 0)  # refusals consume no counter
    eq(_check(a, "patient_bolus", "patient", 1), "patient")


def test_unknown_role_refused():
    _, a = _provisioned()
    body, r, mac = _frame("stop", "clinician", 1)
    r["r"] = "admin"
    eq(_code(a.check, "stop", body, r, mac, 0), "AUTH_ROLE")


def test_malformed_auth_fields():
    _, a = _provisioned()
    for n in (0, -1, 2 ** 30, True, "5", 1.5, None):
        body, r, mac = _frame("stop", "clinician", 1)
        r["n"] = n
        eq(_code(a.check, "stop", body, r, mac, _later()), "AUTH_MALFORMED", repr(n))
    body, r, mac = _frame("stop", "clinician", 1)
    r["d"] = 5
    eq(_code(a.check, "stop", body, r, mac, 0), "AUTH_MALFORMED")
    eq(_code(a.check, "stop", body, [1], mac, 0), "AUTH_MALFORMED")


def test_wire_values_of_any_type_are_refused_not_crashed():
    _, a = _provisioned()
    body, r, mac = _frame("stop", "clinician", 1)
    eq(_code(a.check, ["stop"], body, r, mac, _later()), "AUTH_MALFORMED")
    eq(_code(a.check, None, b"{}", {}, None, _later()), "AUTH_MALFORMED")
    for role in (["clinician"], {"x": 1}, None, 5):
        r["r"] = role
        eq(_code(a.check, "stop", body, r, mac, _later()), "AUTH_ROLE", repr(role))
    eq(role_may(["patient"], "status"), False)
    eq(min_role({"c": 1}), "clinician")
    # an absurd device id is refused and the message stays short
    body, r, mac = _frame("stop", "clinician", 1, d="x" * 5000)
    e = raises(AuthError, a.check, "stop", body, r, mac, _later())
    eq(e.code, "AUTH_DEVICE")
    eq(len(e.msg) < 120, True, e.msg)
    eq(_check(a, "stop", "clinician", 1, _later()), "clinician")


def test_error_carries_msg_for_the_dispatcher():
    _, a = _provisioned()
    e = raises(AuthError, a.check, "stop", b"{}", {"c": "stop"}, None, 0)
    eq(isinstance(e, Refusal), True, "the dispatcher replies with any Refusal's code and msg")
    eq(e.msg.startswith("'stop' needs an authenticated frame"), True, e.msg)


def test_largest_counter_then_exhausted():
    _, a = _provisioned()
    eq(_check(a, "stop", "clinician", 2 ** 30 - 1), "clinician")
    eq(_code(_check, a, "stop", "clinician", 2 ** 30 - 1), "AUTH_REPLAY")


def test_refusals_write_nothing():
    _, a = _provisioned()
    _check(a, "stop", "clinician", 3)
    before = _file()
    for fn in (lambda: _check(a, "stop", "clinician", 3),
               lambda: _check(a, "stop", "patient", 9),
               lambda: _check(a, "stop", "clinician", 9, d="x")):
        raises(AuthError, fn)
    eq(_file(), before)


# --- role table -------------------------------------------------------------------------------

@req("SR-042")
def test_role_table():
    for cmd in ("hello", "identify", "status", "alarms", "drugs"):
        eq(min_role(cmd), "anyone", cmd)
    for cmd in ("patient_bolus", "alarms_ack", "alarms_pause", "log", "program_show"):
        eq(min_role(cmd), "patient", cmd)
        eq(role_may("anyone", cmd), False, cmd)
        eq(role_may("patient", cmd), True, cmd)
    eq(min_role("program_continuous"), "clinician")
    eq(min_role("anything_not_listed"), "clinician")
    for cmd in list(COMMAND_MIN_ROLE) + ["stop", "provision", "x"]:
        eq(role_may("clinician", cmd), True, cmd)
    eq(role_may("admin", "status"), False)
    eq(role_may(None, "status"), False)


# --- lockout ---------------------------------------------------------------------------------

def _bad(a, now):
    body, r, mac = _frame("stop", "clinician", 1)
    return raises(AuthError, a.check, "stop", body, r, "0" * 64, now)


@req("SR-043")
def test_failures_raise_the_alarm_and_never_refuse_a_valid_mac():
    _, a = _provisioned()
    t = 10000
    for i in range(FAIL_LIMIT - 1):
        e = _bad(a, t + i * 1000)
        eq((e.code, e.alarm, e.counted), ("AUTH_BAD_MAC", False, True))
    e = _bad(a, t + 4000)
    eq((e.code, e.alarm), ("AUTH_BAD_MAC", True))  # the fifth within a minute: raise AUTH_FAILURES
    t0 = t + 4000
    eq(a.under_attack(t0), True)
    f = a.info(t0)["failures"]
    eq((f["recent"], f["since_boot"], f["alarm_cause"]), (FAIL_LIMIT, FAIL_LIMIT, True))
    # the key holder's frame is honoured at once: there is no lockout to wait out (issue 16)
    eq(_check(a, "stop", "clinician", 1, t0 + 1), "clinician")
    eq(a.counters()["clinician"], 1)
    # a hundred more bad frames change nothing for the key holder either
    for i in range(100):
        _bad(a, t0 + 10 + i)
    eq(_check(a, "stop", "clinician", 2, t0 + 200), "clinician")
    eq(a.check("status", b"{}", {"c": "status"}, None, t0 + 300), "anyone")
    # the alarm's cause holds until QUIET_MS without a failure
    eq(a.under_attack(t0 + 109 + QUIET_MS - 1), True)
    eq(a.under_attack(t0 + 109 + QUIET_MS), False)


@req("SR-043")
def test_failures_outside_window_do_not_alarm():
    _, a = _provisioned()
    t = 0
    for i in range(12):  # one failure every 15 s: never 5 within 60 s
        e = _bad(a, t + i * (FAIL_WINDOW_MS // 4))
        eq(e.alarm, False, "failure %d" % i)
    eq(a.info(12 * FAIL_WINDOW_MS // 4)["failures"]["since_boot"], 12)


@req("SR-043")
def test_every_claimed_failure_kind_counts_toward_the_alarm():
    _, a = _provisioned()
    _check(a, "stop", "clinician", 5)
    codes = []
    for fn in (lambda: _check(a, "stop", "clinician", 5, 100),        # replay
               lambda: _check(a, "stop", "patient", 1, 200),          # role
               lambda: _check(a, "stop", "clinician", 6, 300, d="x"),  # device
               lambda: _bad(a, 400) and None,                          # bad mac
               lambda: _check(a, "stop", "clinician", 7, 500, d="y")):
        try:
            fn()
        except AuthError as e:
            codes.append((e.code, e.alarm))
    eq(codes[:3], [("AUTH_REPLAY", False), ("AUTH_ROLE", False), ("AUTH_DEVICE", False)])
    eq(codes[-1], ("AUTH_DEVICE", True))


@req("SR-043")
def test_missing_credentials_do_not_count():
    _, a = _provisioned()
    for i in range(10):
        e = raises(AuthError, a.check, "stop", b"{}", {"c": "stop"}, None, i)
        eq((e.code, e.alarm, e.counted), ("AUTH_REQUIRED", False, False))
    eq(a.under_attack(10), False)


@req("SR-043")
def test_no_lock_after_a_reboot():
    _, a = _provisioned()
    for i in range(5):
        _bad(a, 1000 + i)
    b = Auth(MP, DEV)  # reset right after the failures: nothing is locked, before or after
    eq(_check(b, "stop", "clinician", 1, 50), "clinician")


def test_legacy_lock_marker_is_cleared():
    # Firmware before issue 16 left a lock marker on flash during a lockout.
    _, a = _provisioned()
    a._store.mark_locked()
    eq(a._store.lock_marked(), True)
    b = Auth(MP, DEV)
    eq(b._store.lock_marked(), False)
    eq(_check(b, "stop", "clinician", 1, 0), "clinician")


@req("SR-043")
def test_failure_window_across_ticks_wrap():
    _, a = _provisioned()
    top = 2 ** 30
    alarms = []
    for i in range(5):
        alarms.append(_bad(a, (top - 3000 + i * 1000) % top).alarm)  # wraps after the third
    eq(alarms, [False, False, False, False, True])
    eq(a.under_attack(2000), True)
    eq(_check(a, "stop", "clinician", 1, 2000), "clinician")


@req("SR-050")
def test_patient_frames_are_capped_before_any_write():
    _, a = _provisioned()
    t = 5000
    for i in range(PATIENT_FRAMES):
        eq(_check(a, "patient_bolus", "patient", i + 1, t + i), "patient")
    before = _file()
    e = raises(AuthError, _check, a, "patient_bolus", "patient", PATIENT_FRAMES + 1, t + 100)
    eq(e.code, "RATE_LIMITED")
    eq("a minute" in e.msg and "try again in 60 s" in e.msg, True, e.msg)
    eq(_file(), before)  # nothing written: a flood of valid patient frames costs no flash
    eq(a.info(t + 100)["failures"]["rate_limited"], 1)
    # the refused frame cannot be replayed while the pump runs
    eq(_code(_check, a, "patient_bolus", "patient", PATIENT_FRAMES + 1, t + PATIENT_WINDOW_MS + 10), "AUTH_REPLAY")
    # a minute after the first, the patient is served again; the clinician never waited
    eq(_check(a, "stop", "clinician", 1, t + 101), "clinician")
    eq(_check(a, "patient_bolus", "patient", PATIENT_FRAMES + 2, t + PATIENT_WINDOW_MS), "patient")


@req("SR-042")
def test_patient_role_refusal_names_what_in_words():
    _, a = _provisioned()
    e = raises(AuthError, _check, a, "program_check", "patient", 1)
    eq(e.code, "AUTH_ROLE")
    eq(e.msg, "the patient key may not check a program: that needs the clinician key")


# --- provisioning ------------------------------------------------------------------------------

def test_provision_rules():
    _, a = _provisioned()
    eq(a.is_provisioned(), True)
    new = {"clinician": "55" * 32, "patient": "66" * 32}
    eq(_code(a.provision, new, None), "AUTH_REQUIRED")  # already provisioned: not without authority
    eq(_code(a.provision, new, "patient"), "AUTH_MALFORMED")
    _check(a, "stop", "clinician", 9)
    a.provision(new, "clinician")
    eq(a.counters(), {"clinician": 0, "patient": 0})
    # old keys are dead, new keys work from counter 1
    eq(_code(_check, a, "stop", "clinician", 10), "AUTH_BAD_MAC")
    eq(_check(a, "stop", "clinician", 1, keys=new), "clinician")
    b = Auth(MP, DEV)
    eq(b.counters(), {"clinician": 1, "patient": 0})


def test_authorise_provision():
    _fresh()
    a = Auth(MP, DEV)
    eq(a.authorise_provision(b"{}", {"c": "provision"}, None, 0), None)  # fresh: unsigned is fine
    a.provision(KEYS, a.authorise_provision(b"{}", {"c": "provision"}, None, 0))
    eq(_code(a.authorise_provision, b"{}", {"c": "provision"}, None, 0), "AUTH_REQUIRED")
    body, r, mac = _frame("provision", "patient", 1)
    eq(_code(a.authorise_provision, body, r, mac, _later()), "AUTH_ROLE")
    body, r, mac = _frame("provision", "clinician", 1)
    eq(a.authorise_provision(body, r, mac, _later()), "clinician")
    eq(_code(a.authorise_provision, body, r, mac, _later()), "AUTH_REPLAY")  # a captured provision frame


def test_provision_rejects_bad_keys_and_changes_nothing():
    _, a = _provisioned()
    before = _file()
    for bad in ({"clinician": "11" * 32},
                {"clinician": "aa" * 32, "patient": "aa" * 32},
                {"clinician": "AA" * 32, "patient": "bb" * 32},
                {"clinician": "aa" * 31, "patient": "bb" * 32},
                {"clinician": "00" * 32, "patient": "bb" * 32},
                {"clinician": "aa" * 32, "patient": "bb" * 32, "admin": "cc" * 32},
                "aa" * 32, None):
        eq(_code(a.provision, bad, "physical"), "AUTH_MALFORMED", repr(bad))
    eq(_file(), before)
    eq(_check(a, "stop", "clinician", 1), "clinician")


def test_physical_provision_forgets_failures():
    _, a = _provisioned()
    for i in range(5):
        _bad(a, i)
    eq(a.under_attack(10), True)
    new = {"clinician": "77" * 32, "patient": "88" * 32}
    a.provision(new, "physical")
    eq(a.under_attack(11), False)
    eq(_check(a, "stop", "clinician", 1, 12, keys=new), "clinician")


def test_damaged_state_refuses_and_needs_physical_act():
    _provisioned()
    with open(MP + "/auth/auth.json", "w") as f:
        f.write('{"v": 1, "keys": {"clinician": "' + "11" * 32 + '", "patient": "' + "22" * 32
                + '"}, "ctr": {"clinician": 0, "patient": 0}, "crc": 1}')  # counters reset, CRC wrong
    a = Auth(MP, DEV)
    eq(a.state, "damaged")
    eq(a.is_provisioned(), False)
    e = raises(AuthError, _check, a, "stop", "clinician", 1)
    eq(e.code, "AUTH_UNPROVISIONED")
    eq("damaged" in e.msg, True)
    eq(_code(a.provision, KEYS, None), "AUTH_REQUIRED")
    eq(_code(a.provision, KEYS, "clinician"), "AUTH_REQUIRED")
    a.provision({"clinician": "99" * 32, "patient": "88" * 32}, "physical")
    eq(a.is_provisioned(), True)
    for junk in ("", "{", "[]", '{"v":1}', "null"):
        with open(MP + "/auth/auth.json", "w") as f:
            f.write(junk)
        eq(Auth(MP, DEV).state, "damaged", junk)


def test_leftover_temp_file_is_ignored():
    _provisioned()
    with open(MP + "/auth/auth.json.tmp", "w") as f:
        f.write("half a fi")
    a = Auth(MP, DEV)
    eq(a.is_provisioned(), True)
    eq(_check(a, "stop", "clinician", 1), "clinician")


@req("SR-044")
def test_info_has_no_key_material():
    _, a = _provisioned()
    _check(a, "stop", "clinician", 3)
    info = a.info(0)
    eq(info, {"provisioned": True, "auth_state": "ok", "counters": {"clinician": 3, "patient": 0},
              "failures": {"recent": 0, "since_boot": 0, "rate_limited": 0, "alarm_cause": False}})
    s = repr(info) + repr(a.counters())
    for k in KEYS.values():
        eq(k[:8] in s, False)


def test_storage_failure_refuses_command():
    _, a = _provisioned()
    real = auth_store_mod.write_atomic

    def full(path, text):
        raise OSError(28)

    auth_store_mod.write_atomic = full
    try:
        e = raises(AuthError, _check, a, "stop", "clinician", 1)
    finally:
        auth_store_mod.write_atomic = real
    eq(e.code, "AUTH_STORAGE")
    eq(a.counters()["clinician"], 0)
    eq(_check(a, "stop", "clinician", 1), "clinician")


@req("SR-041")
def test_power_cut_during_counter_save():
    # Cut power at every flash operation of an accepted check, intact and torn. After each
    # power-on the state is intact and holds the old counter (the command never ran) or the
    # new one; it never goes back below a counter that was acknowledged before.
    dev, a = _provisioned()
    _check(a, "stop", "clinician", 4)
    vfs.umount(MP)
    snap = dev.image()
    cuts = 0
    for torn in (False, True):
        k = 1
        while True:
            dev = dev.reboot()
            dev.restore(snap)
            eq(mount_lfs(dev, MP), False)
            a = Auth(MP, DEV)
            dev.fail_at(k, torn=torn)
            try:
                dev.run(_check, a, "stop", "clinician", 5)
                done = True
            except PowerCut:
                done = False
            if done:
                dev.disarm()
                eq(Auth(MP, DEV).counters()["clinician"], 5)
                break
            cuts += 1
            dev = dev.reboot()
            eq(mount_lfs(dev, MP), False)
            b = Auth(MP, DEV)
            eq(b.state, "ok", "cut at op %d torn=%s" % (k, torn))
            c = b.counters()["clinician"]
            eq(c in (4, 5), True, "counter %d after cut %d" % (c, k))
            eq(_code(_check, b, "stop", "clinician", 4), "AUTH_REPLAY")
            k += 1
    vfs.umount(MP)
    eq(cuts > 0, True)


@req("SR-045")
def test_random_requests_only_ever_raise_autherror():
    # Unit-level fuzz of check(): random values in every field, random MACs and bodies.
    # Nothing but AuthError may come out, no refusal may change the stored state, and a
    # valid frame is still accepted afterwards. Deterministic: the seed is in the message.
    seed = 12345
    _, a = _provisioned()
    before = _file()
    values = [None, True, False, 0, -1, 1, 2 ** 30, 2 ** 100, -2 ** 64, 1.5, float("inf"),
              "", "clinician", "patient", "anyone", DEV, "x" * 300, [], [1], {}, {"r": 1},
              "0" * 64, "f" * 64, "\x00", "\u00e9"]
    cmds = ["stop", "status", "patient_bolus", "provision", "", None, 7, ["c"]]
    rnd = [seed]

    def r(n):
        # LCG, taking high bits (the low bits of an LCG cycle quickly)
        rnd[0] = (rnd[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (rnd[0] >> 12) % n

    accepted = 0
    for i in range(2000):
        req = {}
        for key in ("r", "n", "d", "c", "a"):
            if r(3):
                req[key] = values[r(len(values))]
        mac = values[r(len(values))] if r(2) else None
        cmd = cmds[r(len(cmds))]
        body = json.dumps(req).encode() if r(2) else bytes([r(256)]) * r(64)
        try:
            role = a.check(cmd, body, req, mac, i * (FAIL_WINDOW_MS // 4))
            eq(role, "anyone", "seed %d iteration %d: %r %r" % (seed, i, cmd, req))
            accepted += 1
        except AuthError:
            pass
    eq(_file(), before, "seed %d: refusals changed the stored state" % seed)
    eq(accepted > 0, True)
    eq(_check(a, "stop", "clinician", 1, 2000 * (FAIL_WINDOW_MS // 4)), "clinician")
