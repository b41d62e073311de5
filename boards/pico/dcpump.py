# Alternative motor: a DC peristaltic pump switched by a logic-level MOSFET on PWM.
# A DC pump has no steps, so one "step" is a fixed slice of run time (slice_ms): the firmware's
# calibration in pL per step becomes pL per slice, measured by running for a known time and
# weighing (docs/hardware.md). A one-shot machine.Timer switches the pump off: no Python loop
# times the run. Same contract as Stepper (enable / move / stalled / busy).
from micropython import const
import time
from machine import Pin, PWM, Timer
from pico.irq import interrupted

_PWM_HZ = const(20000)        # above hearing, fine for a small brushed motor
_MAX_RUN_MS = const(86400000)  # one move may run at most a day


class DcPump:
    def __init__(self, pwm_pin, slice_ms=100, duty_u16=52000, ticks_ms=None):
        if not isinstance(slice_ms, int) or not 1 <= slice_ms <= 60000:
            raise ValueError("slice_ms must be an int in 1..60000, got %r" % (slice_ms,))
        if not isinstance(duty_u16, int) or not 1 <= duty_u16 <= 65535:
            raise ValueError("duty_u16 must be an int in 1..65535, got %r" % (duty_u16,))
        self._pwm = PWM(Pin(pwm_pin), freq=_PWM_HZ, duty_u16=0)
        self._slice = slice_ms
        self._duty = duty_u16
        self._ticks = ticks_ms if ticks_ms is not None else time.ticks_ms
        self._timer = Timer(-1)
        self._running = False
        self._end = self._ticks()
        self._stop_cb = self._stop  # made once: the timer callback must not allocate

    def _stop(self, t):
        try:
            self._pwm.duty_u16(0)
        except KeyboardInterrupt:
            self._pwm.duty_u16(0)
            interrupted.set()  # Ctrl-C landed in the handler: pico/irq.py hands it on
        self._running = False

    def slice_ms(self):
        return self._slice

    def enable(self, on):
        # Moves need no arming; enable(False) stops a run in progress.
        if not on:
            self._timer.deinit()
            self._stop(None)

    def move(self, steps):
        """Run for steps * slice_ms more milliseconds (added to a run in progress)."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError("steps must be an int >= 0, got %r" % (steps,))
        if steps > _MAX_RUN_MS // self._slice:
            raise ValueError("move of %d slices runs over a day" % steps)
        if steps == 0:
            return
        now = self._ticks()
        run = steps * self._slice
        if self._running:
            left = time.ticks_diff(self._end, now)
            if left > 0:
                run += left
        if run > _MAX_RUN_MS:
            raise ValueError("queued run over a day")
        self._end = time.ticks_add(now, run)
        self._running = True
        self._timer.init(mode=Timer.ONE_SHOT, period=run, callback=self._stop_cb)
        self._pwm.duty_u16(self._duty)

    def busy(self):
        return self._running

    def stalled(self):
        return False  # no sensor; a scale can still see a dry or blocked line
