# Device side of programmer authentication (protocol v1; threat model in docs/security.md).
#
# An authenticated request BODY carries "r" (role), "n" (counter) and "d" (device id), and the
# frame carries MAC = HMAC-SHA256(key_of_role, BODY bytes exactly as sent). check() decides,
# from those alone, whether the command may run. It never touches therapy: it returns the role
# or raises AuthError, and the caller logs the outcome.
#
# State lives in ONE file, <root>/auth/auth.json: both keys, both counters and a CRC-32.
# Keys and counters share a file so that no crash can ever pair old keys with reset counters
# (which would make every frame ever captured valid again). The file is replaced atomically:
# written to auth.json.tmp, then renamed over the old one (POSIX rename and littlefs rename
# both replace atomically), so after a power cut the file holds the old state or the new one.
# The accepted counter is on flash BEFORE check() returns success: a reset opens no replay
# window. Cost: one small (~250 byte) file rewrite per accepted authenticated frame; refusals
# and unauthenticated reads write nothing, so a flood of bad frames cannot wear the flash.
#
# Nothing here sends a key anywhere: there is no API that returns key material.
import json
import os
from errno import ENOENT
from binascii import crc32, unhexlify

from services.hmac_sha256 import HmacKey, compare_hex, is_hex_mac

from core.base import const, Refusal

# --- refusal codes (the integrator puts them in the error reply) -------------------------
AUTH_REQUIRED = "AUTH_REQUIRED"            # command needs a MAC and a role; missing
AUTH_BAD_MAC = "AUTH_BAD_MAC"              # MAC malformed or does not verify
AUTH_REPLAY = "AUTH_REPLAY"                # counter not greater than the last accepted
AUTH_ROLE = "AUTH_ROLE"                    # unknown role, or role may not run this command
AUTH_DEVICE = "AUTH_DEVICE"                # frame is addressed to another device
AUTH_LOCKED = "AUTH_LOCKED"                # too many failures: authentication locked
AUTH_UNPROVISIONED = "AUTH_UNPROVISIONED"  # no keys (or auth state damaged)
AUTH_MALFORMED = "AUTH_MALFORMED"          # r/n/d of the wrong type or range; bad key data
AUTH_STORAGE = "AUTH_STORAGE"              # counter could not be saved: refused, not run

# --- roles ----------------------------------------------------------------------------------
ROLE_ANYONE = "anyone"
ROLE_PATIENT = "patient"
ROLE_CLINICIAN = "clinician"
ROLES = (ROLE_CLINICIAN, ROLE_PATIENT)  # roles that hold a key
_RANK = {ROLE_ANYONE: 0, ROLE_PATIENT: 1, ROLE_CLINICIAN: 2}

# THE role table: command name -> lowest role allowed to run it. Roles are ordered
# anyone < patient < clinician, so a role may run everything at or below its rank.
# Any command NOT listed needs the clinician (default deny: a command added later is
# clinician-only until someone decides otherwise here).
# Rationale per entry:
#   hello, identify  - who the device is: needed before keys are even chosen
#   status, alarms   - read-only; anyone near the pump should be able to see an alarm
#   drugs            - the built-in drug library: static, public reference data
#   patient_bolus    - the patient's own bolus; the device still applies the clinician's
#                      dose, lockout interval and daily count whoever asks
#   alarms_ack/pause - silencing is the patient's right at home (myPTM); it does not clear
#                      the cause, and latching/timed rules stay on the device
#   log, program_show - reading history and the running program: the patient's own
#                      therapy data, so not for anyone
# Everything that changes a program, a limit, the reservoir, the clock, calibration, keys, or
# that moves the motor (program_set, program_check, bolus, prime, bridge, stop, resume,
# refill, time_set, provision, alarms_test, ...) is clinician-only by not being listed.
COMMAND_MIN_ROLE = {
    "hello": ROLE_ANYONE,
    "identify": ROLE_ANYONE,
    "status": ROLE_ANYONE,
    "alarms": ROLE_ANYONE,
    "drugs": ROLE_ANYONE,
    "patient_bolus": ROLE_PATIENT,
    "alarms_ack": ROLE_PATIENT,
    "alarms_pause": ROLE_PATIENT,
    "log": ROLE_PATIENT,
    "program_show": ROLE_PATIENT,
    "history": ROLE_PATIENT,
}

