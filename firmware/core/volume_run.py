# A volume run: so many motor steps over so long, as volume rather than dose (priming the
# line, a calibration run for weighing). Each run carries its own completion: the condition
# flag the app logs and the stop reason a pump that was stopped returns to.
#
# Allocation-free after construction: advance() runs inside the control tick.
from core.base import const
from core.engine import RateIntegrator, Q_PER_NG

_FAR_STEPS = const(6000)  # 6000 steps x 1600 quanta x 54 units stays below 2**29


class VolumeRun:
    def __init__(self):
        self.rate = RateIntegrator()  # in steps/day: one "ng" of its quanta is one step
        self.steps_left = 0
        self._q = 0  # quanta below one step
        self.was_stopped = False  # the pump stops again when the run ends
        self.done_reason = ""
        self.done_flag = 0

    def start(self, steps, duration_min, done_reason, done_flag, was_stopped):
        """Move `steps` over `duration_min` (the pump's limits checked both)."""
        self.rate.set_rate(steps * 1440 // duration_min or 1)
        self.rate.remainder_units = 0
        self._q = 0
        self.steps_left = steps
        self.was_stopped = was_stopped
        self.done_reason = done_reason + "; not resumed"
        self.done_flag = done_flag

    def cancel(self):
        self.steps_left = 0
        self.rate.set_rate(0)

    def advance(self, seg_ms):
        """Steps due over seg_ms, never more than are left; the run ends at its last step
        (steps_left 0 after a non-zero return)."""
        q = self._q + self.rate.advance(seg_ms)
        n = q // Q_PER_NG
        self._q = q - n * Q_PER_NG
        if n >= self.steps_left:
            n = self.steps_left
            self.cancel()
        else:
            self.steps_left -= n
        return n

    def dry_steps(self, seg_ms):
        """The steps advance(seg_ms) would return, changing nothing (a motor batch's plan)."""
        n = (self._q + self.rate.advance(seg_ms, False)) // Q_PER_NG
        return n if n < self.steps_left else self.steps_left

    def ms_to_end(self):
        """ms until the run's last step, or a shorter time when that is too far to compute in
        small ints (a batch then ends early and the next one goes on)."""
        left = self.steps_left if self.steps_left < _FAR_STEPS else _FAR_STEPS
        return self.rate.ms_to_q(left * Q_PER_NG - self._q)
