# What authentication keeps on flash; services/auth.py decides, this only keeps.
#
# ONE file, <root>/auth/auth.json: both keys, both counters and a CRC-32. Keys and counters
# share a file so that no crash can ever pair old keys with reset counters (which would make
# every frame ever captured valid again). The file is replaced atomically: written to
# auth.json.tmp, then renamed over the old one (POSIX rename and littlefs rename both replace
# atomically), so after a power cut the file holds the old state or the new one.
# Beside it, <root>/auth/locked exists while a lockout is in force, so a reboot cannot lift it.
import json
import os
from errno import ENOENT
from binascii import crc32

from core.base import const
from services.hmac_sha256 import is_hex_mac
from services.auth_roles import ROLE_CLINICIAN, ROLE_PATIENT, ROLES

COUNTER_MAX = const(0x3FFFFFFF)  # 2**30 - 1: counters stay Pico small ints

_DIR = "auth"
_FILE = "auth.json"
_LOCKFILE = "locked"


def is_key_hex(k):
    return is_hex_mac(k)  # 32-byte keys are 64 lowercase hex chars, the same form as a MAC


def is_counter(n):
    # type(), not isinstance(): MicroPython and CPython disagree about isinstance(True, int)
    return type(n) is int and 0 <= n <= COUNTER_MAX


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


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def _record_crc(keys_hex, counters):
    # CRC over a canonical rendering, independent of json.dumps key order/spacing
    s = "v1|%s|%s|%d|%d" % (keys_hex[ROLE_CLINICIAN], keys_hex[ROLE_PATIENT],
                           counters[ROLE_CLINICIAN], counters[ROLE_PATIENT])
    return crc32(s.encode()) & 0xFFFFFFFF


class AuthStore:
    """The auth directory under the storage root: the keys-and-counters file and the lock
    marker. Opening it removes a write cut short before its rename (never used)."""

    def __init__(self, root):
        self._dir = _join(root, _DIR)
        self._path = _join(self._dir, _FILE)
        self._lockpath = _join(self._dir, _LOCKFILE)
        try:
            os.mkdir(self._dir)
        except OSError:
            pass  # exists already (or the root is unwritable: saving will say so later)
        _remove(self._path + ".tmp")

    def load(self):
        """(keys_hex, counters), each {role: ...}, as last saved; None when the file was never
        written (fresh flash). ValueError with a sentence for an unreadable or inconsistent
        file: any damage at all is refused, never guessed round."""
        try:
            with open(self._path) as f:
                text = f.read()
        except OSError as e:
            if e.args and e.args[0] == ENOENT:
                return None
            raise ValueError("auth file unreadable (%r)" % (e,))
        try:
            saved = json.loads(text)
            keys_hex = saved["keys"]
            counters = saved["ctr"]
            crc = saved["crc"]
            for role in ROLES:
                if not is_key_hex(keys_hex[role]):
                    raise ValueError("bad key for " + role)
                if not is_counter(counters[role]):
                    raise ValueError("bad counter for " + role)
            if saved.get("v") != 1 or crc != _record_crc(keys_hex, counters):
                raise ValueError("version or checksum mismatch")
        except Exception as e:
            raise ValueError("auth file damaged (%s)" % (e,))
        return keys_hex, counters

    def save(self, keys_hex, counters):
        """Replace the file atomically; OSError when the flash refuses (nothing changed)."""
        rec = {"v": 1, "keys": keys_hex, "ctr": counters, "crc": _record_crc(keys_hex, counters)}
        write_atomic(self._path, json.dumps(rec))

    def lock_marked(self):
        return _exists(self._lockpath)

    def mark_locked(self):
        write_atomic(self._lockpath, "1")

    def clear_lock(self):
        _remove(self._lockpath)
