# The therapy program as the pump runs it (pure core: no I/O, no clock; MicroPython and
# CPython): its modes, and what a validated program answers about any minute of the day (rate,
# periodic bolus, next boundary, daily and worst-case totals). core/program.py builds one from
# a program dict and checks it; nothing here validates.
#
# Units: rates integer µg/day, doses integer µg, times minutes of day (0..1439), durations min.
from core.base import const

_DAY_MIN = const(1440)

# A program's mode. MODE_STOPPED is a program that delivers nothing: a different thing from the
# pump's state STOPPED (core/pump.py), though both are spelt "stopped" on the wire.
MODE_CONTINUOUS = "continuous"
MODE_FLEX = "flex"
MODE_STOPPED = "stopped"
MODES = (MODE_CONTINUOUS, MODE_FLEX, MODE_STOPPED)


def hhmm(minute):
    """Minute of day -> "HH:MM" (the form programs are written in)."""
    minute %= _DAY_MIN
    return "%02d:%02d" % (minute // 60, minute % 60)


class Program:
    """A validated program. Build it with core.program.parse(); the attributes are read-only by
    convention.

    drug, conc (µg/mL), mode, steps ((start_min, rate_ug_day), ...) with steps[0][0] == 0,
    periodic ((time_min, dose_ug, duration_min), ...) sorted and non-overlapping,
    min_rate (µg/day, 0 = none), patient (dose_ug, duration_min, max_per_24h, lockout_min) or
    None, overrides_used (tuple of override names the soft limits consumed, for the log).
    """

    def __init__(self, drug, conc, mode, steps, periodic, min_rate, patient, overrides_used):
        self.drug = drug
        self.conc = conc
        self.mode = mode
        self.steps = steps
        self.periodic = periodic
        self.min_rate = min_rate
        self.patient = patient
        self.overrides_used = overrides_used

    def _key(self):
        return (self.drug, self.conc, self.mode, self.steps, self.periodic, self.min_rate,
                self.patient, self.overrides_used)

    def __eq__(self, other):
        return isinstance(other, Program) and self._key() == other._key()

    def __ne__(self, other):
        return not self.__eq__(other)

    def rate_at(self, minute):
        """Basal rate in µg/day at minute of day `minute` (0..1439): the flex step in force,
        raised to min_rate (the keep-open floor). Periodic boluses come on top (periodic_at)."""
        if self.mode == MODE_STOPPED:
            return 0
        minute %= _DAY_MIN
        rate = 0
        for start, r in self.steps:
            if start > minute:
                break
            rate = r
        if rate < self.min_rate:
            rate = self.min_rate
        return rate

    def periodic_at(self, minute):
        """The periodic bolus (time_min, dose_ug, duration_min) running at minute of day
        `minute`, or None. A bolus that starts at 23:55 for 10 min runs at 00:02 too."""
        minute %= _DAY_MIN
        for p in self.periodic:
            if (minute - p[0]) % _DAY_MIN < p[2]:
                return p
        return None

    def next_change_min(self, minute):
        """The next minute after `minute` (0..1439) at which a flex step starts or a periodic
        bolus starts or ends, counted from today's midnight: a value in minute+1 .. 1440 +
        1439 (>= 1440 means tomorrow). A step starts at 00:00 every day, so the answer is never
        more than a day away; boundaries where the rate happens not to change are included."""
        minute %= _DAY_MIN
        best = minute + _DAY_MIN
        for start, _ in self.steps:
            best = _nearer(best, start, minute)
        for t, _, dur in self.periodic:
            best = _nearer(best, t, minute)
            best = _nearer(best, (t + dur) % _DAY_MIN, minute)
        return best

    def daily_basal_x1440(self):
        """Exact basal dose of one day in µg x 1440 (sum of rate x minutes): integer, exact."""
        if self.mode == MODE_STOPPED:
            return 0
        total = 0
        n = len(self.steps)
        for i in range(n):
            start, r = self.steps[i]
            end = self.steps[i + 1][0] if i + 1 < n else _DAY_MIN
            if r < self.min_rate:
                r = self.min_rate
            total += r * (end - start)
        return total

    def daily_total_x1440(self):
        """Exact programmed dose of one day (basal + periodic) in µg x 1440."""
        total = self.daily_basal_x1440()
        for p in self.periodic:
            total += p[1] * _DAY_MIN
        return total

    def daily_total_ug(self):
        """Programmed dose of one day, basal + periodic boluses, in µg rounded up (limits and
        reservoir forecasts err on the side of more drug). Patient boluses are not included."""
        return (self.daily_total_x1440() + _DAY_MIN - 1) // _DAY_MIN

    def worst_case_daily_ug(self):
        """daily_total_ug() plus every patient bolus the program allows in 24 h."""
        extra = 0
        if self.patient is not None:
            extra = self.patient[0] * self.patient[2]
        return self.daily_total_ug() + extra

    def ng_per_hour_at(self, minute):
        """Instantaneous delivery at `minute` in ng/h (floor): basal plus a running periodic
        bolus spread over its duration."""
        ng = self.rate_at(minute) * 1000 // 24
        p = self.periodic_at(minute)
        if p is not None:
            ng += p[1] * 60000 // p[2]
        return ng

    def ug_per_hour_at(self, minute):
        """ng_per_hour_at() in µg/h as a float, for display only."""
        return self.ng_per_hour_at(minute) / 1000

    def to_dict(self):
        """The program as a plain dict of the documented format; parse(to_dict()) == self.
        Only the overrides actually used are written back."""
        d = {"drug": self.drug, "concentration_ug_per_ml": self.conc, "mode": self.mode}
        if self.mode == MODE_CONTINUOUS:
            d["rate_ug_per_day"] = self.steps[0][1]
        elif self.mode == MODE_FLEX:
            d["steps"] = [{"start": hhmm(s), "rate_ug_per_day": r} for s, r in self.steps]
        if self.mode != MODE_STOPPED:
            if self.min_rate:
                d["min_rate_ug_per_day"] = self.min_rate
            if self.periodic:
                d["periodic_boluses"] = [{"time": hhmm(t), "dose_ug": dose, "duration_min": dur}
                                         for t, dose, dur in self.periodic]
            if self.patient is not None:
                p = self.patient
                d["patient_bolus"] = {"dose_ug": p[0], "duration_min": p[1],
                                      "max_per_24h": p[2], "lockout_min": p[3]}
        d["overrides"] = list(self.overrides_used)
        return d


def _nearer(best, event, minute):
    # Distance forward in time from `minute` to the next occurrence of `event` (1..1440).
    cand = event if event > minute else event + _DAY_MIN
    return cand if cand < best else best
