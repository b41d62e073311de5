# Append-only event log in a ring of segment files on littlefs.
#
# Files <root>/seg000 .. seg<N-1>, used as a ring: records are appended to the head segment;
# when the next record would not fit in segment_bytes, the next slot is rewritten from empty
# (its old records, the oldest in the log, are dropped). Segment order is recovered on open
# from the first record of each file (sequence numbers only ever grow).
#
# Each record carries a sequence number, the wall clock, the uptime, [type, data] as JSON and
# a CRC-32 (services/event_record.py has the layout).
#
# Each append is one open("ab")/write/close: littlefs commits the append at close, so a cut
# leaves the file as before or with the whole record. Recovery does not rely on that alone:
# the reader skips any bytes that do not form a CRC-good record (torn tail, bit rot) and
# resynchronises on the next good one, and an append after a damaged tail starts a fresh
# segment so new records never sit behind garbage.
#
# Capacity: at least (segments - 1) * segment_bytes bytes of records are always kept. The
# defaults (60 x 16368 bytes, 16368 = exactly 4 littlefs blocks of 4096) keep >= 965 712 bytes:
# 12 071 records of 80 bytes, i.e. 365 days of 30 events plus 3 alarms a day. See
# docs/persistence.md for the arithmetic and measured write cost.
import os
import errno
from errno import ENOENT
from core.base import const
# MAX_PAYLOAD and MAX_TYPE are imported from here by the tests.
from services.event_record import (encode, RecordReader, OVERHEAD_BYTES,  # noqa: F401
                                   RECORD_MAX_BYTES, MAX_PAYLOAD, MAX_TYPE)

# errno has no ENOSPC on most ports (the Pico's included); littlefs there reports 28.
ENOSPC = getattr(errno, "ENOSPC", 28)

SEGMENT_BYTES = const(16368)
SEGMENTS = const(60)


