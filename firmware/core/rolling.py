# Rolling 24 h dose window over every source of dose (pure core, integers only).
#
# Delivered dose is added in ng at uptime seconds into fixed, preallocated time buckets.
# Conservatism: total_ug(now) sums every bucket that overlaps the last 24 h, i.e. the 24 h
# window plus up to one bucket of older dose, and rounds ng up to whole µg. So the total may
# over-count by at most one bucket's worth (bucket_s of delivery, e.g. 15 min) plus 1 µg and
# never under-counts: a bolus is refused early rather than let through late.
#
# add() allocates nothing (small-int arithmetic and list stores only), so the control tick can
# call it under micropython.heap_lock(). Each bucket keeps µg plus an ng remainder (< 1000), so
# no int grows past 2**30 as long as one bucket holds less than ~10**9 µg.
from core.base import const

_DAY_S = const(86400)


class Rolling24:
    def __init__(self, bucket_s=900):
        if type(bucket_s) is not int or bucket_s < 60 or _DAY_S % bucket_s:
            raise ValueError("bucket_s must be a whole divisor of 86400 s, at least 60 s")
        self.bucket_s = bucket_s
        # One more slot than a day's buckets: the oldest partly-inside bucket stays counted.
        self.n = _DAY_S // bucket_s + 1
        self._tag = [-1] * self.n   # absolute bucket number held by the slot, -1 = empty
        self._ug = [0] * self.n
        self._ng = [0] * self.n     # remainder 0..999
        self._last = 0              # latest now_s seen: time never runs backwards in here
        # The window's sum for bucket _cb, kept up to date by add(): total_ug() is O(1) except
        # when the bucket changes (once per bucket_s), since the pump asks every tick.
        self._cb = -1
        self._cu = 0
        self._cn = 0

    def _now(self, now_s):
        # Uptime must not go back; if a caller's clock does, keep the later time (dose then
        # stays in the window longer: conservative).
        if now_s < self._last:
            return self._last
        self._last = now_s
        return now_s

    def add(self, now_s, ng):
        """Record `ng` nanograms (int >= 0) delivered at uptime second `now_s`. No allocation."""
        if ng <= 0:
            return
        now_s = self._now(now_s)
        b = now_s // self.bucket_s
        i = b % self.n
        if self._tag[i] != b:
            # The slot held bucket b - n (or older), already outside the window of b.
            self._tag[i] = b
            self._ug[i] = 0
            self._ng[i] = 0
        old = self._ng[i]
        t = old + ng
        self._ug[i] += t // 1000
        self._ng[i] = t % 1000
        if self._cb == b:
            self._cu += t // 1000
            self._cn += t % 1000 - old
        else:
            self._cb = -1

    def _sum(self, b):
        # Recompute the window sums for bucket b (every bucket overlapping the last 24 h).
        oldest = b - self.n + 1
        ug = 0
        ng = 0
        for i in range(self.n):
            t = self._tag[i]
            if oldest <= t <= b:
                ug += self._ug[i]
                ng += self._ng[i]
        self._cb = b
        self._cu = ug
        self._cn = ng

    def total_ug(self, now_s):
        """Dose in µg delivered in the 24 h up to `now_s` (over-counts, never under-counts:
        see the module comment). No allocation."""
        if now_s < self._last:
            now_s = self._last
        b = now_s // self.bucket_s
        if b != self._cb:
            self._sum(b)
        return self._cu + (self._cn + 999) // 1000

    def headroom_ug(self, now_s, limit_ug):
        """How many µg may still be delivered now without passing `limit_ug` (>= 0)."""
        h = limit_ug - self.total_ug(now_s)
        return h if h > 0 else 0

    def would_exceed(self, now_s, extra_ug, limit_ug):
        """True when delivering `extra_ug` more now would pass the 24 h maximum `limit_ug`:
        the caller refuses the whole bolus (never cuts it short)."""
        return self.total_ug(now_s) + extra_ug > limit_ug

    def to_state(self, now_s):
        """Small JSON-able state: [[age_s, ug, ng], ...] for buckets still in the window, ages
        relative to now_s so it survives a reboot (uptime restarts at 0). age_s is the age of
        the latest moment the bucket could hold delivery (its end, or now), so a restored dose
        never leaves the window earlier than the real one would."""
        if now_s < self._last:
            now_s = self._last
        b = now_s // self.bucket_s
        out = []
        for i in range(self.n):
            t = self._tag[i]
            if b - self.n < t <= b and (self._ug[i] or self._ng[i]):
                age = now_s - (t + 1) * self.bucket_s
                out.append([age if age > 0 else 0, self._ug[i], self._ng[i]])
        return out

    def from_state(self, state, now_s):
        """Restore to_state() output at uptime `now_s`. Time the pump was off is unknown and
        taken as zero, so restored dose stays in the window at least as long as it should.
        Malformed state raises ValueError and leaves the window as it was."""
        if not isinstance(state, list):
            raise ValueError("rolling state must be a list")
        rows = []
        for r in state:
            if not isinstance(r, list) or len(r) != 3:
                raise ValueError("rolling state rows are [age_s, ug, ng]")
            for v in r:
                if type(v) is not int or v < 0 or v >= (1 << 29):
                    raise ValueError("rolling state values must be whole numbers >= 0")
            if r[2] > 999:
                raise ValueError("rolling state ng remainder must be < 1000")
            rows.append(r)
        for i in range(self.n):
            self._tag[i] = -1
            self._ug[i] = 0
            self._ng[i] = 0
        self._last = now_s
        self._cb = -1
        for age, ug, ng in rows:
            # Re-add in the bucket holding the latest possible delivery time (never before 0).
            t = now_s - age
            if t < 0:
                t = 0
            b = t // self.bucket_s
            i = b % self.n
            if self._tag[i] != b:
                self._tag[i] = b
                self._ug[i] = 0
                self._ng[i] = 0
            x = self._ng[i] + ng
            self._ug[i] += ug + x // 1000
            self._ng[i] = x % 1000
