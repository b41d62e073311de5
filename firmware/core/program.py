# Program validation (pure core: no I/O, no clock; MicroPython and CPython).
#
# A program arrives as a dict (TOML on the host, JSON on the wire; docs/programs.md is the spec).
# parse() checks everything and returns an immutable-by-convention Program
# (core/program_model.py), or raises Refusal with a code and a sentence naming the field and
# the limit. parse() never changes its input and keeps no state, so a refused program leaves
# the running one untouched.
#
# Units: rates integer µg/day, doses integer µg, times minutes of day (0..1439), durations min.
from core.base import const, Refusal
# Program, the modes and hhmm are imported from here by the services and the tests.
from core.program_model import (Program, MODES, MODE_CONTINUOUS, MODE_FLEX,  # noqa: F401
                                MODE_STOPPED, hhmm)

_DAY_MIN = const(1440)
_MAX_STEPS = const(48)
_MAX_PERIODIC = const(24)
_MAX_BOLUS_MIN = const(240)   # longest periodic or patient bolus: 4 h
_MAX_LOCKOUT_MIN = const(1440)
_MAX_PER_24H = const(96)      # structural cap; the drug library's limit is far lower

# Overrides a clinician can confirm, one per soft limit in the drug library.
OVERRIDES = ("daily_dose", "basal_rate", "bolus_dose", "patient_bolus_dose", "patient_bolus_count")

_KEYS = ("drug", "concentration_ug_per_ml", "mode", "rate_ug_per_day", "steps",
         "min_rate_ug_per_day", "periodic_boluses", "patient_bolus", "overrides")
_STEP_KEYS = ("start", "rate_ug_per_day")
_PERIODIC_KEYS = ("time", "dose_ug", "duration_min")
_PATIENT_KEYS = ("dose_ug", "duration_min", "max_per_24h", "lockout_min")


def _bad(msg):
    raise Refusal("BAD_PROGRAM", msg)


def _int(v, what, lo, hi):
    # type() rather than isinstance(): CPython's bool is an int, JSON/TOML floats are refused.
    if type(v) is not int:
        _bad("%s must be a whole number, got %s" % (what, _show(v)))
    if v < lo or v > hi:
        _bad("%s %d is out of range %d..%d" % (what, v, lo, hi))
    return v


def _show(v):
    # repr() of non-ASCII text differs between MicroPython and CPython; keep messages identical.
    # Values are cut short: a 1000-digit number must not cost its size again in the reply.
    if isinstance(v, str):
        return '"' + (v if len(v) <= 40 else v[:37] + "...") + '"'
    if v is None:
        return "nothing"
    if v is True or v is False:
        return "true" if v else "false"
    if type(v) is int and -(10 ** 15) < v < 10 ** 15:
        return str(v)
    if type(v) is int:
        return "a %d-digit number" % len(str(abs(v)))
    if type(v) is float:
        return str(v)
    return "a " + type(v).__name__


def _keys(d, allowed, where):
    if not isinstance(d, dict):
        _bad("%s must be a table/object, got %s" % (where, _show(d)))
    for k in d:
        if k not in allowed:
            _bad("unknown field %s in %s" % (_show(k), where))


def _need(d, k, where):
    if k not in d:
        _bad("%s is missing %s" % (where, k))
    return d[k]


def _field_int(entry, field, where, lo, hi):
    # A required whole-number field of one table, named in full ("steps[2].rate_ug_per_day").
    return _int(_need(entry, field, where), where + "." + field, lo, hi)


def _timed_entry(list_name, i, entry, allowed, time_field):
    # Entry i of a list of timed tables: where it is (for messages), its fields checked, and
    # its time of day in minutes.
    where = "%s[%d]" % (list_name, i)
    _keys(entry, allowed, where)
    return where, parse_hhmm(_need(entry, time_field, where), where + "." + time_field)


def parse_hhmm(s, what):
    """"HH:MM" (24 h, minute resolution) -> minute of day 0..1439."""
    # s[2:3], not s[2]: one character of a str is an interned name MicroPython never frees.
    if not isinstance(s, str) or len(s) != 5 or s[2:3] != ":" \
            or not (s[0:2].isdigit() and s[3:5].isdigit()):
        _bad('%s must be a time "HH:MM", got %s' % (what, _show(s)))
    h = int(s[0:2])
    m = int(s[3:5])
    if h > 23 or m > 59:
        _bad('%s %s is not a time of day (00:00..23:59)' % (what, s))
    return h * 60 + m


