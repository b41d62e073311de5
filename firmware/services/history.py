# Therapy history: delivered dose (ng), delivered volume (nL) and programmed dose (ng) per
# hour, kept for `days` days (default 104: 90 full days with room to spare) in a fixed-size
# ring of day records. Day d lives at ring index d % days; the records are packed 13 to a
# file, <root>/h00 .. h07, so each file is one 3900-byte littlefs block.
#
# Why this shape (measured with the sim flash, progsize 256 like the Pico):
# - one big ring file: littlefs stores a file as a copy-on-write skip list, so changing
#   bytes in the middle rewrites every block from there to the end (20 bytes at the start
#   of a 48 KB file cost 49 KB of writes and 13 erases);
# - one small (inline) file per day: cheap to rewrite (~512 bytes, no erase), but 92 inline
#   files cost ~60 of the Pico's 352 blocks in directory metadata;
# - one block per 13 days: an hourly flush copies that block (~4.6 KB written, 1 erase),
#   and the whole history takes 8 blocks.
#
# Day record, 300 bytes, little-endian:
#   0   4  magic b"HST1"
#   4   4  day (hour_index // 24)
#   8 288  24 hours x (delivered_ng u32, delivered_nl u32, programmed_ng u32);
#          0xFFFFFFFF in delivered_ng = no data for that hour
#   296 4  CRC-32 of bytes 0..295
# Unused or erased slots hold 0xFF bytes (no magic). A flush rewrites one record in place
# and littlefs commits the file's new block at close, so a power cut leaves the previous
# version; a damaged record (bad CRC) reads as a day without data and is counted in
# .damaged.
import os
import struct
from errno import ENOENT
from binascii import crc32
from core.base import const
from core.engine import Q_PER_NG
from core.program_model import MODE_STOPPED

_MAGIC = b"HST1"
_SIZE = const(300)
_BODY = const(296)
_PER_FILE = const(13)  # 13 x 300 = 3900 bytes: one 4096-byte littlefs block
_NONE = 0xFFFFFFFF  # not const(): beyond the small-int range on the Pico
_MAX = const(0x3FFFFFFF)  # 2**30 - 1: the largest Pico small int we allow
DAYS = const(104)  # 8 files


def _check_int(name, v):
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= _MAX:
        raise ValueError("%s must be an int in 0..2**30-1, got %r" % (name, v))


def _check_row(hour_index, delivered_ng, delivered_nl, programmed_ng):
    _check_int("hour_index", hour_index)
    _check_int("delivered_ng", delivered_ng)
    _check_int("delivered_nl", delivered_nl)
    _check_int("programmed_ng", programmed_ng)