# --- lockout --------------------------------------------------------------------------------
FAIL_LIMIT = const(5)          # this many counted failures ...
FAIL_WINDOW_MS = const(60000)  # ... within this window ...
LOCK_MS = const(300000)        # ... lock authentication this long
COUNTER_MAX = const(0x3FFFFFFF)  # 2**30 - 1: counters stay Pico small ints
_TICKS_PERIOD = const(0x40000000)  # time.ticks_ms() wraps at 2**30
_TICKS_HALF = const(0x20000000)
_KEY_BYTES = const(32)

_DIR = "auth"
_FILE = "auth.json"
_LOCKFILE = "locked"  # exists while a lockout is in force, so a reboot cannot lift it


class AuthError(Refusal):
    """A refused frame: .code one of the AUTH_* strings, .msg a sentence for the user.
    .lock_engaged is True on the one failure that started a lockout: raise the alarm then."""

    def __init__(self, code, msg, lock_engaged=False):
        super().__init__(code, msg)
        self.lock_engaged = lock_engaged


def min_role(cmd):
    """Lowest role that may run cmd: "anyone", "patient" or "clinician"."""
    if not isinstance(cmd, str):
        return ROLE_CLINICIAN
    return COMMAND_MIN_ROLE.get(cmd, ROLE_CLINICIAN)


def role_may(role, cmd):
    """True if role ("anyone", "patient", "clinician") may run cmd."""
    if not isinstance(role, str):
        return False
    r = _RANK.get(role)
    if r is None:
        return False
    return r >= _RANK[min_role(cmd)]


def _ticks_diff(a, b):
    # Same result as time.ticks_diff(a, b) for ticks_ms values (period 2**30), written out so
    # tests and CPython can drive it with plain integers.
    return ((a - b + _TICKS_HALF) & (_TICKS_PERIOD - 1)) - _TICKS_HALF


def _short(x):
    # repr of a value that came off the wire, cut so a refusal message stays small
    s = repr(x)
    if len(s) > 40:
        s = s[:37] + "..."
    return s


def _is_int(x):
    # bool is not an int here (MicroPython and CPython disagree about isinstance(True, int))
    return type(x) is int


def _valid_key_hex(k):
    return is_hex_mac(k)  # 32-byte keys are 64 lowercase hex chars, the same form as a MAC


def _join(a, b):
    if a.endswith("/"):
        return a + b
    return a + "/" + b


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _record_crc(keys, ctr):
    # CRC over a canonical rendering, independent of json.dumps key order/spacing
    s = "v1|%s|%s|%d|%d" % (keys[ROLE_CLINICIAN], keys[ROLE_PATIENT],
                           ctr[ROLE_CLINICIAN], ctr[ROLE_PATIENT])
    return crc32(s.encode()) & 0xFFFFFFFF