def _overrides(d):
    ov = d.get("overrides", [])
    if not isinstance(ov, (list, tuple)):
        _bad("overrides must be a list of names, got %s" % _show(ov))
    seen = []
    for o in ov:
        if not isinstance(o, str) or o not in OVERRIDES:
            _bad("overrides: %s is not a soft-limit override (known: %s)"
                 % (_show(o), ", ".join(OVERRIDES)))
        if o in seen:
            _bad("overrides: %s is listed twice" % o)
        seen.append(o)
    return seen


def _steps(d):
    raw = _need(d, "steps", "a flex program")
    if not isinstance(raw, (list, tuple)) or not raw:
        _bad("steps must be a non-empty list of {start, rate_ug_per_day}")
    if len(raw) > _MAX_STEPS:
        _bad("steps has %d entries; at most %d are allowed" % (len(raw), _MAX_STEPS))
    out = []
    prev = -1
    for i in range(len(raw)):
        where, start = _timed_entry("steps", i, raw[i], _STEP_KEYS, "start")
        rate = _field_int(raw[i], "rate_ug_per_day", where, 0, 2 ** 29)
        if i == 0 and start != 0:
            _bad("steps[0].start must be 00:00 so the profile covers the whole day, got %s"
                 % hhmm(start))
        if start <= prev:
            _bad("%s.start %s must be later than the previous step (%s)"
                 % (where, hhmm(start), hhmm(prev)))
        prev = start
        out.append((start, rate))
    return tuple(out)


def _periodic(d):
    raw = d.get("periodic_boluses", [])
    if not isinstance(raw, (list, tuple)):
        _bad("periodic_boluses must be a list of {time, dose_ug, duration_min}")
    if len(raw) > _MAX_PERIODIC:
        _bad("periodic_boluses has %d entries; at most %d are allowed"
             % (len(raw), _MAX_PERIODIC))
    out = []
    for i in range(len(raw)):
        where, t = _timed_entry("periodic_boluses", i, raw[i], _PERIODIC_KEYS, "time")
        dose = _field_int(raw[i], "dose_ug", where, 1, 2 ** 29)
        dur = _field_int(raw[i], "duration_min", where, 1, _MAX_BOLUS_MIN)
        if out and t <= out[-1][0]:
            _bad("%s.time %s must be later than the previous periodic bolus (%s)"
                 % (where, hhmm(t), hhmm(out[-1][0])))
        if out and out[-1][0] + out[-1][2] > t:
            _bad("%s at %s starts before the previous periodic bolus (%s, %d min) ends"
                 % (where, hhmm(t), hhmm(out[-1][0]), out[-1][2]))
        out.append((t, dose, dur))
    # The last bolus may run past midnight but must end before the first one starts again.
    if len(out) > 1 and out[-1][0] + out[-1][2] > out[0][0] + _DAY_MIN:
        _bad("periodic_boluses[%d] at %s runs past midnight into the bolus at %s"
             % (len(out) - 1, hhmm(out[-1][0]), hhmm(out[0][0])))
    return tuple(out)


def _patient(d):
    p = d.get("patient_bolus")
    if p is None:
        return None
    where = "patient_bolus"
    _keys(p, _PATIENT_KEYS, where)
    dose = _field_int(p, "dose_ug", where, 1, 2 ** 29)
    dur = _field_int(p, "duration_min", where, 1, _MAX_BOLUS_MIN)
    max_per_24h = _field_int(p, "max_per_24h", where, 1, _MAX_PER_24H)
    lockout_min = _field_int(p, "lockout_min", where, 1, _MAX_LOCKOUT_MIN)
    if lockout_min < dur:
        _bad("patient_bolus.lockout_min %d is shorter than its duration_min %d: boluses would "
             "overlap" % (lockout_min, dur))
    return (dose, dur, max_per_24h, lockout_min)


class _Limits:
    # Runs the library checks: hard limits raise at once, soft ones are collected and settled
    # after every hard limit has passed, so the clinician hears about the worst problem first.
    def __init__(self, library, drug, overrides):
        self.library = library
        self.drug = drug
        self.overrides = overrides
        self.soft = []

    def check(self, limit, value, what):
        self.library.check(self.drug, limit, value, None, what, self.soft)

    def settle(self):
        used = []
        for name, msg in self.soft:
            if name not in self.overrides:
                raise Refusal("SOFT_LIMIT", msg)
            if name not in used:
                used.append(name)
        # Report in the documented order, whatever order the checks ran in.
        return tuple(o for o in OVERRIDES if o in used)


