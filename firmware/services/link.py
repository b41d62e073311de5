# Protocol v1 framing (docs/protocol.md): one printable-ASCII line per frame,
#     $BODY[~MAC]*CRC\n
# BODY is compact JSON, MAC 64 hex (HMAC-SHA256 of BODY, optional), CRC 8 hex (CRC-32 of the
# bytes between '$' and '*'). Printable ASCII only, because 0x03 on a REPL port interrupts the
# interpreter and a board's port also carries the REPL's own text, which framing must ignore.
import json
from binascii import crc32

from core.base import const, Refusal

# Bytes in one line, '$' to '\n'; longer lines are dropped whole. 4096 holds the largest program
# (48 steps, patient bolus, periodic boluses) with room; the buffer is allocated once.
MAX_FRAME = const(4096)
_DOLLAR = const(0x24)
_STAR = const(0x2A)
_TILDE = const(0x7E)
_LF = const(0x0A)
_CR = const(0x0D)


class LinkError(Refusal):
    """A frame that is not a well-formed request. A kind of its own only because the
    dispatcher counts these as bad frames and never caches their reply."""


class LineAssembler:
    """Collects bytes into lines in one preallocated buffer; an oversized line is dropped
    up to its newline and reported once, so a flood can never exhaust memory.

    A '$' always starts a new frame: a body never holds one (encode() sends it as \\u0024), so
    whatever came before it on the line (a partial frame, garbage, a jam from another writer
    without a newline) is dropped there and cannot swallow the frame that follows."""

    def __init__(self, size=MAX_FRAME):
        self._buf = bytearray(size)
        self._n = 0
        self._overflow = False
        self.dropped = 0  # junk runs dropped at a '$' (a jam or a torn frame): counted, not replied

    def reset(self):
        """Drop a partial line (link recovery): allocation-free."""
        self._n = 0
        self._overflow = False

    def feed(self, data, out):
        """Append complete lines (bytes, without CR/LF) to the list `out`; oversized lines
        append None so the caller can answer with an error."""
        buf = self._buf
        size = len(buf)
        for b in data:
            if b == _LF or b == _CR:
                if self._overflow:
                    out.append(None)
                    self._overflow = False
                elif self._n:
                    out.append(bytes(buf[: self._n]))
                self._n = 0
            elif b == _DOLLAR:
                if self._overflow or (self._n and buf[0] == _DOLLAR):
                    self.dropped += 1  # a frame torn or jammed before its newline
                self._overflow = False
                buf[0] = b
                self._n = 1
            elif self._overflow:
                continue
            elif self._n >= size:
                self._overflow = True
                self._n = 0
            else:
                buf[self._n] = b
                self._n += 1
        return out


def _printable(line):
    for b in line:
        if b < 0x20 or b > 0x7E:
            return False
    return True


def decode(line):
    """Split a frame line into (body_bytes, mac_hex or None). Raises LinkError.

    Lines that do not start with '$' are not frames (REPL noise): returns None.
    """
    if not line or line[0] != _DOLLAR:
        return None
    if not _printable(line):
        raise LinkError("BAD_FRAME", "frame holds bytes outside printable ASCII")
    star = line.rfind(b"*")
    if star < 1 or len(line) - star != 9:
        raise LinkError("BAD_FRAME", "frame must end with '*' and 8 hex digits of CRC-32")
    try:
        want = int(line[star + 1:], 16)
    except ValueError:
        raise LinkError("BAD_FRAME", "CRC field is not hexadecimal")
    inner = line[1:star]
    if crc32(inner) & 0xFFFFFFFF != want:
        raise LinkError("BAD_CRC", "CRC-32 mismatch: the frame was corrupted on the way")
    mac = None
    t = inner.rfind(b"~")
    if t >= 0 and len(inner) - t == 65:
        mac = inner[t + 1:].decode()
        inner = inner[:t]
    return inner, mac


def parse_body(body):
    """JSON object of a request body; raises LinkError on anything else."""
    try:
        obj = json.loads(body)
    except Exception:  # ValueError, or MemoryError/RuntimeError on absurd nesting
        raise LinkError("BAD_JSON", "frame body is not valid JSON")
    if not isinstance(obj, dict):
        raise LinkError("BAD_JSON", "frame body must be a JSON object")
    return obj


def ascii_json(obj):
    """Compact JSON with every non-ASCII character escaped, so the frame stays printable."""
    s = json.dumps(obj, separators=(",", ":"))
    b = s.encode()
    # The common all-ASCII reply is found in C: its UTF-8 is as long as its characters, and DEL
    # (which json.dumps leaves as is) is absent. A Python loop over each character of a 1.5 KB
    # status reply cost a Pico 120 ms.
    if len(b) == len(s) and "\x7f" not in s:
        return s
    # Copy runs of ASCII as slices and escape only the others: one small piece per non-ASCII
    # character, not one per character of the reply. The walk is over the UTF-8 bytes, not the
    # characters: each character taken from a str is an interned name (a qstr) that MicroPython
    # never frees, so a reply echoing a stranger's text would grow the heap for good.
    n = len(b)
    parts = []
    start = i = 0
    while i < n:
        c = b[i]
        if c <= 0x7E:
            i += 1
            continue
        if i > start:
            parts.append(b[start:i])
        # json.dumps gives well-formed UTF-8: the lead byte says how many bytes follow.
        if c < 0xC0:
            o, k = c, 1  # DEL (0x7F)
        elif c < 0xE0:
            o, k = c & 0x1F, 2
        elif c < 0xF0:
            o, k = c & 0x0F, 3
        else:
            o, k = c & 0x07, 4
        for j in range(i + 1, min(i + k, n)):
            o = (o << 6) | (b[j] & 0x3F)
        if o < 0x10000:
            parts.append(b"\\u%04x" % o)
        else:
            o -= 0x10000
            parts.append(b"\\u%04x\\u%04x" % (0xD800 + (o >> 10), 0xDC00 + (o & 0x3FF)))
        i += k
        start = i
    parts.append(b[start:])
    return b"".join(parts).decode()


def encode(obj, mac=None):
    """A frame line (bytes, with newline) for a JSON-able object. A "~" inside the JSON (it can
    only stand in a string) goes as \\u007e: a body ending in "~" and 64 characters would
    otherwise read as a body and a MAC. A "$" goes as \\u0024: a "$" starts a frame."""
    inner = ascii_json(obj)
    if "~" in inner:
        inner = inner.replace("~", "\\u007e")
    if "$" in inner:
        inner = inner.replace("$", "\\u0024")
    if mac:
        inner = inner + "~" + mac
    inner = inner.encode()
    return b"$" + inner + b"*" + (b"%08x" % (crc32(inner) & 0xFFFFFFFF)) + b"\n"
