# Pump state on littlefs, saved so that a power cut at any flash write leaves the old state or
# the new one, never a mix.
#
# Two slot files, <root>/state.a and <root>/state.b, each holding one complete state:
#   offset size  field
#   0      4     magic b"PST1"
#   4      4     generation (u32 LE), +1 per save
#   8      4     payload length (u32 LE)
#   12     4     CRC-32 of bytes 0..11 followed by the payload
#   16     n     payload: the state dict as compact JSON (UTF-8)
# A save writes the slot that does NOT hold the newest good state, then reads it back.
# load() takes the good slot with the highest generation. Why this is atomic (argued in
# docs/persistence.md, proven by tests/firmware/mp_test_powercut.py and the campaign):
# littlefs commits a file's new contents only when it is closed (copy-on-write), and even if
# a slot ended up half-written, the CRC rejects it and the other slot still holds the previous
# state untouched.
#
# Write cost: one file rewrite per changed save; an unchanged state is not written at all.
# A state of up to ~490 bytes of JSON stays inline in littlefs metadata (Pico progsize 256:
# inline limit 512 bytes): one 512..768-byte metadata commit and no block erase per save.
import os
import json
import struct
from errno import ENOENT
from binascii import crc32
from core.base import const

_MAGIC = b"PST1"
_HDR = const(16)
MAX_STATE_BYTES = const(8192)  # bigger than any sane state; a cap on RAM use at load


_INT_MAX = const(0x3FFFFFFF)  # 2**30 - 1: Pico small ints are |x| < 2**30


def check_json(v, what="value", depth=0):
    """Raise ValueError unless v is made only of None, bool, int (|x| < 2**30), str, list,
    tuple and dict with str keys, at most 8 levels deep. MicroPython's json.dumps silently
    writes sets, bytes and objects as something else, so this runs before every write."""
    if v is None or isinstance(v, (bool, str)):
        return
    if isinstance(v, int):
        if -_INT_MAX <= v <= _INT_MAX:
            return
        raise ValueError("%s: int %r outside +-2**30" % (what, v))
    if depth >= 8:
        raise ValueError("%s: nested deeper than 8 levels" % what)
    if isinstance(v, (list, tuple)):
        for x in v:
            check_json(x, what, depth + 1)
        return
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise ValueError("%s: dict key %r is not a str" % (what, k))
            check_json(v[k], what, depth + 1)
        return
    raise ValueError("%s: %s is not storable (use int, str, bool, None, list, dict)"
                     % (what, type(v).__name__))


def _is_missing(e):
    return e.args and e.args[0] == ENOENT


class StateStore:
    """Atomic, checksummed store for the pump state dict under the directory `root`.

    load() -> dict or None, and sets .status to one of:
      "ok"        newest state good (and no damaged slot seen)
      "missing"   nothing was ever saved
      "corrupt"   state files exist but none is good: state unusable
      "recovered" a damaged slot was found and skipped; the newest good state was returned
    save(state) -> True if written, False if identical to the stored state (no write).
    """

    def __init__(self, root):
        if not isinstance(root, str) or not root:
            raise ValueError("StateStore root must be a non-empty path string, got %r" % (root,))
        self.root = root.rstrip("/")
        self._paths = (self.root + "/state.a", self.root + "/state.b")
        self.status = None
        self.generation = 0  # generation of the newest good state, 0 = none
        self._slot = -1  # slot holding the newest good state, -1 = none
        self._crc = None  # CRC of that state's payload, to skip unchanged saves
        self._scanned = False
        self.writes = 0  # number of files written by this object (for write budgets)
        try:
            os.mkdir(self.root)
        except OSError:
            pass  # exists (or root is a mount point)

    # ---- reading --------------------------------------------------------------------------
    def _read_slot(self, i, parse=True):
        # -> (generation, payload_crc, state) | None if missing | False if damaged. parse=False
        # (the read-back after a save) leaves state None: the CRC already proves the bytes are
        # the ones written, and parsing them again would cost the heap a second state dict.
        try:
            f = open(self._paths[i], "rb")
        except OSError as e:
            if _is_missing(e):
                return None
            raise
        try:
            hdr = f.read(_HDR)
            if len(hdr) < _HDR or hdr[0:4] != _MAGIC:
                return False
            gen, n, crc = struct.unpack_from("<III", hdr, 4)
            if n > MAX_STATE_BYTES:
                return False
            payload = f.read(n)
            if len(payload) != n or f.read(1):
                return False
        finally:
            f.close()
        if crc32(payload, crc32(hdr[0:12])) != crc:
            return False
        if not parse:
            return gen, crc32(payload), None
        try:
            state = json.loads(payload)
        except ValueError:
            return False
        if not isinstance(state, dict):
            return False
        return gen, crc32(payload), state

    def load(self):
        best = None
        best_i = -1
        damaged = False
        present = False
        for i in (0, 1):
            try:
                r = self._read_slot(i)
            except OSError:
                r = False  # unreadable (flash or filesystem error): as bad as damaged
            if r is None:
                continue
            present = True
            if r is False:
                damaged = True
                continue
            if best is None or r[0] > best[0]:
                best = r
                best_i = i
        self._scanned = True
        if best is None:
            self.status = "corrupt" if present else "missing"
            self.generation = 0
            self._slot = -1
            self._crc = None
            return None
        self.status = "recovered" if damaged else "ok"
        self.generation = best[0]
        self._slot = best_i
        self._crc = best[1]
        return best[2]

    # ---- writing --------------------------------------------------------------------------
    def save(self, state):
        """Save `state`: a dict of str keys whose values are int (|x| < 2**30), str, bool,
        None, list or dict (see check_json; no floats: the Pico's are 32-bit). Raises
        ValueError for bad input (nothing written) and OSError if the flash write or its
        read-back fails."""
        if not isinstance(state, dict):
            raise ValueError("state must be a dict, got %s" % type(state).__name__)
        check_json(state, "state")
        payload = json.dumps(state, separators=(",", ":")).encode()
        if len(payload) > MAX_STATE_BYTES:
            raise ValueError("state is %d bytes of JSON, limit %d" % (len(payload), MAX_STATE_BYTES))
        if not self._scanned:
            self.load()
        pcrc = crc32(payload)
        if pcrc == self._crc:
            return False
        gen = self.generation + 1
        i = 1 - self._slot if self._slot >= 0 else 0
        hdr = bytearray(_HDR)
        hdr[0:4] = _MAGIC
        struct.pack_into("<II", hdr, 4, gen, len(payload))
        struct.pack_into("<I", hdr, 12, crc32(payload, crc32(hdr[0:12])))
        f = open(self._paths[i], "wb")
        try:
            f.write(hdr)
            f.write(payload)
        finally:
            f.close()  # littlefs commits the new contents here, atomically
        self.writes += 1
        r = self._read_slot(i, False)
        if not r or r[0] != gen or r[1] != pcrc:
            raise OSError(5, "state read-back failed")  # EIO: flash is failing
        self.generation = gen
        self._slot = i
        self._crc = pcrc
        return True
