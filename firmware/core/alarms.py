# The alarm manager: the raise / clear / acknowledge / audio-pause state machine over the
# catalogue of core/alarm_catalogue.py (which alarms exist, how loud, latching, motor stop).
#
# Pure core: no clock, no I/O. The caller passes uptime in whole seconds (`now_s`, an int) and
# elapsed milliseconds to `tick`. `tick`, `highest`, `motor_blocked` and `audio_paused` do not
# allocate, so they may run inside the control tick under micropython.heap_lock(). Everything
# else may allocate (it builds lists, dicts and event records) and belongs to the slower paths.
from core.base import const
# The catalogue's public names are imported from here too (the app, the tests).
from core.alarm_catalogue import (LOW, MEDIUM, HIGH, PRIORITY_NAMES, CATALOGUE, CODES,  # noqa: F401
                                  ALARM_COUNT, ROW_CODE, ROW_PRIORITY, ROW_LATCHING,
                                  ROW_STOPS_MOTOR, STOPPED_TOO_LONG_DEFAULT_S, MAX_PAUSE_MS,
                                  EV_RAISE, EV_CLEAR, EV_ACK, EV_PAUSE, EV_RESUME, EVENT_NAMES,
                                  index, info, catalogue, event_dict, snapshot_indexes)

_MAX_INT = const(0x3FFFFFFF)  # largest Pico small int


def civil(day):
    """(year, month, day) of a day number since 2000-01-01 (proleptic Gregorian; H. Hinnant's
    days-to-civil, all small ints)."""
    z = day + 730425  # days since 0000-03-01
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return (yoe + era * 400 + (1 if m <= 2 else 0), m, d)
_EVENT_CAP = const(64)  # undrained events kept; older ones are dropped and counted


def _check_now(now_s):
    if type(now_s) is not int or now_s < 0 or now_s > _MAX_INT:
        raise ValueError("now_s must be an int uptime in seconds, 0..%d, got %r" % (_MAX_INT, now_s))


