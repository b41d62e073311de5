"""Protocol v1 framing on the host (the same format as firmware/services/link.py; spec in
docs/protocol.md, shared vectors in tests/vectors/frames.json)."""
from __future__ import annotations

import json
import math
import zlib
from typing import Any, Optional, Tuple

from .errors import PumpctlError

MAX_FRAME = 4096  # bytes '$' to '\n', both ways (firmware/services/link.py MAX_FRAME)


class NotFinite(PumpctlError, ValueError):
    """A request held inf or nan, or a value JSON cannot carry (a date, bytes, ...): the pump
    would answer BAD_JSON. Raised on the host, naming the field, before anything is sent."""
    code = "BAD_VALUE"


def bad_value(obj: Any, path: str = "") -> Optional[str]:
    """'field: why' for the first value in obj that JSON cannot carry as the pump reads it
    (inf, nan, a date or time, any non-JSON type); None if every value is fine."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return None
    if isinstance(obj, float):
        return None if math.isfinite(obj) else f"{path or 'value'} is {obj!r}, not a finite number"
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                return f"{path or 'value'} has a key {k!r} that is not a string"
            why = bad_value(v, f"{path}.{k}" if path else k)
            if why:
                return why
        return None
    if isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            why = bad_value(v, f"{path}[{i}]")
            if why:
                return why
        return None
    kind = type(obj).__name__
    what = {"date": "a date", "datetime": "a date and time", "time": "a time of day"}.get(kind, f"a {kind}")
    return f"{path or 'value'} is {what}, not a number or text"


class FrameError(ValueError):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def body_bytes(obj: dict) -> bytes:
    """Compact JSON, ASCII only (json.dumps escapes everything else). A "~" (only ever inside a
    string) goes as \\u007e: a body ending in "~" and 64 characters would otherwise read as a
    body and a MAC. A "$" goes as \\u0024: the pump starts a new frame at every "$" (so a jam
    without a newline never swallows the next frame). inf and nan raise NotFinite: JSON has no
    such numbers and the pump would refuse the frame as BAD_JSON."""
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (ValueError, TypeError):
        why = bad_value(obj) or "a value in the request cannot be sent as JSON"
        raise NotFinite(f"cannot send the request: {why}") from None
    return text.replace("~", "\\u007e").replace("$", "\\u0024").encode("ascii")


def encode_body(body: bytes, mac: Optional[str] = None) -> bytes:
    inner = body + (b"~" + mac.encode("ascii") if mac else b"")
    return b"$" + inner + b"*" + b"%08x" % (zlib.crc32(inner) & 0xFFFFFFFF) + b"\n"


def encode(obj: dict, mac: Optional[str] = None) -> bytes:
    return encode_body(body_bytes(obj), mac)


def decode(line: bytes) -> Optional[Tuple[bytes, Optional[str]]]:
    """(body, mac) of a frame line without its newline; None if the line is not a frame."""
    line = line.rstrip(b"\r\n")
    if not line.startswith(b"$"):
        return None
    if any(b < 0x20 or b > 0x7E for b in line):
        raise FrameError("BAD_FRAME", "frame holds bytes outside printable ASCII")
    star = line.rfind(b"*")
    if star < 1 or len(line) - star != 9:
        raise FrameError("BAD_FRAME", "frame must end with '*' and 8 hex digits of CRC-32")
    try:
        want = int(line[star + 1:], 16)
    except ValueError:
        raise FrameError("BAD_FRAME", "CRC field is not hexadecimal") from None
    inner = line[1:star]
    if zlib.crc32(inner) & 0xFFFFFFFF != want:
        raise FrameError("BAD_CRC", "CRC-32 mismatch")
    mac = None
    t = inner.rfind(b"~")
    if t >= 0 and len(inner) - t == 65:
        mac = inner[t + 1:].decode("ascii")
        inner = inner[:t]
    return inner, mac


def parse(line: bytes) -> Optional[dict[str, Any]]:
    parts = decode(line)
    if parts is None:
        return None
    try:
        obj = json.loads(parts[0])
    except ValueError:
        raise FrameError("BAD_JSON", "frame body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("BAD_JSON", "frame body must be a JSON object")
    return obj
