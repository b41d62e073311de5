"""Protocol v1 framing on the host (the same format as firmware/services/link.py; spec in
docs/protocol.md, shared vectors in tests/vectors/frames.json)."""
from __future__ import annotations

import json
import zlib
from typing import Any, Optional, Tuple

MAX_FRAME = 2048


class FrameError(ValueError):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def body_bytes(obj: dict) -> bytes:
    """Compact JSON, ASCII only (json.dumps escapes everything else). A "~" (only ever inside a
    string) goes as \\u007e: a body ending in "~" and 64 characters would otherwise read as a
    body and a MAC."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    return text.replace("~", "\\u007e").encode("ascii")


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
