# Patient bolus gate (pure core): decides every patient bolus request and says why.
#
# Rules (docs/programs.md): a lockout interval after each delivered bolus, a lockout after
# programming or refill (start_lockout), at most max_per_24h delivered in any rolling 24 h, and,
# when the caller passes the rolling dose window, the drug's 24 h maximum over every source.
# Every request returns (outcome, detail): outcome "delivered" | "refused_lockout" |
# "refused_limit", detail a sentence for the log. Time is uptime in integer seconds, given.
from core.base import const

_DAY_S = const(86400)

DELIVERED = "delivered"
REFUSED_LOCKOUT = "refused_lockout"
REFUSED_LIMIT = "refused_limit"


def _mins(s):
    # Waits are rounded up so a patient told "3 min" is never refused at 3 min.
    m = (s + 59) // 60
    if m >= 60:
        return "%d h %02d min" % (m // 60, m % 60)
    return "%d min" % m


def _check_settings(settings):
    if settings is None:
        return None
    if not isinstance(settings, tuple) or len(settings) != 4:
        raise ValueError("patient settings are (dose_ug, duration_min, max_per_24h, lockout_min)")
    for v in settings:
        if type(v) is not int or v < 1 or v >= (1 << 29):
            raise ValueError("patient settings must be whole numbers >= 1")
    return settings


class PatientGate:
    """settings: Program.patient, i.e. (dose_ug, duration_min, max_per_24h, lockout_min), or
    None when the program allows no patient bolus (every request is then refused_limit)."""

    def __init__(self, settings):
        self.settings = _check_settings(settings)
        self.lockout_until = 0   # uptime s before which requests are refused_lockout
        self.given = []          # uptime s of boluses delivered in the last 24 h, oldest first
        self._last = 0

    def _now(self, now_s):
        # Uptime never goes back; if it seems to, keep the later time (lockouts last longer).
        if now_s < self._last:
            return self._last
        self._last = now_s
        return now_s

    def _prune(self, now_s):
        while self.given and now_s - self.given[0] >= _DAY_S:
            self.given.pop(0)

    def reconfigure(self, settings, now_s):
        """A new program: new settings, the 24 h history kept (reprogramming must not reset the
        daily count), and the post-programming lockout started."""
        self.settings = _check_settings(settings)
        self.start_lockout(now_s)

    def start_lockout(self, now_s, seconds=None):
        """Lock patient boluses out from now_s for `seconds` (default: the programmed lockout
        interval), after programming or refill. Never shortens a running lockout."""
        now_s = self._now(now_s)
        if seconds is None:
            seconds = self.settings[3] * 60 if self.settings is not None else 0
        until = now_s + seconds
        if until > self.lockout_until:
            self.lockout_until = until

    def wait_s(self, now_s):
        """Seconds until a request could be delivered (0 = now), ignoring the 24 h dose
        maximum; -1 when no patient bolus is programmed."""
        if self.settings is None:
            return -1
        now_s = self._now(now_s)
        self._prune(now_s)
        w = self.lockout_until - now_s
        if len(self.given) >= self.settings[2]:
            k = len(self.given) - self.settings[2]
            wc = self.given[k] + _DAY_S - now_s
            if wc > w:
                w = wc
        return w if w > 0 else 0

    def request(self, now_s, rolling=None, max24_ug=0):
        """Decide a request at uptime `now_s`. With `rolling` (a core.rolling.Rolling24) and
        `max24_ug`, a bolus that would pass the 24 h maximum is refused whole. On "delivered"
        the caller starts the bolus (dose settings[0] µg over settings[1] min)."""
        now_s = self._now(now_s)
        st = self.settings
        if st is None:
            return REFUSED_LIMIT, "no patient bolus is programmed"
        self._prune(now_s)
        if now_s < self.lockout_until:
            return REFUSED_LOCKOUT, ("locked out: next patient bolus allowed in %s"
                                     % _mins(self.lockout_until - now_s))
        if len(self.given) >= st[2]:
            k = len(self.given) - st[2]
            return REFUSED_LIMIT, ("%d of %d patient boluses per 24 h already given: next allowed "
                                   "in %s" % (len(self.given), st[2],
                                              _mins(self.given[k] + _DAY_S - now_s)))
        if rolling is not None and rolling.would_exceed(now_s, st[0], max24_ug):
            return REFUSED_LIMIT, ("a %d µg patient bolus would pass the 24 h maximum of %d µg "
                                   "(%d µg given in the last 24 h)"
                                   % (st[0], max24_ug, rolling.total_ug(now_s)))
        self.given.append(now_s)
        self.lockout_until = now_s + st[3] * 60
        return DELIVERED, "patient bolus %d µg over %d min (%d of %d in 24 h)" % (
            st[0], st[1], len(self.given), st[2])

    def count_24h(self, now_s):
        now_s = self._now(now_s)
        self._prune(now_s)
        return len(self.given)

    def to_state(self, now_s):
        """{"lockout_s": remaining lockout, "ages": [seconds since each bolus in 24 h]}: relative
        to now_s, so it survives a reboot (uptime restarts at 0)."""
        now_s = self._now(now_s)
        self._prune(now_s)
        rem = self.lockout_until - now_s
        return {"lockout_s": rem if rem > 0 else 0, "ages": [now_s - t for t in self.given]}

    def from_state(self, state, now_s):
        """Restore to_state() output at uptime now_s. Off time is taken as zero, so lockouts
        and counts last at least as long as they should. Malformed state raises ValueError and
        leaves the gate as it was."""
        if not isinstance(state, dict):
            raise ValueError("patient gate state must be an object")
        lock = state.get("lockout_s")
        ages = state.get("ages")
        if type(lock) is not int or lock < 0 or lock >= (1 << 29) or not isinstance(ages, list):
            raise ValueError("patient gate state needs lockout_s >= 0 and a list of ages")
        for a in ages:
            if type(a) is not int or a < 0 or a >= _DAY_S:
                raise ValueError("patient gate ages must be whole seconds within 24 h")
        ages = sorted(ages)
        ages.reverse()  # oldest first
        self._last = now_s
        self.lockout_until = now_s + lock
        # Uptime starts at 0 after a reboot: a bolus "before" it is kept at time <= now.
        self.given = [now_s - a for a in ages]