class Auth:
    """Authentication state of one device.

    Auth(root, device_id): root is the storage root (board.storage_root), device_id this
    device's id string (what identify reports; frames must carry it in "d").
    Constructing it reads <root>/auth/auth.json; a missing file means "never provisioned"
    (fresh flash), an unreadable or inconsistent one means "damaged": both refuse every
    authenticated command with AUTH_UNPROVISIONED, and a damaged state can only be replaced
    by provisioning with the physical act."""

    def __init__(self, root, device_id):
        if not isinstance(device_id, str) or not device_id:
            raise ValueError("device_id must be a non-empty str")
        self.device_id = device_id
        self._dir = _join(root, _DIR)
        self._path = _join(self._dir, _FILE)
        self._lockpath = _join(self._dir, _LOCKFILE)
        self._keys = None   # role -> HmacKey
        self._ctr = {ROLE_CLINICIAN: 0, ROLE_PATIENT: 0}
        self._hex = None    # role -> key hex, kept only to rewrite the file with new counters
        self.state = "none"  # "none" (never provisioned), "ok", "damaged"
        self.state_detail = ""
        self._fails = []    # ticks of recent counted failures (at most FAIL_LIMIT)
        self._lock_start = None
        self._lock_from_boot = False
        try:
            os.mkdir(self._dir)
        except OSError:
            pass  # exists already (or the root is unwritable: saving will say so later)
        _remove(self._path + ".tmp")  # a write cut short before its rename: never used
        self._load()
        if _exists(self._lockpath):
            # A lockout was in force when the device went down. ticks restart at boot, so the
            # full lock starts again at the first check: a reset can only lengthen a lock.
            self._lock_from_boot = True

    # --- persistence ---------------------------------------------------------------------
    def _load(self):
        try:
            with open(self._path) as f:
                text = f.read()
        except OSError as e:
            if e.args and e.args[0] == ENOENT:  # fresh flash
                self.state = "none"
                return
            self._damaged("auth file unreadable (%r)" % (e,))
            return
        try:
            d = json.loads(text)
            keys = d["keys"]
            ctr = d["ctr"]
            crc = d["crc"]
            for role in ROLES:
                if not _valid_key_hex(keys[role]):
                    raise ValueError("bad key for " + role)
                n = ctr[role]
                if not _is_int(n) or n < 0 or n > COUNTER_MAX:
                    raise ValueError("bad counter for " + role)
            if d.get("v") != 1 or crc != _record_crc(keys, ctr):
                raise ValueError("version or checksum mismatch")
        except Exception as e:  # any damage at all: refuse, never guess
            self._damaged("auth file damaged (%s)" % (e,))
            return
        self._install(keys, ctr)

    def _damaged(self, why):
        self.state = "damaged"
        self.state_detail = why
        self._keys = None
        self._hex = None

    def _install(self, keys_hex, ctr):
        self._hex = {ROLE_CLINICIAN: keys_hex[ROLE_CLINICIAN], ROLE_PATIENT: keys_hex[ROLE_PATIENT]}
        self._keys = {}
        for role in ROLES:
            self._keys[role] = HmacKey(unhexlify(keys_hex[role]))
        self._ctr = {ROLE_CLINICIAN: ctr[ROLE_CLINICIAN], ROLE_PATIENT: ctr[ROLE_PATIENT]}
        self.state = "ok"
        self.state_detail = ""

    def _save(self, keys_hex, ctr):
        rec = {"v": 1, "keys": keys_hex, "ctr": ctr, "crc": _record_crc(keys_hex, ctr)}
        _write_atomic(self._path, json.dumps(rec))

    # --- queries ---------------------------------------------------------------------------
    def is_provisioned(self):
        """True when keys are loaded and intact."""
        return self.state == "ok"

    def counters(self):
        """Last accepted counter per role, e.g. {"clinician": 12, "patient": 3}. Counters
        are not secret (every frame carries one); a host that lost its keystore counter can
        resume above these."""
        return {ROLE_CLINICIAN: self._ctr[ROLE_CLINICIAN], ROLE_PATIENT: self._ctr[ROLE_PATIENT]}

    def locked_ms(self, now_ms):
        """Milliseconds of lockout left at now_ms (0 if not locked)."""
        self._resolve_boot_lock(now_ms)
        if self._lock_start is None:
            return 0
        el = _ticks_diff(now_ms, self._lock_start)
        if 0 <= el < LOCK_MS:
            return LOCK_MS - el
        # expired (a negative elapsed means more than ~6 days without a check: expired too)
        self._lock_start = None
        _remove(self._lockpath)
        return 0

    def info(self, now_ms):
        """What identify/status may show: never any key material."""
        return {
            "provisioned": self.is_provisioned(),
            "auth_state": self.state,
            "locked_s": (self.locked_ms(now_ms) + 999) // 1000,
            "counters": self.counters(),
        }

    # --- the check -----------------------------------------------------------------------
    def check(self, cmd, body_bytes, req, mac_hex, now_ms):
        """Decide whether the request may run.

        cmd: the command name ("c"); body_bytes: the BODY exactly as received (bytes); req:
        the parsed BODY (dict); mac_hex: the MAC field (str) or None when the frame had none;
        now_ms: ticks_ms-style time for the lockout.
        Returns "anyone" (public command, no credentials), "patient" or "clinician".
        Raises AuthError otherwise. On success with a role, the new counter is already on
        flash when this returns."""
        if not isinstance(req, dict):
            raise AuthError(AUTH_MALFORMED, "request body must be a JSON object")
        if not isinstance(cmd, str):
            raise AuthError(AUTH_MALFORMED, "command name must be a string")
        has_role = "r" in req
        has_mac = mac_hex is not None
        if not has_role and not has_mac:
            if role_may(ROLE_ANYONE, cmd):
                return ROLE_ANYONE
            if self.state != "ok":
                raise AuthError(AUTH_UNPROVISIONED, self._unprov_msg(cmd))
            raise AuthError(AUTH_REQUIRED, "%s needs an authenticated frame (role %s)" % (_short(cmd), min_role(cmd)))
        if not has_mac:
            raise AuthError(AUTH_REQUIRED, "role given but the frame carries no MAC")
        if not has_role:
            raise AuthError(AUTH_REQUIRED, "MAC given but the body has no role \"r\"")

        left = self.locked_ms(now_ms)
        if left:
            raise AuthError(AUTH_LOCKED, "authentication locked after repeated failures; %d s left" % ((left + 999) // 1000))
        if self.state != "ok":
            raise AuthError(AUTH_UNPROVISIONED, self._unprov_msg(cmd))

        role = req["r"]
        n = req.get("n")
        dev = req.get("d")
        if role not in ROLES:
            self._fail(now_ms, AUTH_ROLE, "unknown role %s (clinician or patient)" % _short(role))
        if not _is_int(n) or n < 1 or n > COUNTER_MAX:
            self._fail(now_ms, AUTH_MALFORMED, "counter \"n\" must be an integer 1..%d" % COUNTER_MAX)
        if not isinstance(dev, str):
            self._fail(now_ms, AUTH_MALFORMED, "device id \"d\" must be a string")
        if not is_hex_mac(mac_hex):
            self._fail(now_ms, AUTH_BAD_MAC, "MAC must be 64 lowercase hex characters")
        if dev != self.device_id:
            # d is inside the MAC, so this is either a frame for another pump or a forgery
            self._fail(now_ms, AUTH_DEVICE, "frame is for device %s, this is %r" % (_short(dev), self.device_id))
        if isinstance(body_bytes, str):
            body_bytes = body_bytes.encode()
        if not compare_hex(self._keys[role].hexdigest(body_bytes), mac_hex):
            self._fail(now_ms, AUTH_BAD_MAC, "MAC does not verify for role %s" % role)
        last = self._ctr[role]
        if n <= last:
            self._fail(now_ms, AUTH_REPLAY, "counter %d not above the last accepted %d for %s (replay?)" % (n, last, role))
        if not role_may(role, cmd):
            self._fail(now_ms, AUTH_ROLE, "role %s may not run %s (needs %s)" % (role, _short(cmd), min_role(cmd)))

        # Accept: the counter goes to flash first; only then does the command run.
        ctr = self.counters()
        ctr[role] = n
        try:
            self._save(self._hex, ctr)
        except OSError as e:
            raise AuthError(AUTH_STORAGE, "could not save the counter (%r); command not run" % (e,))
        self._ctr = ctr
        return role

    def _unprov_msg(self, cmd):
        if self.state == "damaged":
            return "authentication state damaged (%s): re-provision with the physical act" % self.state_detail
        return "device has no keys yet: provision it before %s" % _short(cmd)

    def _fail(self, now_ms, code, message):
        # Count a failure of a frame that claimed credentials; FAIL_LIMIT inside
        # FAIL_WINDOW_MS starts a lockout (and that one failure says so).
        kept = []
        for t in self._fails:
            el = _ticks_diff(now_ms, t)
            if 0 <= el < FAIL_WINDOW_MS:
                kept.append(t)
        kept.append(now_ms)
        if len(kept) > FAIL_LIMIT:
            kept = kept[-FAIL_LIMIT:]
        self._fails = kept
        if len(kept) >= FAIL_LIMIT:
            self._fails = []
            self._lock_start = now_ms
            try:
                _write_atomic(self._lockpath, "1")
            except OSError:
                pass  # the lock still holds until reset; nothing else to do
            raise AuthError(code, message + "; %d failures within %d s: authentication locked for %d s"
                            % (FAIL_LIMIT, FAIL_WINDOW_MS // 1000, LOCK_MS // 1000), True)
        raise AuthError(code, message)

    def _resolve_boot_lock(self, now_ms):
        if self._lock_from_boot:
            self._lock_from_boot = False
            self._lock_start = now_ms

    # --- provisioning ----------------------------------------------------------------------
    def authorise_provision(self, body_bytes, req, mac_hex, now_ms):
        """What a "provision" request may pass to provision() as `authorised`: None for an
        unsigned request to a device that never had keys, "clinician" for a frame that check()
        accepts as clinician (its counter is consumed). Raises AuthError like check()
        otherwise (e.g. AUTH_REQUIRED unsigned on a provisioned device, AUTH_ROLE for the
        patient key, AUTH_UNPROVISIONED on a damaged state: that needs the physical act)."""
        if self.state == "none" and mac_hex is None and isinstance(req, dict) and "r" not in req:
            return None
        return self.check("provision", body_bytes, req, mac_hex, now_ms)

    def provision(self, new_keys, authorised):
        """Install new keys and reset both counters to 0 (old frames were signed with the old
        keys, so no capture becomes valid again).

        new_keys: {"clinician": 64 hex, "patient": 64 hex}, two different non-zero 32-byte keys.
        authorised: how this was allowed:
          None         - only accepted on a device never provisioned (fresh flash / erase);
          "clinician"  - the request came in a frame that check() accepted as clinician
                         (only for a device whose keys are intact);
          "physical"   - the physical act (bolus button held at boot): always accepted, and
                         the only way out of a damaged state. Clears a lockout.
        Raises AuthError(AUTH_REQUIRED, ...) when not allowed, AuthError(AUTH_MALFORMED, ...)
        for bad key data, AuthError(AUTH_STORAGE, ...) if the file could not be written; in
        every refusal nothing changes."""
        if authorised not in (None, ROLE_CLINICIAN, "physical"):
            raise AuthError(AUTH_MALFORMED, "authorised must be None, 'clinician' or 'physical'")
        if authorised is None and self.state != "none":
            raise AuthError(AUTH_REQUIRED, "device already has keys: re-provisioning needs the clinician key or the physical act")
        if authorised == ROLE_CLINICIAN and self.state != "ok":
            raise AuthError(AUTH_REQUIRED, "authentication state damaged: re-provisioning needs the physical act")
        if not isinstance(new_keys, dict):
            raise AuthError(AUTH_MALFORMED, "keys must be an object {clinician, patient}")
        for k in new_keys:
            if k not in ROLES:
                raise AuthError(AUTH_MALFORMED, "unknown key role %s" % _short(k))
        keys_hex = {}
        for role in ROLES:
            k = new_keys.get(role)
            if not _valid_key_hex(k):
                raise AuthError(AUTH_MALFORMED, "key for %s must be 64 lowercase hex characters (32 bytes)" % role)
            if k == "0" * 64:
                raise AuthError(AUTH_MALFORMED, "key for %s is all zeros" % role)
            keys_hex[role] = k
        if keys_hex[ROLE_CLINICIAN] == keys_hex[ROLE_PATIENT]:
            raise AuthError(AUTH_MALFORMED, "clinician and patient keys must differ")
        ctr = {ROLE_CLINICIAN: 0, ROLE_PATIENT: 0}
        try:
            self._save(keys_hex, ctr)
        except OSError as e:
            raise AuthError(AUTH_STORAGE, "could not save the keys (%r); nothing changed" % (e,))
        self._install(keys_hex, ctr)
        if authorised == "physical":
            self._lock_start = None
            self._lock_from_boot = False
            self._fails = []
            _remove(self._lockpath)