class AlarmManager:
    """Which alarms are listed and in what state.

    Per alarm: `cause` (the condition is present now) and `acked` (a person acknowledged it).
    States shown by active():
      active        cause present, not acknowledged: sounds and flashes
      acknowledged  cause present, acknowledged: silent but still listed
      latched       cause gone, latching alarm not yet acknowledged: still sounds
    A non-latching alarm leaves the list when its cause clears; a latched one when acknowledged.
    """

    def __init__(self, history_len=32):
        if type(history_len) is not int or not 1 <= history_len <= 1000:
            raise ValueError("history_len must be an int 1..1000, got %r" % (history_len,))
        self._listed = bytearray(ALARM_COUNT)
        self._cause = bytearray(ALARM_COUNT)
        self._acked = bytearray(ALARM_COUNT)
        self._since_s = [0] * ALARM_COUNT
        # When each was listed on the pump's wall clock: day since 2000-01-01 (-1: the clock
        # was not set) and ms of that day. Unlike `since` (uptime), it survives a reboot.
        self._since_day = [-1] * ALARM_COUNT
        self._since_ms = [0] * ALARM_COUNT
        # Where the wall clock is read when an alarm is listed: anything with clock_set, day
        # and ms (the Pump sets itself here). The core is told the time, never reads a clock.
        self.wall_source = None
        # History ring of event tuples (t, kind, code_index, ms), oldest overwritten.
        self._history = [None] * history_len
        self._history_next = 0
        self._history_count = 0
        self._events = []
        self._events_lost = 0
        # Audio pause. _pause_level: loudest priority sounding when the pause began; a new alarm
        # above it ends the pause at once (a worse problem must be heard).
        self._pause_left_ms = 0
        self._pause_level = 0
        self._pause_end_s = 0
        self._pause_expired = False  # set by tick (no allocation); logged at the next call

    # ---- queries that never allocate (safe in the control tick) ----

    def highest(self):
        """IEC name of the most urgent alarm that is sounding or would sound if audio were not
        paused (state active or latched), or None. Acknowledged alarms do not count."""
        best = 0
        for i in range(ALARM_COUNT):
            if self._listed[i] and not self._acked[i]:
                p = CATALOGUE[i][ROW_PRIORITY]
                if p > best:
                    best = p
        return PRIORITY_NAMES[best]

    def motor_blocked(self):
        """True while the cause of any motor-stopping alarm persists (acknowledged or not).
        A latched alarm whose cause is gone does not hold the motor: the cause's owner decides
        when it is gone (e.g. an occlusion only clears after a successful retry)."""
        return self.motor_blocker() is not None

    def motor_blocker(self):
        """The code of the first motor-stopping alarm whose cause persists, or None (named for
        a refusal's sentence; allocates nothing)."""
        for i in range(ALARM_COUNT):
            if self._cause[i] and CATALOGUE[i][ROW_STOPS_MOTOR]:
                return CATALOGUE[i][ROW_CODE]
        return None

    def audio_paused(self):
        return self._pause_left_ms > 0

    def pause_remaining_ms(self):
        return self._pause_left_ms

    def tick(self, dt_ms):
        """Advance the audio pause timer by dt_ms (int >= 0). Allocation-free."""
        if type(dt_ms) is not int or dt_ms < 0 or dt_ms > _MAX_INT:
            raise ValueError("dt_ms must be an int 0..%d" % _MAX_INT)
        if self._pause_left_ms > 0:
            if dt_ms >= self._pause_left_ms:
                self._pause_left_ms = 0
                self._pause_expired = True
            else:
                self._pause_left_ms -= dt_ms

    # ---- commands ----

    def raise_alarm(self, code, now_s):
        """The condition `code` is present. Returns True if this changed anything (newly listed,
        or the cause came back to a latched alarm), False if it was already present."""
        i = index(code)
        _check_now(now_s)
        self._flush_expiry(now_s)
        if self._cause[i]:
            return False
        if not self._listed[i]:
            self._listed[i] = 1
            self._acked[i] = 0
            self._since_s[i] = now_s
            w = self.wall_source
            if w is not None and w.clock_set:
                self._since_day[i] = w.day
                self._since_ms[i] = w.ms
            else:
                self._since_day[i] = -1
        self._cause[i] = 1
        self._log(now_s, EV_RAISE, i, 0)
        p = CATALOGUE[i][ROW_PRIORITY]
        if self._pause_left_ms > 0 and not self._acked[i] and p > self._pause_level:
            self._end_pause(now_s)
        return True

    def clear(self, code, now_s):
        """The cause of `code` is gone. A non-latching (or already acknowledged) alarm leaves
        the list; an unacknowledged latching one stays as "latched". Returns True if the cause
        was present, False if there was nothing to clear."""
        i = index(code)
        _check_now(now_s)
        self._flush_expiry(now_s)
        if not self._cause[i]:
            return False
        self._cause[i] = 0
        if self._acked[i] or not CATALOGUE[i][ROW_LATCHING]:
            self._remove(i)
        self._log(now_s, EV_CLEAR, i, 0)
        return True

    def ack(self, code_or_all, now_s):
        """Acknowledge one alarm code or "all". Returns the list of codes acknowledged now.
        A latched alarm (cause gone) is removed; one whose cause persists goes silent but stays
        listed as "acknowledged". Already acknowledged or unlisted alarms are skipped."""
        if code_or_all == "all":
            first, last = 0, ALARM_COUNT
        else:
            first = index(code_or_all)
            last = first + 1
        _check_now(now_s)
        self._flush_expiry(now_s)
        done = []
        for i in range(first, last):
            if not self._listed[i] or self._acked[i]:
                continue
            if self._cause[i]:
                self._acked[i] = 1
            else:
                self._remove(i)
            self._log(now_s, EV_ACK, i, 0)
            done.append(CATALOGUE[i][ROW_CODE])
        return done

    def pause_audio(self, duration_ms, now_s):
        """Silence the buzzer for duration_ms (1..MAX_PAUSE_MS). Lights keep showing. When the
        pause ends every unresolved alarm sounds again. A new pause replaces a running one."""
        if type(duration_ms) is not int or not 1 <= duration_ms <= MAX_PAUSE_MS:
            raise ValueError("an audio pause must last 1 ms to %d minutes (%d ms), not %r ms"
                             % (MAX_PAUSE_MS // 60_000, MAX_PAUSE_MS, duration_ms))
        _check_now(now_s)
        self._flush_expiry(now_s)
        best = 0
        for i in range(ALARM_COUNT):
            if self._listed[i] and not self._acked[i] and CATALOGUE[i][ROW_PRIORITY] > best:
                best = CATALOGUE[i][ROW_PRIORITY]
        self._pause_left_ms = duration_ms
        self._pause_level = best
        self._pause_end_s = min(now_s + duration_ms // 1000, _MAX_INT)
        self._log(now_s, EV_PAUSE, -1, duration_ms)

    def resume_audio(self, now_s):
        """End an audio pause early. Returns True if a pause was running."""
        _check_now(now_s)
        self._flush_expiry(now_s)
        if self._pause_left_ms <= 0:
            return False
        self._end_pause(now_s)
        return True

    # ---- reports ----

    def active(self):
        """Listed alarms as dicts {code, priority, since, since_wall, state}, most urgent
        first, then oldest first. since: uptime s; since_wall: [y, m, d, h, min, s] of the
        pump's clock when it was listed, or None if the clock was not set then."""
        out = []
        for p in (HIGH, MEDIUM, LOW):
            rows = []
            for i in range(ALARM_COUNT):
                if self._listed[i] and CATALOGUE[i][ROW_PRIORITY] == p:
                    rows.append(i)
            rows.sort(key=lambda j: self._since_s[j])
            for i in rows:
                if not self._cause[i]:
                    st = "latched"
                elif self._acked[i]:
                    st = "acknowledged"
                else:
                    st = "active"
                out.append({"code": CATALOGUE[i][ROW_CODE], "priority": PRIORITY_NAMES[p],
                            "since": self._since_s[i], "since_wall": self.since_wall(i), "state": st})
        return out

    def since_wall(self, i):
        """[y, m, d, h, min, s] of the pump's clock when alarm i was listed, or None."""
        day = self._since_day[i]
        if day < 0:
            return None
        y, mo, d = civil(day)
        t = self._since_ms[i] // 1000
        return [y, mo, d, t // 3600, t // 60 % 60, t % 60]

    def state(self, code):
        """State of one code: "active", "acknowledged", "latched" or None if not listed."""
        i = index(code)
        if not self._listed[i]:
            return None
        if not self._cause[i]:
            return "latched"
        return "acknowledged" if self._acked[i] else "active"

    def history(self, n=None):
        """The last n events kept in RAM (all kept if n is None), oldest first, as event dicts
        (see drain_events)."""
        self._flush_expiry()
        cnt = self._history_count
        if n is not None:
            if type(n) is not int or n < 0:
                raise ValueError("history count must be an int >= 0, got %r" % (n,))
            if n < cnt:
                cnt = n
        size = len(self._history)
        start = (self._history_next - cnt) % size
        return [event_dict(self._history[(start + k) % size]) for k in range(cnt)]

    def drain_events(self):
        """Events since the last drain, oldest first, and forget them. Each is a dict
        {"t": now_s, "ev": "raise"|"clear"|"ack"|"pause"|"resume"|"lost", "code": str or None,
        "ms": pause duration for "pause", number of dropped events for "lost", else 0}.
        "resume" is the end of an audio pause (its t is when the pause was due to end)."""
        self._flush_expiry()
        out = []
        if self._events_lost:
            t = self._events[0][0] if self._events else 0
            out.append({"t": t, "ev": "lost", "code": None, "ms": self._events_lost})
            self._events_lost = 0
        for e in self._events:
            out.append(event_dict(e))
        self._events = []
        return out

    # ---- across a reboot ----

    def snapshot(self):
        """Listed alarms as [code, cause, acked] lists (JSON-friendly) for the state file, so a
        latched alarm is not forgotten by a reset, with [day, ms] of the wall clock when it was
        listed appended when the clock was set then. Uptime (`since`) does not survive a reboot;
        the wall time does."""
        out = []
        for i in range(ALARM_COUNT):
            if self._listed[i]:
                r = [CATALOGUE[i][ROW_CODE], bool(self._cause[i]), bool(self._acked[i])]
                if self._since_day[i] >= 0:
                    r.append(self._since_day[i])
                    r.append(self._since_ms[i])
                out.append(r)
        return out

    def restore(self, rows, now_s):
        """Relist alarms from snapshot() after a boot, with since = now_s and the wall time the
        row kept (a row saved before it was kept has none). All or nothing: a malformed row
        raises ValueError and nothing changes. Logs nothing (the app logs the boot); causes that
        still hold are re-raised by their owners anyway."""
        _check_now(now_s)
        idx = snapshot_indexes(rows)
        for k in range(len(idx)):
            i = idx[k]
            r = rows[k]
            self._listed[i] = 1
            self._cause[i] = 1 if r[1] else 0
            self._acked[i] = 1 if r[2] else 0
            self._since_s[i] = now_s
            self._since_day[i] = r[3] if len(r) == 5 else -1
            self._since_ms[i] = r[4] if len(r) == 5 else 0

    # ---- internals ----

    def _remove(self, i):
        self._listed[i] = 0
        self._cause[i] = 0
        self._acked[i] = 0
        self._since_s[i] = 0
        self._since_day[i] = -1

    def _end_pause(self, now_s):
        self._pause_left_ms = 0
        self._pause_expired = False
        self._log(now_s, EV_RESUME, -1, 0)

    def _flush_expiry(self, now_s=None):
        # tick() cannot allocate an event record, so it leaves a flag that is logged here, at
        # the time the pause was due to end (never later than the caller's now, so the log
        # stays in time order even if the caller's seconds lag its ticks).
        if self._pause_expired:
            self._pause_expired = False
            t = self._pause_end_s
            if now_s is not None and now_s < t:
                t = now_s
            self._log(t, EV_RESUME, -1, 0)

    def _log(self, t, kind, i, ms):
        e = (t, kind, i, ms)
        self._history[self._history_next] = e
        self._history_next = (self._history_next + 1) % len(self._history)
        if self._history_count < len(self._history):
            self._history_count += 1
        if len(self._events) >= _EVENT_CAP:
            self._events.pop(0)
            self._events_lost += 1
        self._events.append(e)
