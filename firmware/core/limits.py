# The ranges of what a programmer may ask of the pump, checked here and nowhere else: the
# command layer only decodes and types, and calls these first where a range must be refused
# before anything else is asked (the drug library's limits, the distance from the last
# calibration). Each refuses with a sentence in the user's units and changes nothing.
# core.pump re-exports them; the catheter's and the wall clock's ranges live with their objects.
from core.base import const, Refusal
from core.engine import MAX_RATE

MAX_BOLUS_UG = const(600)
_MAX_BOLUS_MIN = const(1440)
MIN_PL_PER_STEP = const(100)  # calibration range: the tick's products stay small within it
MAX_PL_PER_STEP = const(1_000_000)
_MAX_PRIME_MIN = const(240)
_MAX_RUN_STEPS = const(400_000)
_MAX_RUN_MIN = const(240)
_MIN_STOPPED_ALARM_H = const(1)
_MAX_STOPPED_ALARM_H = const(168)


def check_bolus_size(dose_ug, duration_min):
    """Refuse a bolus dose or duration outside what the pump delivers."""
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
    """Refuse a priming duration the volume integrator is not given."""
    if type(duration_min) is not int or not 1 <= duration_min <= _MAX_PRIME_MIN:
        raise Refusal("RANGE", "priming duration must be 1..%d minutes" % _MAX_PRIME_MIN)


def check_stopped_alarm_h(hours):
    """Refuse a stopped-pump alarm time outside 1..168 h."""
    if type(hours) is not int or not _MIN_STOPPED_ALARM_H <= hours <= _MAX_STOPPED_ALARM_H:
        raise Refusal("RANGE", "the stopped-pump alarm must be %d..%d h, not %r"
                      % (_MIN_STOPPED_ALARM_H, _MAX_STOPPED_ALARM_H, hours))


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