class History:
    def __init__(self, root, days=DAYS):
        if not isinstance(root, str) or not root:
            raise ValueError("History root must be a non-empty path string, got %r" % (root,))
        if not isinstance(days, int) or not 2 <= days <= 1300:
            raise ValueError("days must be an int in 2..1300, got %r" % (days,))
        self.root = root.rstrip("/")
        self.days = days
        self._buf = bytearray(_SIZE)  # the day record being worked on, allocated once
        self._day = -1  # day held in _buf, -1 = none
        self.damaged = 0  # day records found with a bad CRC (or unreadable)
        self.writes = 0  # files written by this object
        try:
            os.mkdir(self.root)
        except OSError:
            pass

    def _where(self, day):
        # -> (path, offset in file, records in that file)
        i = day % self.days
        f = i // _PER_FILE
        n = min(_PER_FILE, self.days - f * _PER_FILE)
        return "%s/h%02d" % (self.root, f), (i % _PER_FILE) * _SIZE, n

    def _load(self, day):
        """Fill _buf with the file of `day`'s slot. Returns the day it holds, -1 if the slot
        is empty or damaged."""
        if self._day == day:
            return day
        self._day = -1
        buf = self._buf
        path, off, _ = self._where(day)
        try:
            f = open(path, "rb")
        except OSError as e:
            if e.args and e.args[0] == ENOENT:
                return -1
            raise
        try:
            f.seek(off)
            n = f.readinto(buf)
        finally:
            f.close()
        if n != _SIZE or buf[0:4] != _MAGIC:
            return -1  # never written (erased or missing slot)
        if crc32(memoryview(buf)[0:_BODY]) != struct.unpack_from("<I", buf, _BODY)[0]:
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
        self._set(hour_index, delivered_ng, delivered_nl, programmed_ng, summing)
        self._commit(hour_index // 24)

    def _set(self, hour_index, delivered_ng, delivered_nl, programmed_ng, summing):
        # Puts one hour into _buf (loading its day first); _commit() writes it.
        _check_row(hour_index, delivered_ng, delivered_nl, programmed_ng)
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
            if delivered_ng > _MAX or delivered_nl > _MAX or programmed_ng > _MAX:
                self._day = -1  # _buf may be stale relative to what we refuse; reload next time
                raise ValueError("hour %d totals would exceed 2**30" % hour_index)
        struct.pack_into("<III", self._buf, off, delivered_ng, delivered_nl, programmed_ng)
        self._day = day  # _buf holds the day with the change, not yet what flash holds

    def _commit(self, day):
        struct.pack_into("<I", self._buf, _BODY, crc32(memoryview(self._buf)[0:_BODY]))
        self._day = -1  # until the commit is done, _buf is not what flash holds
        path, off, nrec = self._where(day)
        try:
            size = os.stat(path)[6]
        except OSError as e:
            if not (e.args and e.args[0] == ENOENT):
                raise
            size = -1
        if size == nrec * _SIZE:
            f = open(path, "r+b")
            try:
                f.seek(off)
                f.write(self._buf)
            finally:
                f.close()  # littlefs commits the file's new block here
        else:
            # missing, or of another ring geometry: start the file afresh (one commit)
            blank = b"\xff" * _SIZE
            f = open(path, "wb")
            try:
                for k in range(nrec):
                    f.write(self._buf if k * _SIZE == off else blank)
            finally:
                f.close()
        self.writes += 1
        self._day = day

    def get(self, hour_index):
        """What one hour holds: (delivered_ng, delivered_nl, programmed_ng), or None."""
        _check_int("hour_index", hour_index)
        day = hour_index // 24
        try:
            if self._load(day) != day:
                return None
        except OSError:
            self.damaged += 1
            return None
        ng, nl, png = struct.unpack_from("<III", self._buf, 8 + 12 * (hour_index % 24))
        return None if ng == _NONE else (ng, nl, png)

    def put_hours(self, rows):
        """put() each (hour_index, ng, nl, png) of rows, oldest first: one commit per day they
        fall on. Idempotent like put(). ValueError for a bad row: the rows before it that share
        its day are not written, earlier days are."""
        day = -1
        for hour, ng, nl, png in rows:
            d = hour // 24
            if day >= 0 and d != day:
                self._commit(day)
            day = d
            try:
                self._set(hour, ng, nl, png, False)
            except ValueError:
                self._day = -1
                raise
        if day >= 0:
            self._commit(day)

    def close(self, hour_index, delivered_ng, delivered_nl, programmed_ng, next_hour=None, q0=0, nl0=0):
        """An hour ended (HourAccumulator): add() it now. PendingHours.close holds it first (and
        keeps where the next hour starts; a bare History does not)."""
        self.add(hour_index, delivered_ng, delivered_nl, programmed_ng)

    open_hour = -1  # a bare History keeps no hour in progress

    def open(self, hour, q0, nl0):
        pass

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
            try:
                if self._load(day) != day:
                    continue
            except OSError:
                self.damaged += 1  # unreadable file: that day reads as no data
                continue
            for h in range(24):
                hour = day * 24 + h
                if hour < from_hour or hour >= to_hour:
                    continue
                ng, nl, png = struct.unpack_from("<III", self._buf, 8 + 12 * h)
                if ng != _NONE:
                    out.append((hour, ng, nl, png))
        return out


_PMAGIC = b"HPN1"
PENDING = const(6)  # closed hours held before they go into the day files
_PREC = const(16)   # one pending hour: hour_index, ng, nl, png (u32 each)
_POPEN = const(8 + PENDING * _PREC)  # the hour in progress: hour u32, q0 i64, nl0 i64
_PBODY = const(_POPEN + 20)
_NO_HOUR = 0xFFFFFFFF


class PendingHours:
    """Closed hours on their way into History, kept in one small file (<root>/pend) that
    littlefs holds inline in its directory's metadata: closing an hour costs one commit of
    about 100 bytes instead of a copy of a 4 KB day block, and every PENDING hours they go
    into the day files together (one block copy per day touched). Each pending hour holds its
    total (what History held for it plus what this close adds), so writing them (put) can be
    repeated: a power cut between the day files' commit and the emptying of this file writes
    the same totals again at the next flush, never twice the hour. A cut while this file is
    written leaves its old or its new version (littlefs commits a file at close), so a closed
    hour is never lost once close() returned.

    The file also says where the hour in progress started (its hour and the pump's dose and
    volume counters then), written in the same commit as the close of the hour before: after a
    power cut, HourAccumulator.resume() closes or continues that hour from the restored counters,
    so what it delivered before the cut is not lost from history either.

    pend file: magic b"HPN1", count u32, PENDING x (hour, ng, nl, png) u32, the hour in progress
    (hour u32, 0xFFFFFFFF: none; dose quanta and nL counters at its start, i64), CRC-32."""

    def __init__(self, history, path):
        self.history = history
        self.path = path
        self.buf = bytearray(_PBODY + 4)  # the file's image, allocated once
        self.n = 0
        self.open_hour = -1  # the hour in progress, -1: none recorded
        self.open_q0 = 0
        self.open_nl0 = 0
        self.flushes = 0  # times the pending hours went into the day files
        self.damaged = 0  # a pend file with a bad magic or CRC was found (its hours are lost)
        self._load()

    def _load(self):
        try:
            f = open(self.path, "rb")
        except OSError:
            return
        try:
            got = f.readinto(self.buf)
        finally:
            f.close()
        b = self.buf
        if got != _PBODY + 4 or b[0:4] != _PMAGIC or \
                crc32(memoryview(b)[0:_PBODY]) != struct.unpack_from("<I", b, _PBODY)[0]:
            self.damaged += 1
            self.n = 0
            return
        n = struct.unpack_from("<I", b, 4)[0]
        self.n = n if n <= PENDING else 0
        h, q0, nl0 = struct.unpack_from("<Iqq", b, _POPEN)
        if h != _NO_HOUR and q0 >= 0 and nl0 >= 0:
            self.open_hour, self.open_q0, self.open_nl0 = h, q0, nl0

    def _write(self):
        b = self.buf
        b[0:4] = _PMAGIC
        struct.pack_into("<I", b, 4, self.n)
        h = self.open_hour
        struct.pack_into("<Iqq", b, _POPEN, _NO_HOUR if h < 0 else h, self.open_q0, self.open_nl0)
        struct.pack_into("<I", b, _PBODY, crc32(memoryview(b)[0:_PBODY]))
        f = open(self.path, "wb")
        try:
            f.write(b)
        finally:
            f.close()  # littlefs commits here: the old or the new version survives a cut

    def _row(self, i):
        return struct.unpack_from("<IIII", self.buf, 8 + i * _PREC)

    def open(self, hour, q0, nl0):
        """The hour in progress starts at these counters: written now (one small commit)."""
        self._set_open(hour, q0, nl0)
        self._write()

    def _set_open(self, hour, q0, nl0):
        if hour is None or hour < 0 or q0 < 0 or nl0 < 0:
            self.open_hour = -1
        else:
            self.open_hour, self.open_q0, self.open_nl0 = hour, q0, nl0

    def close(self, hour, ng, nl, png, next_hour=None, q0=0, nl0=0):
        """An hour ended: add its figures (summed onto what that hour already holds, here or in
        History), and record where the next hour starts (next_hour and the counters then) in the
        same commit. ValueError for bad figures or totals past 2**30; nothing changes then."""
        _check_row(hour, ng, nl, png)
        i = 0
        while i < self.n and self._row(i)[0] != hour:
            i += 1
        if i < self.n:
            base = self._row(i)[1:]
        else:
            base = self.history.get(hour)
        if base is not None:
            ng += base[0]
            nl += base[1]
            png += base[2]
            if ng > _MAX or nl > _MAX or png > _MAX:
                raise ValueError("hour %d totals would exceed 2**30" % hour)
        if i == self.n and self.n == PENDING:
            self.flush()  # a new hour behind six that a failed flush (OSError) left waiting
            i = 0
        struct.pack_into("<IIII", self.buf, 8 + i * _PREC, hour, ng, nl, png)
        if i == self.n:
            self.n += 1
        self._set_open(next_hour, q0, nl0)
        if self.n == PENDING:
            self.flush()
        else:
            self._write()

    def flush(self):
        """Write the pending hours into the day files, then empty the pend file."""
        if self.n == 0:
            return
        rows = sorted(self._row(i) for i in range(self.n))
        try:
            self.history.put_hours(rows)
        except ValueError:
            pass  # an hour older than the ring keeps (the clock was set far forward): dropped
        self.n = 0
        self._write()
        self.flushes += 1

    def read(self, from_hour, to_hour):
        """History.read with the pending hours in it: [(hour, ng, nl, png), ...] oldest first."""
        rows = self.history.read(from_hour, to_hour)
        if not self.n:
            return rows
        pend = [self._row(i) for i in range(self.n)]
        keep = [r for r in rows if not any(p[0] == r[0] for p in pend)]
        keep += [p for p in pend if from_hour <= p[0] < to_hour]
        keep.sort()
        return keep


class HourAccumulator:
    """Delivered and programmed dose per wall-clock hour, closed into PendingHours once per
    hour (`history` may be a History too: it then writes each hour straight away)."""

    def __init__(self, history):
        self.history = history
        self.hour = None
        self.q0 = 0
        self.nl0 = 0
        self.prog_ng = 0

    def start(self, hour, pump):
        """A new hour starts now (the first, after a clock change): recorded in the pend file."""
        self._begin(hour, pump)
        if self.history is not None:
            try:
                self.history.open(hour, self.q0, self.nl0)
            except OSError:
                pass

    def _begin(self, hour, pump):
        self.hour = hour
        self.q0 = pump.q_total.value()
        self.nl0 = pump.nl_total.value()

    def resume(self, hour_now, pump, programmed_ng):
        """At boot, the counters restored: the hour that was in progress at the power cut goes
        on (the same hour) or is closed with what it delivered before the cut (a later hour),
        then the hour now starts. programmed_ng(hour_of_day) gives that hour's programmed dose.
        Counters older than the recorded start (a journal behind it) start afresh."""
        h = self.history
        oh = h.open_hour if h is not None else -1
        if oh < 0 or oh > hour_now or pump.q_total.value() < h.open_q0 \
                or pump.nl_total.value() < h.open_nl0:
            self.start(hour_now, pump)
            return
        self.hour, self.q0, self.nl0 = oh, h.open_q0, h.open_nl0
        if oh != hour_now:
            self.flush(hour_now, pump, programmed_ng(oh % 24))  # as if it had run through

    def flush(self, hour_now, pump, programmed_ng):
        """Close the hour if the wall clock moved past it; returns True if it wrote."""
        if self.hour is None:
            self.start(hour_now, pump)
            return False
        if hour_now == self.hour:
            return False
        q = pump.q_total.value()
        nl = pump.nl_total.value()
        ng = (q - self.q0) // Q_PER_NG
        dnl = nl - self.nl0
        wrote = False
        if self.history is not None and hour_now > self.hour:
            try:
                self.history.close(self.hour, ng, dnl, programmed_ng, hour_now, q, nl)
                wrote = True
            except (ValueError, OSError):
                pass
        if wrote:
            self._begin(hour_now, pump)  # the close recorded where this hour starts
        else:
            self.start(hour_now, pump)
        return wrote


def programmed_ng_for_hour(prog, hour_of_day):
    """Dose the program asks for in one hour of the day, in ng (basal + periodic boluses)."""
    if prog is None or prog.mode == MODE_STOPPED:
        return 0
    x = 0  # µg/day summed over the hour's minutes; one division at the end keeps it exact
    for m in range(hour_of_day * 60, hour_of_day * 60 + 60):
        x += prog.rate_at(m)
    ng = x * 1000 // 1440
    for t, dose, dur in prog.periodic:
        if hour_of_day * 60 <= t < hour_of_day * 60 + 60:
            ng += dose * 1000
    return ng
