# The ranges of what a programmer may ask of the pump, checked here and nowhere else.
#
# The pump's requests call these before they change anything; the command layer only decodes
# and types, and calls them first where a range must be refused before anything else is asked
# (the drug library's limits, the distance from the last calibration). Each sentence is in the
# units the programmer gives.
from core.base import const, Refusal
from core.engine import MAX_RATE

MAX_BOLUS_UG = const(600)
_MAX_BOLUS_MIN = const(1440)
MIN_PL_PER_STEP = const(100)  # calibration range: the tick's products stay small within it
MAX_PL_PER_STEP = const(1_000_000)
_MAX_PRIME_MIN = const(240)
_MAX_TUBING_NL = const(2_000_000)
_MAX_CATHETER_CM = const(500)
_MAX_CATHETER_NL_PER_CM = const(50_000)
_MAX_LOW_UL = const(10_000)
_MAX_STOPPED_ALARM_H = const(168)
_MAX_RUN_STEPS = const(400_000)
_MAX_RUN_MIN = const(240)
_DAY_LIMIT = const(1 << 20)  # wall-clock days since 2000-01-01 stay below this (2870 years)
_DAY_MS = const(86_400_000)
_OVERDRAW_UL = const(5000)  # a withdrawal may read more than the reservoir holds (syringe dead space)


def check_bolus_size(dose_ug, duration_min):
    """Refuse a bolus dose or duration outside what the pump delivers; changes nothing."""
    if type(dose_ug) is not int or dose_ug <= 0 or dose_ug > MAX_BOLUS_UG:
        raise Refusal("RANGE", "a bolus dose must be 1..%d µg, not %r" % (MAX_BOLUS_UG, dose_ug))
    if type(duration_min) is not int or duration_min < 1 or duration_min > _MAX_BOLUS_MIN:
        raise Refusal("RANGE", "a bolus duration must be 1..%d minutes, not %r" % (_MAX_BOLUS_MIN, duration_min))


def check_calibration(pl_per_step):
    """Refuse a volume per step outside the range the engine's arithmetic is proven for."""
    if type(pl_per_step) is not int or pl_per_step < MIN_PL_PER_STEP or pl_per_step > MAX_PL_PER_STEP:
        raise Refusal("RANGE", "calibration must be %d..%d pL per step, not %r"
                      % (MIN_PL_PER_STEP, MAX_PL_PER_STEP, pl_per_step))


def check_prime_duration(duration_min):
    """Refuse a priming duration the volume integrator is not given; changes nothing."""
    if type(duration_min) is not int or not 1 <= duration_min <= _MAX_PRIME_MIN:
        raise Refusal("RANGE", "priming duration must be 1..%d minutes" % _MAX_PRIME_MIN)


def check_calibration_run(steps, duration_min, pl_per_step):
    """Refuse a calibration run the volume integrator cannot move: 1..400000 steps in 1..240
    minutes, no faster than its top rate (the sentence says how long the run needs)."""
    if type(steps) is not int or not 1 <= steps <= _MAX_RUN_STEPS:
        raise Refusal("RANGE", "a calibration run must be 1..%d steps, not %r" % (_MAX_RUN_STEPS, steps))
    if type(duration_min) is not int or not 1 <= duration_min <= _MAX_RUN_MIN:
        raise Refusal("RANGE", "a calibration run must last 1..%d minutes, not %r" % (_MAX_RUN_MIN, duration_min))
    fastest = MAX_RATE // 1440  # steps a minute the volume integrator takes
    if steps > fastest * duration_min:
        raise Refusal("RANGE", "a run of %d µL (%d steps) in %d min is faster than the pump moves "
                               "(at most %d steps a minute): give it at least %d minutes"
                      % (steps * pl_per_step // 1_000_000, steps, duration_min, fastest, -(-steps // fastest)))


def check_day(day, what="the clock's day"):
    """Refuse a wall-clock day outside what the clock keeps; changes nothing."""
    if type(day) is not int or not 0 <= day < _DAY_LIMIT:
        raise Refusal("RANGE", "%s must be 0..%d (days since 2000-01-01), not %r" % (what, _DAY_LIMIT - 1, day))


def check_wall(day, ms):
    """Refuse a wall-clock time (day since 2000-01-01, ms of day) the clock cannot take."""
    check_day(day)
    if type(ms) is not int or not 0 <= ms < _DAY_MS:
        raise Refusal("RANGE", "the clock's time of day must be 0..%d ms, not %r" % (_DAY_MS - 1, ms))


def check_catheter(tubing_nl, length_cm, nl_per_cm):
    """Refuse a pump tubing volume, catheter length or volume per cm out of range (all three
    checked before the caller keeps any)."""
    if type(tubing_nl) is not int or not 0 <= tubing_nl <= _MAX_TUBING_NL:
        raise Refusal("RANGE", "the tubing volume must be 0..%d µL, not %r" % (
            _MAX_TUBING_NL // 1000, tubing_nl // 1000 if type(tubing_nl) is int else tubing_nl))
    if type(length_cm) is not int or not 0 <= length_cm <= _MAX_CATHETER_CM:
        raise Refusal("RANGE", "the catheter length must be 0..%d cm, not %r" % (_MAX_CATHETER_CM, length_cm))
    if type(nl_per_cm) is not int or not 0 <= nl_per_cm <= _MAX_CATHETER_NL_PER_CM:
        raise Refusal("RANGE", "the catheter volume per cm must be 0..%d nL, not %r" % (_MAX_CATHETER_NL_PER_CM, nl_per_cm))


def check_settings(low_ul, stopped_alarm_h, reservoir):
    """Refuse a low-reservoir threshold (µL, below the reservoir's size) or a stopped-pump
    alarm time (h) out of range; None means "not given"."""
    if low_ul is not None and (type(low_ul) is not int or not 0 <= low_ul <= _MAX_LOW_UL
                               or low_ul * 1000 >= reservoir.capacity_nl):
        raise Refusal("RANGE", "the low-reservoir threshold must be 0..%d µL and below the %d mL "
                               "reservoir, not %r" % (_MAX_LOW_UL, reservoir.model_ml, low_ul))
    h = stopped_alarm_h
    if h is not None and (type(h) is not int or not 1 <= h <= _MAX_STOPPED_ALARM_H):
        raise Refusal("RANGE", "the stopped-pump alarm must be 1..%d h, not %r" % (_MAX_STOPPED_ALARM_H, h))


def check_refill(withdrawn_ul, new_volume_ul, reservoir):
    """Refuse a refill's withdrawn volume or new volume (µL) out of range; the reservoir's own
    fill check (overfill) runs on a scratch reservoir after this."""
    top = reservoir.capacity_nl // 1000
    if type(withdrawn_ul) is not int or withdrawn_ul < 0 or withdrawn_ul > top + _OVERDRAW_UL:
        raise Refusal("RANGE", "withdrawn volume must be 0..%d µL" % (top + _OVERDRAW_UL))
    if type(new_volume_ul) is int and new_volume_ul < 1:
        raise Refusal("RANGE", "a refill must put in 1..%d µL, not %d µL" % (top, new_volume_ul))
