# Pump tubing and catheter: the dead volume a priming bolus fills and a concentration bridge
# flushes. The ranges are checked here and nowhere else, all three before any is kept.
from core.base import const, Refusal

_MAX_TUBING_NL = const(2_000_000)
_MAX_CATHETER_CM = const(500)
_MAX_CATHETER_NL_PER_CM = const(50_000)


def check_catheter(tubing_nl, length_cm, nl_per_cm):
    """Refuse catheter settings outside their ranges; sentences in the units a programmer
    gives (µL of tubing, cm, nL per cm). Changes nothing."""
    if type(tubing_nl) is not int or not 0 <= tubing_nl <= _MAX_TUBING_NL:
        raise Refusal("RANGE", "the tubing volume must be 0..%d µL, not %r" % (
            _MAX_TUBING_NL // 1000, tubing_nl // 1000 if type(tubing_nl) is int else tubing_nl))
    if type(length_cm) is not int or not 0 <= length_cm <= _MAX_CATHETER_CM:
        raise Refusal("RANGE", "the catheter length must be 0..%d cm, not %r" % (_MAX_CATHETER_CM, length_cm))
    if type(nl_per_cm) is not int or not 0 <= nl_per_cm <= _MAX_CATHETER_NL_PER_CM:
        raise Refusal("RANGE", "the catheter volume per cm must be 0..%d nL, not %r" % (_MAX_CATHETER_NL_PER_CM, nl_per_cm))


def catheter_values(catheter):
    """(tubing_nl, length_cm, nl_per_cm) checked, as a tuple; refuses anything else."""
    if not isinstance(catheter, (tuple, list)) or len(catheter) != 3:
        raise Refusal("RANGE", "the catheter settings are tubing (nL), length (cm) and volume per cm (nL)")
    check_catheter(catheter[0], catheter[1], catheter[2])
    return catheter[0], catheter[1], catheter[2]


def dead_volume_nl(tubing_nl, length_cm, nl_per_cm):
    return tubing_nl + length_cm * nl_per_cm


def steps_for_nl(volume_nl, pl_per_step):
    """The nearest whole number of steps that moves volume_nl at this calibration."""
    return (volume_nl * 1000 + pl_per_step // 2) // pl_per_step


class Catheter:
    def __init__(self):
        self.tubing_nl = 0
        self.length_cm = 0
        self.nl_per_cm = 0

    def set(self, tubing_nl, length_cm, nl_per_cm):
        check_catheter(tubing_nl, length_cm, nl_per_cm)
        self.tubing_nl, self.length_cm, self.nl_per_cm = tubing_nl, length_cm, nl_per_cm

    def dead_volume_nl(self):
        return dead_volume_nl(self.tubing_nl, self.length_cm, self.nl_per_cm)

    def to_state(self):
        return [self.tubing_nl, self.length_cm, self.nl_per_cm]

    def from_state(self, st):
        self.set(st[0], st[1], st[2])
