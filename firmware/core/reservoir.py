# Reservoir accounting: what the pump believes is left, computed from the steps it commanded.
# Like the real pump, the computed volume is not measured: a head that moves more than its
# calibration says runs dry before the low-reservoir alarm (see docs/alarms.md).
from core.base import const, Refusal

# Pump models (mL): the older 10 mL, and current 20 mL and 40 mL reservoirs.
MODELS = (10, 20, 40)
DEFAULT_LOW_UL = const(2000)
_NL_PER_ML = const(1_000_000)


class Reservoir:
    def __init__(self, model_ml=20):
        if model_ml not in MODELS:
            raise Refusal("RANGE", "pump model must be one of 10, 20 or 40 mL, not %r" % (model_ml,))
        self.model_ml = model_ml
        self.capacity_nl = model_ml * _NL_PER_ML  # <= 4e7
        self.volume_nl = 0
        self.pl = 0  # pL below one nL, [0, 1000)
        self.low_nl = DEFAULT_LOW_UL * 1000

    def fill(self, volume_ul):
        if not isinstance(volume_ul, int) or volume_ul < 0:
            raise Refusal("RANGE", "fill volume must be a whole number of µL, >= 0")
        if volume_ul * 1000 > self.capacity_nl:
            raise Refusal(
                "OVERFILL",
                "%d µL would overfill the %d mL reservoir" % (volume_ul, self.model_ml),
            )
        self.volume_nl = volume_ul * 1000
        self.pl = 0

    def take(self, steps, nl_per_step, pl_per_step_rem):
        """Remove up to `steps` steps; return how many fit. Allocation-free.

        The calibration arrives split (nL + pL remainder) so no product passes 2**30.
        """
        if steps <= 0:
            return 0
        need_nl = steps * nl_per_step
        need_pl = self.pl - steps * pl_per_step_rem  # may go negative: borrow nL
        borrow = 0
        if need_pl < 0:
            borrow = (-need_pl + 999) // 1000
            need_pl += borrow * 1000
        if need_nl + borrow <= self.volume_nl:
            self.volume_nl -= need_nl + borrow
            self.pl = need_pl
            return steps
        # Not enough for all: the rare path at empty, one step at a time.
        n = 0
        while n < steps and self._take_one(nl_per_step, pl_per_step_rem):
            n += 1
        return n

    def _take_one(self, nl, pl):
        p = self.pl - pl
        b = 0
        if p < 0:
            b = 1
            p += 1000
        if nl + b > self.volume_nl:
            return False
        self.volume_nl -= nl + b
        self.pl = p
        return True

    def empty(self, nl_per_step, pl_per_step_rem):
        """True when not even one more step is left."""
        need = nl_per_step + (1 if pl_per_step_rem > self.pl else 0)
        return self.volume_nl < need

    def low(self):
        return self.volume_nl <= self.low_nl

    def volume_ul(self):
        return self.volume_nl // 1000

    def state(self):
        return [self.model_ml, self.volume_nl, self.pl, self.low_nl]

    def restore(self, st):
        self.__init__(st[0])
        self.volume_nl, self.pl, self.low_nl = st[1], st[2], st[3]
