# A volume run: priming and calibration runs move volume, not dose, so they have their own
# integrator counting steps per day (one "ng" of it is one step) and never touch the dose
# counters. Each run carries its completion flag and the stop reason it leaves behind when the
# pump was stopped before it began. advance() allocates nothing: it runs inside the tick.
from core.engine import RateIntegrator, Q_PER_NG


class VolumeRun:
    def __init__(self):
        self.integrator = RateIntegrator()
        self.steps_left = 0
        self.remainder_q = 0  # integrator quanta below one whole step
        self.was_stopped = False  # the pump stops again when the run is done
        self.done_reason = ""
        self.done_flag = 0  # which run it is: core.pump.FLAG_PRIME_DONE or FLAG_CALIBRATION_RUN_DONE

    def start(self, steps, duration_min, was_stopped, done_reason, done_flag):
        self.integrator.set_rate(steps * 1440 // duration_min or 1)
        self.integrator.remainder_units = 0
        self.remainder_q = 0
        self.steps_left = steps
        self.was_stopped = was_stopped
        self.done_reason = done_reason + "; not resumed"
        self.done_flag = done_flag

    def cancel(self):
        self.steps_left = 0
        self.integrator.set_rate(0)

    def advance(self, seg_ms):
        """Steps due over seg_ms; the run ends (steps_left 0, rate 0) on its last one."""
        q = self.remainder_q + self.integrator.advance(seg_ms)
        n = q // Q_PER_NG
        self.remainder_q = q - n * Q_PER_NG
        if n >= self.steps_left:
            n = self.steps_left
            self.cancel()
        else:
            self.steps_left -= n
        return n

    def ms_to_next_step(self):
        return self.integrator.ms_to_q(Q_PER_NG - self.remainder_q)
