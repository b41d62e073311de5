# Device side of programmer authentication (protocol v1; threat model in docs/security.md).
#
# An authenticated request BODY carries "r" (role), "n" (counter) and "d" (the device id: in a
# request body "d" names the device; in a reply it is the data, docs/protocol.md), and the frame
# carries MAC = HMAC-SHA256(key_of_role, BODY bytes exactly as sent). check() decides, from those
# alone, whether the command may run. It never touches therapy: it returns the role or raises
# AuthError, and the caller logs the outcome.
#
# Who may run what is services/auth_roles.py; what is kept on flash is services/auth_store.py.
# The accepted counter is on flash BEFORE check() returns success: a reset opens no replay
# window. Cost: one small (~250 byte) file rewrite per accepted authenticated frame; refusals
# and unauthenticated reads write nothing here, so a flood of bad frames cannot wear the flash
# (what the refusals' log may write is bounded by services/refusals.py).
#
# No lockout (issue 16): a 256-bit key cannot be guessed, so locking out after failures
# protected nothing and let anyone without the key lock the key holder out. A valid MAC is
# always honoured. Failures are counted: FAIL_LIMIT of them within FAIL_WINDOW_MS raise the
# AUTH_FAILURES alarm (check() says so in AuthError.alarm) so a person learns that someone
# without the key is at the port. What the patient key may write is capped instead
# (PATIENT_FRAMES per minute), since that key sits on a handheld outside the clinic.
#
# Nothing here sends a key anywhere: there is no API that returns key material.
from binascii import unhexlify

from core.base import const, Refusal
from services.hmac_sha256 import HmacKey, compare_hex, is_hex_mac
from services.auth_store import AuthStore, COUNTER_MAX, is_key_hex
# The role names and the table are imported from here by the dispatcher and the tests.
from services.auth_roles import (ROLE_ANYONE, ROLE_PATIENT, ROLE_CLINICIAN, ROLES,  # noqa: F401
                                 COMMAND_MIN_ROLE, min_role, role_may, what)

# --- refusal codes (the integrator puts them in the error reply) -------------------------
AUTH_REQUIRED = "AUTH_REQUIRED"            # command needs a MAC and a role; missing
AUTH_BAD_MAC = "AUTH_BAD_MAC"              # MAC malformed or does not verify
AUTH_REPLAY = "AUTH_REPLAY"                # counter not greater than the last accepted
AUTH_ROLE = "AUTH_ROLE"                    # unknown role, or role may not run this command
AUTH_DEVICE = "AUTH_DEVICE"                # frame is addressed to another device
RATE_LIMITED = "RATE_LIMITED"              # patient frames over their per-minute budget
AUTH_UNPROVISIONED = "AUTH_UNPROVISIONED"  # no keys (or auth state damaged)
AUTH_MALFORMED = "AUTH_MALFORMED"          # r/n/d of the wrong type or range; bad key data
AUTH_STORAGE = "AUTH_STORAGE"              # counter could not be saved: refused, not run

# --- failures and the patient budget ----------------------------------------------------------
FAIL_LIMIT = const(5)          # this many counted failures ...
FAIL_WINDOW_MS = const(60000)  # ... within this window raise AUTH_FAILURES
QUIET_MS = const(300000)       # the alarm's cause holds until this long without a failure
PATIENT_FRAMES = const(6)      # patient-key frames accepted per PATIENT_WINDOW_MS ...
PATIENT_WINDOW_MS = const(60000)  # ... each writes its counter to flash, so they are capped
_TICKS_PERIOD = const(0x40000000)  # time.ticks_ms() wraps at 2**30
_TICKS_HALF = const(0x20000000)

_PHYSICAL = "physical"  # provisioning allowed by the bolus button held at boot


