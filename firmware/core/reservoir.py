# Reservoir accounting: what the pump believes is left, computed from the steps it commanded.
# Like the real pump, the computed volume is not measured: a head that moves more than its
# calibration says runs dry before the low-reservoir alarm (see docs/alarms.md).
from core.base import const, Refusal

# Pump models (mL): the older 10 mL, and current 20 mL and 40 mL reservoirs.
MODELS = (10, 20, 40)
DEFAULT_LOW_UL = const(2000)
_NL_PER_ML = const(1_000_000)
_OVER_WITHDRAWN_UL = const(5000)  # a syringe may draw out more than the pump believed was left
# Refill mismatch thresholds by pump model (DOMAIN.md: about 1 mL for 20 mL, 2 mL for 40 mL).
_MISMATCH_UL = {10: 500, 20: 1000, 40: 2000}


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

    def refill(self, withdrawn_ul, new_volume_ul):
        """Empty-and-refill: compare the withdrawn volume with what the pump expects, then take
        the new volume, keeping the low threshold. Returns (expected_ul, mismatch_ul, warn).
        Overfill is refused before anything changes."""
        most_ul = self.capacity_nl // 1000 + _OVER_WITHDRAWN_UL
        if type(withdrawn_ul) is not int or withdrawn_ul < 0 or withdrawn_ul > most_ul:
            raise Refusal("RANGE", "withdrawn volume must be 0..%d µL" % most_ul)
        if type(new_volume_ul) is int and new_volume_ul < 1:
            raise Refusal("RANGE", "a refill must put in 1..%d µL, not %d µL" % (self.capacity_nl // 1000, new_volume_ul))
        Reservoir(self.model_ml).fill(new_volume_ul)  # refuses (raises) before any change
        expected = self.volume_ul()
        mismatch = withdrawn_ul - expected
        warn = abs(mismatch) > _MISMATCH_UL[self.model_ml]
        low = self.low_nl
        self.fill(new_volume_ul)
        self.low_nl = low
        return expected, mismatch, warn

    def forecast(self, ug_per_day, conc, day):
        """Days until the low threshold and until empty at ug_per_day (> 0) of a drug at conc
        µg/mL, with the wall-clock days (since 2000-01-01) they fall on, counted from day."""
        nl_day = ug_per_day * 1_000_000 // conc
        vol = self.volume_nl
        low = vol - self.low_nl
        return {"daily_ug_worst": ug_per_day, "daily_ul_worst": nl_day // 1000,
                "days_to_low": low // nl_day if low > 0 else 0, "days_to_empty": vol // nl_day,
                "low_day": day + (low // nl_day if low > 0 else 0), "empty_day": day + vol // nl_day}

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