class EventLog:
    def __init__(self, root, segment_bytes=SEGMENT_BYTES, segments=SEGMENTS):
        if not isinstance(root, str) or not root:
            raise ValueError("EventLog root must be a non-empty path string, got %r" % (root,))
        if not isinstance(segment_bytes, int) or segment_bytes < RECORD_MAX_BYTES:
            raise ValueError("segment_bytes must be an int >= %d, got %r"
                             % (RECORD_MAX_BYTES, segment_bytes))
        if not isinstance(segments, int) or not 2 <= segments <= 999:
            raise ValueError("segments must be an int in 2..999, got %r" % (segments,))
        self.root = root.rstrip("/")
        self.segment_bytes = segment_bytes
        self.segments = segments
        self._reader = RecordReader()
        self.writes = 0  # files written by this object
        # Damaged regions met while scanning (SR-035: reported, never returned as records).
        # A power cut cannot cause one (littlefs commits appends whole), so any count here
        # means flash corruption and is worth a non-critical memory alarm.
        self.corrupt = 0
        try:
            os.mkdir(self.root)
        except OSError:
            pass  # exists (or root is a mount point)
        self._recover()

    def _path(self, slot):
        return "%s/seg%03d" % (self.root, slot)

    # ---- scanning -----------------------------------------------------------------------
    def _size(self, slot):
        try:
            return os.stat(self._path(slot))[6]
        except OSError as e:
            if e.args and e.args[0] == ENOENT:
                return -1
            raise

    def _find(self, f, size, pos):
        # The next good record at or after pos, as RecordReader.find; damage met is counted.
        pos, n, damaged = self._reader.find(f, size, pos)
        self.corrupt += damaged
        return pos, n

    def _recover(self):
        # first seq of each slot (0 = empty/unusable), head = slot with the largest
        self._first_seq = [0] * self.segments
        head = -1
        for s in range(self.segments):
            try:
                size = self._size(s)
                if size <= 0:
                    continue
                f = open(self._path(s), "rb")
                try:
                    p, n = self._find(f, size, 0)
                finally:
                    f.close()
            except OSError:
                self.corrupt += 1  # unreadable segment: skipped, never fatal
                continue
            if n:
                seq = self._reader.seq()
                self._first_seq[s] = seq
                if head < 0 or seq > self._first_seq[head]:
                    head = s
        self._head = head
        self._next = 1
        self._head_size = 0
        self._tail_bad = False
        if head < 0:
            return
        size = self._size(head)
        pos = 0
        good_end = 0
        last = self._first_seq[head]
        try:
            f = open(self._path(head), "rb")
            try:
                while True:
                    p, n = self._find(f, size, pos)
                    if not n:
                        break
                    seq = self._reader.seq()
                    if seq > last:
                        last = seq
                    pos = p + OVERHEAD_BYTES + n
                    good_end = pos
            finally:
                f.close()
        except OSError:
            self.corrupt += 1
            good_end = -1  # unreadable tail: the next append starts a new segment
        self._next = last + 1
        self._head_size = size
        # damaged bytes after the last good record: never append behind them
        self._tail_bad = good_end != size

    # ---- public API ---------------------------------------------------------------------
    def last_seq(self):
        """Sequence number of the newest record, 0 if the log is empty."""
        return self._next - 1

    def first_seq(self):
        """Sequence number of the oldest record still kept, 0 if the log is empty."""
        m = 0
        for s in self._first_seq:
            if s and (m == 0 or s < m):
                m = s
        return m

    def append(self, type, data=None, wall=None, uptime=0):
        """Append one record and return its seq once it is committed to flash.
        type: str of 1..24 chars [a-z0-9_.]; data: small JSON-able value (ints |x| < 2**30);
        wall: (day since 2000-01-01, ms of day) or None; uptime: int seconds since boot.
        ValueError for bad input (nothing written); OSError if the flash fails."""
        seq = self._next
        rec = encode(seq, type, data, wall, uptime)
        tries = self.segments
        while True:
            try:
                self._write(rec, seq)
                break
            except OSError as e:
                # Filesystem full: give up the oldest segment (never the head) and retry.
                tries -= 1
                if not (e.args and e.args[0] == ENOSPC) or tries <= 0 or not self._drop_oldest():
                    raise
        self._next = seq + 1
        return seq

    def _write(self, rec, seq):
        head = self._head
        if head >= 0 and not self._tail_bad and self._head_size + len(rec) <= self.segment_bytes:
            f = open(self._path(head), "ab")
            try:
                f.write(rec)
            finally:
                f.close()  # the append is committed here
            self.writes += 1
            self._head_size += len(rec)
            return
        # start the next segment of the ring; "wb" replaces the oldest one atomically
        slot = (head + 1) % self.segments
        f = open(self._path(slot), "wb")
        try:
            f.write(rec)
        finally:
            f.close()
        self.writes += 1
        self._first_seq[slot] = seq
        self._head = slot
        self._head_size = len(rec)
        self._tail_bad = False

    def _drop_oldest(self):
        old = -1
        for s in range(self.segments):
            if s != self._head and self._first_seq[s] and (old < 0 or self._first_seq[s] < self._first_seq[old]):
                old = s
        if old < 0:
            return False
        os.remove(self._path(old))
        self._first_seq[old] = 0
        return True

    def read(self, since_seq=0, max_n=50, max_bytes=0):
        """Records with seq > since_seq, oldest first, at most max_n, each a dict
        {"seq", "wall" ([day, ms] or None), "uptime", "type", "data"}. With max_bytes > 0,
        stops once the records' stored payloads add up to max_bytes (at least one record is
        returned): a page then makes a reply of bounded size, whatever the records hold."""
        if not isinstance(since_seq, int) or isinstance(since_seq, bool) or since_seq < 0:
            raise ValueError("since_seq must be an int >= 0, got %r" % (since_seq,))
        if not isinstance(max_n, int) or isinstance(max_n, bool) or not 1 <= max_n <= 1000:
            raise ValueError("max_n must be an int in 1..1000, got %r" % (max_n,))
        out = []
        budget = max_bytes if max_bytes > 0 else 1 << 30
        order = [s for s in range(self.segments) if self._first_seq[s]]
        order.sort(key=lambda s: self._first_seq[s])
        for i in range(len(order)):
            s = order[i]
            # skip a whole segment when the next one starts at or before since_seq + 1
            if i + 1 < len(order) and self._first_seq[order[i + 1]] <= since_seq + 1:
                continue
            try:
                size = self._size(s)
                if size <= 0:
                    continue
                f = open(self._path(s), "rb")
            except OSError:
                self.corrupt += 1
                continue
            try:
                pos = 0
                while len(out) < max_n and budget > 0:
                    p, n = self._find(f, size, pos)
                    if not n:
                        break
                    pos = p + OVERHEAD_BYTES + n
                    if self._reader.seq() <= since_seq:
                        continue
                    rec = self._reader.entry(n)
                    if rec is None:
                        continue
                    out.append(rec)
                    budget -= n + OVERHEAD_BYTES
            except OSError:
                self.corrupt += 1  # unreadable from here on: return what was read
            finally:
                f.close()
            if len(out) >= max_n or budget <= 0:
                break
        return out