class AuthError(Refusal):
    """A refused frame: .code one of the AUTH_* strings (or RATE_LIMITED), .msg a sentence for
    the user. .alarm is True on the failure that reached FAIL_LIMIT within FAIL_WINDOW_MS:
    raise AUTH_FAILURES then. .counted is True when the refusal counted as a failure."""

    def __init__(self, code, msg, alarm=False, counted=False):
        super().__init__(code, msg)
        self.alarm = alarm
        self.counted = counted


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
        self._store = AuthStore(root)
        self._keys = None   # role -> HmacKey
        self._counters = {ROLE_CLINICIAN: 0, ROLE_PATIENT: 0}
        self._keys_hex = None  # role -> key hex, kept only to rewrite the file with new counters
        self.state = "none"  # "none" (never provisioned), "ok", "damaged"
        self.state_detail = ""
        self._failure_ticks = []  # ticks of recent counted failures (at most FAIL_LIMIT)
        self._last_failure = None  # ticks of the newest counted failure
        self.failures = 0  # counted failures since boot
        self._patient_ticks = []  # ticks of accepted patient frames in the window
        self.rate_limited = 0  # patient frames refused by the budget since boot
        try:
            saved = self._store.load()
        except ValueError as e:
            self._damaged(str(e))
        else:
            if saved is not None:
                self._install(saved[0], saved[1])
        if self._store.lock_marked():
            # Firmware before issue 16 kept a lockout marker; there is no lockout any more.
            try:
                self._store.clear_lock()
            except OSError:
                pass

    def _damaged(self, why):
        self.state = "damaged"
        self.state_detail = why
        self._keys = None
        self._keys_hex = None

    def _install(self, keys_hex, counters):
        self._keys_hex = {ROLE_CLINICIAN: keys_hex[ROLE_CLINICIAN], ROLE_PATIENT: keys_hex[ROLE_PATIENT]}
        self._keys = {}
        for role in ROLES:
            self._keys[role] = HmacKey(unhexlify(keys_hex[role]))
        self._counters = {ROLE_CLINICIAN: counters[ROLE_CLINICIAN], ROLE_PATIENT: counters[ROLE_PATIENT]}
        self.state = "ok"
        self.state_detail = ""

    # --- queries ---------------------------------------------------------------------------
    def is_provisioned(self):
        """True when keys are loaded and intact."""
        return self.state == "ok"

    def counters(self):
        """Last accepted counter per role, e.g. {"clinician": 12, "patient": 3}. Counters
        are not secret (every frame carries one); a host that lost its keystore counter can
        resume above these."""
        return {ROLE_CLINICIAN: self._counters[ROLE_CLINICIAN], ROLE_PATIENT: self._counters[ROLE_PATIENT]}

    def under_attack(self, now_ms):
        """True while failures have come within QUIET_MS: the AUTH_FAILURES alarm's cause."""
        t = self._last_failure
        if t is None:
            return False
        if 0 <= _ticks_diff(now_ms, t) < QUIET_MS:
            return True
        self._last_failure = None
        return False

    def info(self, now_ms):
        """What identify/status may show: never any key material."""
        return {
            "provisioned": self.is_provisioned(),
            "auth_state": self.state,
            "counters": self.counters(),
            "failures": {"recent": len(self._recent(self._failure_ticks, now_ms, FAIL_WINDOW_MS)),
                         "since_boot": self.failures, "rate_limited": self.rate_limited,
                         "alarm_cause": self.under_attack(now_ms)},
        }

    @staticmethod
    def _recent(ticks, now_ms, window_ms):
        kept = []
        for t in ticks:
            elapsed_ms = _ticks_diff(now_ms, t)
            if 0 <= elapsed_ms < window_ms:
                kept.append(t)
        return kept

    # --- the check -----------------------------------------------------------------------
    def check(self, cmd, body_bytes, req, mac_hex, now_ms):
        """Decide whether the request may run.

        cmd: the command name ("c"); body_bytes: the BODY exactly as received (bytes); req:
        the parsed BODY (dict); mac_hex: the MAC field (str) or None when the frame had none;
        now_ms: ticks_ms-style time for the failure window and the patient budget.
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
                raise AuthError(AUTH_UNPROVISIONED, self._unprovisioned_msg(cmd))
            raise AuthError(AUTH_REQUIRED, "%s needs an authenticated frame (role %s)" % (_short(cmd), min_role(cmd)))
        if not has_mac:
            raise AuthError(AUTH_REQUIRED, "role given but the frame carries no MAC")
        if not has_role:
            raise AuthError(AUTH_REQUIRED, "MAC given but the body has no role \"r\"")

        if self.state != "ok":
            raise AuthError(AUTH_UNPROVISIONED, self._unprovisioned_msg(cmd))

        # The wire keys of a request body: "r" role, "n" counter, "d" device id.
        role = req["r"]
        counter = req.get("n")
        addressed_to = req.get("d")
        if role not in ROLES:
            self._fail(now_ms, AUTH_ROLE, "unknown role %s (clinician or patient)" % _short(role))
        if type(counter) is not int or counter < 1 or counter > COUNTER_MAX:
            self._fail(now_ms, AUTH_MALFORMED, "counter \"n\" must be an integer 1..%d" % COUNTER_MAX)
        if not isinstance(addressed_to, str):
            self._fail(now_ms, AUTH_MALFORMED, "device id \"d\" must be a string")
        if not is_hex_mac(mac_hex):
            self._fail(now_ms, AUTH_BAD_MAC, "MAC must be 64 lowercase hex characters")
        if addressed_to != self.device_id:
            # "d" is inside the MAC, so this is either a frame for another pump or a forgery
            self._fail(now_ms, AUTH_DEVICE, "frame is for device %s, this is %r" % (_short(addressed_to), self.device_id))
        if isinstance(body_bytes, str):
            body_bytes = body_bytes.encode()
        if not compare_hex(self._keys[role].hexdigest(body_bytes), mac_hex):
            self._fail(now_ms, AUTH_BAD_MAC, "MAC does not verify for role %s" % role)
        last = self._counters[role]
        if counter <= last:
            self._fail(now_ms, AUTH_REPLAY, "counter %d not above the last accepted %d for %s (replay?)" % (counter, last, role))
        if not role_may(role, cmd):
            self._fail(now_ms, AUTH_ROLE, "the %s key may not %s: that needs the %s key" % (role, what(cmd), min_role(cmd)))
        if role == ROLE_PATIENT:
            # Before the counter is written: a flood of valid patient frames writes nothing.
            recent = self._recent(self._patient_ticks, now_ms, PATIENT_WINDOW_MS)
            if len(recent) >= PATIENT_FRAMES:
                self._patient_ticks = recent
                self.rate_limited += 1
                # Taken in RAM only (no flash write): the frame cannot be replayed while the pump
                # runs; after a reset it could be, once, and would meet the same limits.
                self._counters[role] = counter
                wait_s = (PATIENT_WINDOW_MS - _ticks_diff(now_ms, recent[0]) + 999) // 1000
                raise AuthError(RATE_LIMITED, "too many patient requests: at most %d a minute; try again in %d s"
                                % (PATIENT_FRAMES, wait_s))
            recent.append(now_ms)
            self._patient_ticks = recent

        # Accept: the counter goes to flash first; only then does the command run.
        counters = self.counters()
        counters[role] = counter
        try:
            self._store.save(self._keys_hex, counters)
        except OSError as e:
            raise AuthError(AUTH_STORAGE, "could not save the counter (%r); command not run" % (e,))
        self._counters = counters
        return role

    def _unprovisioned_msg(self, cmd):
        if self.state == "damaged":
            return "authentication state damaged (%s): re-provision with the physical act" % self.state_detail
        return "device has no keys yet: provision it before %s" % _short(cmd)

    def _fail(self, now_ms, code, message):
        # Count a failure of a frame that claimed credentials; the one that makes FAIL_LIMIT
        # within FAIL_WINDOW_MS says so (the caller raises AUTH_FAILURES). Nothing is locked.
        kept = self._recent(self._failure_ticks, now_ms, FAIL_WINDOW_MS)
        kept.append(now_ms)
        if len(kept) > FAIL_LIMIT:
            kept = kept[-FAIL_LIMIT:]
        self._failure_ticks = kept
        self._last_failure = now_ms
        self.failures += 1
        raise AuthError(code, message, len(kept) == FAIL_LIMIT, True)

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
                         the only way out of a damaged state. Forgets recent failures.
        Raises AuthError(AUTH_REQUIRED, ...) when not allowed, AuthError(AUTH_MALFORMED, ...)
        for bad key data, AuthError(AUTH_STORAGE, ...) if the file could not be written; in
        every refusal nothing changes."""
        if authorised not in (None, ROLE_CLINICIAN, _PHYSICAL):
            raise AuthError(AUTH_MALFORMED, "authorised must be None, 'clinician' or 'physical'")
        if authorised is None and self.state != "none":
            raise AuthError(AUTH_REQUIRED, "device already has keys: re-provisioning needs the clinician key or the physical act")
        if authorised == ROLE_CLINICIAN and self.state != "ok":
            raise AuthError(AUTH_REQUIRED, "authentication state damaged: re-provisioning needs the physical act")
        if not isinstance(new_keys, dict):
            raise AuthError(AUTH_MALFORMED, "keys must be an object {clinician, patient}")
        for role in new_keys:
            if role not in ROLES:
                raise AuthError(AUTH_MALFORMED, "unknown key role %s" % _short(role))
        keys_hex = {}
        for role in ROLES:
            key_hex = new_keys.get(role)
            if not is_key_hex(key_hex):
                raise AuthError(AUTH_MALFORMED, "key for %s must be 64 lowercase hex characters (32 bytes)" % role)
            if key_hex == "0" * 64:
                raise AuthError(AUTH_MALFORMED, "key for %s is all zeros" % role)
            keys_hex[role] = key_hex
        if keys_hex[ROLE_CLINICIAN] == keys_hex[ROLE_PATIENT]:
            raise AuthError(AUTH_MALFORMED, "clinician and patient keys must differ")
        counters = {ROLE_CLINICIAN: 0, ROLE_PATIENT: 0}
        try:
            self._store.save(keys_hex, counters)
        except OSError as e:
            raise AuthError(AUTH_STORAGE, "could not save the keys (%r); nothing changed" % (e,))
        self._install(keys_hex, counters)
        if authorised == _PHYSICAL:
            self._failure_ticks = []
            self._last_failure = None
