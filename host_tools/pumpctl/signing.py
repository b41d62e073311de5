"""Signing of protocol v1 request bodies (host side; the device side is firmware/services/auth.py).

An authenticated request BODY carries ``"r"`` (role), ``"n"`` (counter) and ``"d"`` (device id);
the frame carries ``MAC = HMAC-SHA256(key_of_role, BODY bytes exactly as sent)`` as 64 lowercase
hex characters between ``~`` and ``*``. Sign the very bytes that go on the wire: re-encoding the
JSON after signing (other spacing, key order or escaping) makes the MAC fail on the device.
See docs/security.md and the shared vectors in tests/vectors/hmac_sha256.json.
"""
from __future__ import annotations

import hashlib
import hmac
import re

ROLES: tuple[str, ...] = ("clinician", "patient")
COUNTER_MAX = 2**30 - 1  # the device keeps counters as Pico small ints
KEY_BYTES = 32
_HEX64 = re.compile(r"[0-9a-f]{64}")


class SigningError(ValueError):
    """Bad input to signing: the message says what was wrong."""


def _check_key(key: bytes) -> None:
    if not isinstance(key, (bytes, bytearray)):
        raise SigningError(f"key must be bytes, not {type(key).__name__}")
    if len(key) != KEY_BYTES:
        raise SigningError(f"key must be {KEY_BYTES} bytes, got {len(key)}")


def sign_body(body: bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``body`` under ``key`` (32 bytes), as 64 lowercase hex characters."""
    if not isinstance(body, (bytes, bytearray)):
        raise SigningError(f"body must be bytes (exactly as sent), not {type(body).__name__}")
    _check_key(key)
    return hmac.new(bytes(key), bytes(body), hashlib.sha256).hexdigest()


def verify(body: bytes, key: bytes, mac_hex: str) -> bool:
    """True if ``mac_hex`` is the MAC of ``body`` under ``key`` (constant-time compare).
    A malformed MAC (not 64 lowercase hex characters) is simply False."""
    if not isinstance(mac_hex, str) or not _HEX64.fullmatch(mac_hex):
        return False
    return hmac.compare_digest(sign_body(body, key), mac_hex)


def build_auth_fields(role: str, counter: int, device_id: str) -> dict[str, object]:
    """The three body fields of an authenticated request: ``{"r": role, "n": counter,
    "d": device_id}``. Raises SigningError on a role, counter or device id the device would
    refuse anyway, so the mistake is reported on the host with its cause."""
    if role not in ROLES:
        raise SigningError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if type(counter) is not int or not 1 <= counter <= COUNTER_MAX:
        raise SigningError(f"counter must be an integer 1..{COUNTER_MAX}, not {counter!r}")
    if not isinstance(device_id, str) or not device_id or not device_id.isprintable() or not device_id.isascii():
        raise SigningError(f"device id must be a non-empty printable ASCII string, not {device_id!r}")
    return {"r": role, "n": counter, "d": device_id}
