# One record of the event log (services/eventlog.py keeps them in a ring of segment files):
# its bytes, its CRC, and finding the next good one in a segment that may hold damage.
#
# Record (all little-endian), 20 + n bytes:
#   0  u8   magic 0xE5
#   1  u8   n, payload length, 1..MAX_PAYLOAD
#   2  u32  seq (1, 2, 3, ...)
#   6  u16  wall day since 2000-01-01, 0xFFFF = wall clock not set
#   8  u32  wall ms of day
#   12 u32  uptime in seconds since boot
#   16 n    payload: compact JSON [type, data]
#   16+n u32 CRC-32 of bytes 0 .. 16+n-1
import json
import struct
from binascii import crc32
from core.base import const
from services.storage import check_json

_MAGIC = const(0xE5)
_HEADER_BYTES = const(16)
OVERHEAD_BYTES = const(20)  # header + CRC
MAX_PAYLOAD = const(200)
RECORD_MAX_BYTES = const(OVERHEAD_BYTES + MAX_PAYLOAD)
MAX_TYPE = const(24)
_NO_DAY = const(0xFFFF)
_MS_PER_DAY = const(86400000)
_UPTIME_MAX = const(0x3FFFFFFF)


def _valid_type(t):
    if not isinstance(t, str) or not 0 < len(t) <= MAX_TYPE:
        return False
    b = t.encode()  # bytes: iterating a str would intern every character (a qstr each)
    if len(b) != len(t):
        return False
    for c in b:
        if not (97 <= c <= 122 or 48 <= c <= 57 or c == 95 or c == 46):  # a-z 0-9 _ .
            return False
    return True


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def encode(seq, type, data, wall, uptime):
    """The bytes of record `seq` (see EventLog.append for the arguments); ValueError for bad
    input."""
    if not _valid_type(type):
        raise ValueError("event type must be 1..%d chars of a-z 0-9 _ ., got %r" % (MAX_TYPE, type))
    check_json(data, "event data")
    if wall is None:
        day, ms = _NO_DAY, 0
    else:
        if not isinstance(wall, (tuple, list)) or len(wall) != 2:
            raise ValueError("wall must be (day, ms_of_day) or None, got %r" % (wall,))
        day, ms = wall
        if not _is_int(day) or not 0 <= day < _NO_DAY or not _is_int(ms) or not 0 <= ms < _MS_PER_DAY:
            raise ValueError("wall must be (day 0..65534, ms 0..86399999), got %r" % (wall,))
    if not _is_int(uptime) or not 0 <= uptime <= _UPTIME_MAX:
        raise ValueError("uptime must be int seconds in 0..2**30-1, got %r" % (uptime,))
    payload = json.dumps([type, data], separators=(",", ":")).encode()
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError("event %s is %d bytes of JSON, limit %d" % (type, n, MAX_PAYLOAD))
    rec = bytearray(OVERHEAD_BYTES + n)
    struct.pack_into("<BBIHII", rec, 0, _MAGIC, n, seq, day, ms, uptime)
    rec[_HEADER_BYTES:_HEADER_BYTES + n] = payload
    struct.pack_into("<I", rec, _HEADER_BYTES + n, crc32(memoryview(rec)[0:_HEADER_BYTES + n]))
    return rec


class RecordReader:
    """Reads records out of a segment file into one scratch buffer, allocated once."""

    def __init__(self):
        self._buf = bytearray(RECORD_MAX_BYTES)
        self._mv = memoryview(self._buf)

    def find(self, f, size, pos):
        """The next CRC-good record of file f (size bytes) at or after pos: (pos, n, damaged)
        with the record in the buffer, or (size, 0, damaged) if none. damaged is 1 when bytes
        that form no good record were skipped on the way (or lie after the last record), else
        0. Resynchronises one magic byte at a time."""
        buf = self._buf
        mv = self._mv
        skipped = False
        while pos + OVERHEAD_BYTES < size:
            f.seek(pos)
            got = f.readinto(mv[0:min(len(buf), size - pos)])
            if buf[0] == _MAGIC:
                n = buf[1]
                if 0 < n <= MAX_PAYLOAD and _HEADER_BYTES + n + 4 <= got:
                    if crc32(mv[0:_HEADER_BYTES + n]) == struct.unpack_from("<I", buf, _HEADER_BYTES + n)[0]:
                        return pos, n, 1 if skipped else 0
            # resync: jump to the next magic byte in what was read, else past it all
            skipped = True
            k = buf.find(b"\xe5", 1, got)
            pos += k if k > 0 else max(got, 1)
        return size, 0, 1 if skipped or pos < size else 0

    def seq(self):
        """Sequence number of the record last found."""
        return struct.unpack_from("<I", self._buf, 2)[0]

    def entry(self, n):
        """The record last found (payload n bytes) as a dict {"seq", "wall" ([day, ms] or
        None), "uptime", "type", "data"}, or None when its payload is not JSON (CRC-good but
        unparsable: cannot happen unless written so)."""
        seq, day, ms, uptime = struct.unpack_from("<IHII", self._buf, 2)
        try:
            t, d = json.loads(bytes(self._mv[_HEADER_BYTES:_HEADER_BYTES + n]))
        except ValueError:
            return None
        return {"seq": seq, "wall": None if day == _NO_DAY else [day, ms],
                "uptime": uptime, "type": t, "data": d}
