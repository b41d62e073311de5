# Therapy history: delivered dose (ng), delivered volume (nL) and programmed dose (ng) per
# hour, kept for `days` days (default 92, so 90 full days plus the current one) in a fixed
# ring of day files <root>/h000 .. h<days-1>; day d lives in slot d % days.
#
# Why many small files and not one big ring file: littlefs stores a file as a copy-on-write
# skip list, so changing bytes in the middle of a file rewrites every block from there to
# the end (measured: 20 bytes at the start of a 48 KB file cost 49 KB of writes and 13 block
# erases). A 300-byte day file stays inline in littlefs metadata (inline limit 512 bytes with
# the Pico's progsize 256): rewriting it hourly is one ~512-byte metadata commit, no erase.
#
# Day file, 300 bytes, little-endian:
#   0   4  magic b"HST1"
#   4   4  day (hours since 2000-01-01 // 24)
#   8 288  24 hours x (delivered_ng u32, delivered_nl u32, programmed_ng u32);
#          0xFFFFFFFF in delivered_ng = no data for that hour
#   296 4  CRC-32 of bytes 0..295
# The whole file is rewritten and committed by littlefs at close, so a power cut leaves the
# previous version; a damaged file (bad CRC) reads as a day without data and is counted in
# .damaged.
import os
import struct
from binascii import crc32
from micropython import const

_MAGIC = b"HST1"
_SIZE = const(300)
_BODY = const(296)
_NONE = 0xFFFFFFFF  # not const(): beyond the small-int range on the Pico
_LIMIT = const(0x40000000)  # 2**30
_ENOENT = const(2)
DAYS = const(92)


def _check_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < _LIMIT:
        raise ValueError("%s must be an int in 0..2**30-1, got %r" % (name, v))


class History:
    def __init__(self, root, days=DAYS):
        if not isinstance(root, str) or not root:
            raise ValueError("History root must be a non-empty path string, got %r" % (root,))
        if not isinstance(days, int) or not 2 <= days <= 999:
            raise ValueError("days must be an int in 2..999, got %r" % (days,))
        self.root = root.rstrip("/")
        self.days = days
        self._buf = bytearray(_SIZE)  # the day file being worked on, allocated once
        self._day = -1  # day held in _buf, -1 = none
        self.damaged = 0  # day files found with a bad CRC
        self.writes = 0  # files written by this object
        try:
            os.mkdir(self.root)
        except OSError:
            pass

    def _path(self, day):
        return "%s/h%03d" % (self.root, day % self.days)

    def _load(self, day):
        """Fill _buf with the file of `day`'s slot. Returns the day it holds, -1 if the slot
        is empty or damaged."""
        if self._day == day:
            return day
        self._day = -1
        buf = self._buf
        try:
            f = open(self._path(day), "rb")
        except OSError as e:
            if e.args and e.args[0] == _ENOENT:
                return -1
            raise
        try:
            n = f.readinto(buf)
        finally:
            f.close()
        if (n != _SIZE or buf[0:4] != _MAGIC
                or crc32(memoryview(buf)[0:_BODY]) != struct.unpack_from("<I", buf, _BODY)[0]):
            self.damaged += 1
            return -1
        d = struct.unpack_from("<I", buf, 4)[0]
        if d == day:
            self._day = day
        return d

    def _blank(self, day):
        buf = self._buf
        buf[0:4] = _MAGIC
        struct.pack_into("<I", buf, 4, day)
        for h in range(24):
            struct.pack_into("<III", buf, 8 + 12 * h, _NONE, 0, 0)

    def add(self, hour_index, delivered_ng, delivered_nl, programmed_ng):
        """Add one hour's figures (summed onto what that hour already holds) and commit the
        day file. ValueError for bad input or an hour older than the kept history; nothing
        is written then. After a power cut during add() the hour holds the old or the new
        sum and the caller cannot tell which: do not repeat it (use put() with totals kept
        in the saved state when a repeat must be harmless)."""
        self._store(hour_index, delivered_ng, delivered_nl, programmed_ng, True)

    def put(self, hour_index, delivered_ng, delivered_nl, programmed_ng):
        """Set one hour's figures, replacing what it held: idempotent, safe to repeat after
        a power cut. Same errors as add()."""
        self._store(hour_index, delivered_ng, delivered_nl, programmed_ng, False)

    def _store(self, hour_index, delivered_ng, delivered_nl, programmed_ng, summing):
        _check_int("hour_index", hour_index)
        _check_int("delivered_ng", delivered_ng)
        _check_int("delivered_nl", delivered_nl)
        _check_int("programmed_ng", programmed_ng)
        day = hour_index // 24
        held = self._load(day)
        if held > day:
            raise ValueError("hour %d is older than the %d days of history kept" % (hour_index, self.days))
        if held != day:
            self._blank(day)
        off = 8 + 12 * (hour_index % 24)
        ng, nl, png = struct.unpack_from("<III", self._buf, off)
        if summing and ng != _NONE:
            delivered_ng += ng
            delivered_nl += nl
            programmed_ng += png
            if delivered_ng >= _LIMIT or delivered_nl >= _LIMIT or programmed_ng >= _LIMIT:
                self._day = -1  # _buf may be stale relative to what we refuse; reload next time
                raise ValueError("hour %d totals would exceed 2**30" % hour_index)
        struct.pack_into("<III", self._buf, off, delivered_ng, delivered_nl, programmed_ng)
        struct.pack_into("<I", self._buf, _BODY, crc32(memoryview(self._buf)[0:_BODY]))
        self._day = -1  # until the commit is done, _buf is not what flash holds
        f = open(self._path(day), "wb")
        try:
            f.write(self._buf)
        finally:
            f.close()  # littlefs commits the whole day file here
        self.writes += 1
        self._day = day

    def read(self, from_hour, to_hour):
        """Hours in [from_hour, to_hour) that hold data, oldest first, as tuples
        (hour_index, delivered_ng, delivered_nl, programmed_ng)."""
        _check_int("from_hour", from_hour)
        _check_int("to_hour", to_hour)
        if to_hour < from_hour:
            raise ValueError("to_hour %d is before from_hour %d" % (to_hour, from_hour))
        # nothing older than the ring can exist: do not walk days that cannot be there
        if to_hour - from_hour > self.days * 24:
            from_hour = to_hour - self.days * 24
        out = []
        if to_hour == from_hour:
            return out
        for day in range(from_hour // 24, (to_hour - 1) // 24 + 1):
            if self._load(day) != day:
                continue
            for h in range(24):
                hour = day * 24 + h
                if hour < from_hour or hour >= to_hour:
                    continue
                ng, nl, png = struct.unpack_from("<III", self._buf, 8 + 12 * h)
                if ng != _NONE:
                    out.append((hour, ng, nl, png))
        return out
