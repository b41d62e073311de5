# HMAC-SHA256 (RFC 2104 / FIPS 198-1) for MicroPython, which has hashlib.sha256 but no hmac
# module, plus a constant-time compare of hex digests.
#
# Checked against RFC 4231 and against CPython's hmac on random keys and messages
# (tests/vectors/hmac_sha256.json, tests/firmware/mp_test_hmac.py, tests/host/test_signing.py).
# This file is also importable by CPython, which is how the property test can compare both.
import hashlib
import binascii

from core.base import const

_BLOCK = const(64)  # SHA-256 block size in bytes


class HmacKey:
    """A key prepared once: the two padded blocks are kept, so signing a frame costs two
    hashlib.sha256 objects and nothing else. hashlib objects on MicroPython have no copy(),
    so the padded blocks are re-fed for every message (128 extra bytes of hashing)."""

    def __init__(self, key):
        if isinstance(key, str):
            raise TypeError("HMAC key must be bytes, not str")
        key = bytes(key)
        if len(key) > _BLOCK:
            # RFC 2104: a key longer than the block is hashed first
            key = hashlib.sha256(key).digest()
        ipad = bytearray(_BLOCK)
        opad = bytearray(_BLOCK)
        for i in range(_BLOCK):
            k = key[i] if i < len(key) else 0
            ipad[i] = k ^ 0x36
            opad[i] = k ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def digest(self, msg):
        """32-byte HMAC-SHA256 of msg (bytes, bytearray or memoryview; str is refused so a
        caller cannot sign a different encoding from the bytes that were sent)."""
        if isinstance(msg, str):
            raise TypeError("HMAC message must be bytes, not str")
        h = hashlib.sha256(self._ipad)
        h.update(msg)
        inner = h.digest()
        h = hashlib.sha256(self._opad)
        h.update(inner)
        return h.digest()

    def hexdigest(self, msg):
        """64 lowercase hex characters."""
        return binascii.hexlify(self.digest(msg)).decode()


def hmac_sha256(key, msg):
    """HMAC-SHA256 of msg under key, as 32 bytes."""
    return HmacKey(key).digest(msg)


def hmac_sha256_hex(key, msg):
    """HMAC-SHA256 of msg under key, as 64 lowercase hex characters."""
    return HmacKey(key).hexdigest(msg)


def is_hex_mac(s):
    """True if s is exactly 64 lowercase hex characters (the only MAC form the protocol uses)."""
    if not isinstance(s, str) or len(s) != 64:
        return False
    # Walked as bytes: iterating a str makes each character a qstr MicroPython keeps for ever,
    # so a MAC of unusual characters would grow the interned names with every frame.
    b = s.encode()
    if len(b) != 64:
        return False  # a character beyond ASCII
    for c in b:
        if not (48 <= c <= 57 or 97 <= c <= 102):  # 0-9, a-f
            return False
    return True


def compare_hex(a, b):
    """Constant-time equality of two hex strings.

    The time taken depends only on the length, never on where the first difference is, so a
    caller who can time refusals learns nothing about the expected MAC. A length difference
    returns at once: lengths are not secret (every MAC is 64 characters). Anything that is not
    a str compares unequal."""
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    a = a.encode()  # bytes, not str: indexing a str interns each character (see is_hex_mac)
    b = b.encode()
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