def parse(d, library):
    """Validate a program dict against the drug library; return a Program or raise
    Refusal (codes BAD_PROGRAM, UNKNOWN_DRUG, BAD_CONCENTRATION, HARD_LIMIT, SOFT_LIMIT).
    `library` is core.druglib (or a druglib.Library)."""
    _keys(d, _KEYS, "the program")
    drug = _need(d, "drug", "the program")
    if not isinstance(drug, str):
        _bad("drug must be a name, got %s" % _show(drug))
    entry = library.get(drug)  # UNKNOWN_DRUG
    conc = _need(d, "concentration_ug_per_ml", "the program")
    if type(conc) is not int or conc not in entry["concs"]:
        raise Refusal("BAD_CONCENTRATION",
                      "concentration_ug_per_ml %s is not allowed for %s (allowed: %s µg/mL)"
                      % (_show(conc), drug, ", ".join([str(c) for c in entry["concs"]])))
    mode = _need(d, "mode", "the program")
    if mode not in MODES:
        _bad("mode must be one of %s, got %s" % (", ".join(MODES), _show(mode)))
    overrides = _overrides(d)

    if mode == MODE_STOPPED:
        for k in ("rate_ug_per_day", "steps", "min_rate_ug_per_day", "periodic_boluses",
                  "patient_bolus"):
            if k in d:
                _bad("a stopped program takes no %s" % k)
        return Program(drug, conc, mode, ((0, 0),), (), 0, None, ())

    if mode == MODE_CONTINUOUS:
        if "steps" in d:
            _bad("a continuous program takes rate_ug_per_day, not steps (use mode flex)")
        rate = _int(_need(d, "rate_ug_per_day", "a continuous program"), "rate_ug_per_day",
                    1, 2 ** 29)
        steps = ((0, rate),)
    else:
        if "rate_ug_per_day" in d:
            _bad("a flex program takes steps, not rate_ug_per_day (use mode continuous)")
        steps = _steps(d)
    min_rate = _int(d.get("min_rate_ug_per_day", 0), "min_rate_ug_per_day", 0, 2 ** 29)
    periodic = _periodic(d)
    patient = _patient(d)

    lim = _Limits(library, drug, overrides)
    for i in range(len(steps)):
        what = "rate_ug_per_day" if mode == MODE_CONTINUOUS else "steps[%d].rate_ug_per_day" % i
        lim.check("rate", steps[i][1], what)
    lim.check("rate", min_rate, "min_rate_ug_per_day")
    for i in range(len(periodic)):
        lim.check("bolus", periodic[i][1], "periodic_boluses[%d].dose_ug" % i)
    if patient is not None:
        lim.check("pbolus", patient[0], "patient_bolus.dose_ug")
        lim.check("pcount", patient[2], "patient_bolus.max_per_24h")
    prog = Program(drug, conc, mode, steps, periodic, min_rate, patient, ())
    lim.check("daily", prog.daily_total_ug(), "daily dose")
    # Every source together must fit the rolling 24 h maximum, or the pump would refuse
    # boluses it was programmed to give. No override: this is the last line.
    max24 = entry["max24_ug"]
    worst = prog.worst_case_daily_ug()
    if worst > max24:
        raise Refusal("HARD_LIMIT",
                      "worst-case daily dose %d µg (program %d µg + every patient bolus) "
                      "exceeds the 24 h maximum of %d µg for %s"
                      % (worst, prog.daily_total_ug(), max24, drug))
    prog.overrides_used = lim.settle()
    return prog


def continuous_dict(drug, conc, rate):
    """The program dict of a simple continuous program (feed it to parse)."""
    return {"drug": drug, "concentration_ug_per_ml": conc, "mode": MODE_CONTINUOUS,
            "rate_ug_per_day": rate}


def continuous(drug, conc, rate, library, overrides=()):
    """A validated simple continuous Program (raises Refusal like parse)."""
    d = continuous_dict(drug, conc, rate)
    d["overrides"] = list(overrides)
    return parse(d, library)


def stopped(drug, conc, library):
    """A validated stopped Program: no delivery."""
    return parse({"drug": drug, "concentration_ug_per_ml": conc, "mode": MODE_STOPPED}, library)
