# Alternative motor: a DC peristaltic pump switched by a logic-level MOSFET on PWM.
# A DC pump has no steps, so one "step" is a fixed slice of run time (slice_ms): the firmware's
# calibration in pL per step becomes pL per slice, measured by running for a known time and
# weighing (docs/hardware.md). Same contract as Stepper (move / left / enable / stalled / busy /
# stall_flag); a one-shot machine.Timer switches the pump at each edge, no Python loop times it.
#
# move(n, over_ms) runs the pump n * slice_ms in all. When over_ms is longer, the slices are
# spread: period P = over_ms // n ms, slice i (1..n) runs from i * P - slice_ms to i * P after
# the batch starts (the first after one gap, the last ending by over_ms). Otherwise the n
# slices run back to back at once. A batch queued while another runs starts when it ends.
#
# Limits, honestly:
# - Times are whole ms of machine.Timer. Slice starts keep to the batch's grid (no drift); a
#   late timer callback delays a slice's start but never shortens it: each runs slice_ms.
# - left() counts a slice as delivered when it starts: an abort mid-slice leaves it counted,
#   so a re-plan never runs it twice (under- rather than over-delivery, by < one slice).
# - The callback is a hard timer IRQ (a soft one could run inside move() or left(), which
#   disable_irq does not hold off); it allocates nothing.
# - The flow of a brushed pump depends on load and supply: only calibration ties time to
#   volume. There is no stall detection: stalled() is always False and stall_flag is never
#   set (a scale can still see a dry or blocked line).
from micropython import const
import asyncio
import time
import machine
from machine import Pin, PWM, Timer
from pico.irq import interrupted

_PWM_HZ = const(20000)        # above hearing, fine for a small brushed motor
_MAX_RUN_MS = const(86400000)  # one batch runs or spreads over a day at most
_SLOTS = const(4)             # batches queued or running (a power of two)
_SLOT_MASK = const(3)


def _int_in(v, lo, hi, what):
    # The stepper has the same check; a DC board does not load the stepper for it.
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s must be an int in %d..%d, got %r" % (what, lo, hi, v))
    return v


class DcPump:
    def __init__(self, pwm_pin, slice_ms=100, duty_u16=52000, ticks_ms=None):
        _int_in(slice_ms, 1, 60000, "slice_ms")
        _int_in(duty_u16, 1, 65535, "duty_u16")
        self._pwm = PWM(Pin(pwm_pin), freq=_PWM_HZ, duty_u16=0)
        self._slice = slice_ms
        self._duty = duty_u16
        self._ticks = ticks_ms if ticks_ms is not None else time.ticks_ms
        self._timer = Timer(-1)
        self.stall_flag = asyncio.ThreadSafeFlag()  # the contract's; nothing sets it
        # Queued batches, the running one at _head: a ring made once (no allocation later).
        self._cnt = [0] * _SLOTS   # slices
        self._per = [0] * _SLOTS   # ms per slice, >= slice_ms (== slice_ms: back to back)
        self._head = 0
        self._len = 0
        self._queued = 0           # slices of the batches behind the running one
        self._t0 = self._ticks()   # ticks_ms the running batch started
        self._k = 0                # its slices started so far
        self._on = False
        self._on_at = self._t0     # ticks_ms the pump last switched on
        self._off_at = self._t0    # ticks_ms it switches off
        self._edge_cb = self._edge  # made once: the timer callback must not allocate

    # --- timer callback: small ints, list slots, a PWM write and a timer re-arm only.
    def _edge(self, t):
        try:
            self._run(self._ticks())
        except KeyboardInterrupt:
            self._pwm.duty_u16(0)
            self._on = False
            interrupted.set()  # Ctrl-C landed in the handler: pico/irq.py hands it on

    def _run(self, now):
        # Take every edge due by `now`, then arm the timer for the next one. The PWM is
        # written once at the end, so back-to-back slices and batches never blink off.
        was = self._on
        s = self._slice
        while self._len:
            h = self._head
            n = self._cnt[h]
            p = self._per[h]
            if self._on:
                wait = time.ticks_diff(self._off_at, now)
                if wait > 0:
                    break
                self._on = False
                if self._k < n:
                    continue
                # The batch is over; one queued behind starts now.
                self._head = (h + 1) & _SLOT_MASK
                self._len -= 1
                if self._len:
                    self._queued -= self._cnt[self._head]
                    self._t0 = self._off_at
                    self._k = 0
                continue
            wait = time.ticks_diff(time.ticks_add(self._t0, (self._k + 1) * p - s), now)
            if wait > 0:
                break
            # A slice starts (its full length from now); back to back: all that are left.
            self._on = True
            self._on_at = now
            if p == s:
                self._off_at = time.ticks_add(now, (n - self._k) * s)
                self._k = n
            else:
                self._off_at = time.ticks_add(now, s)
                self._k += 1
        if self._len:
            self._timer.init(mode=Timer.ONE_SHOT, period=wait, callback=self._edge_cb, hard=True)
        else:
            self._timer.deinit()
        if self._on != was:
            self._pwm.duty_u16(self._duty if self._on else 0)

    def slice_ms(self):
        return self._slice

    def enable(self, on):
        # Moves need no arming; enable(False) stops the pump and drops every batch.
        if not on:
            st = machine.disable_irq()
            self._timer.deinit()
            self._pwm.duty_u16(0)
            self._on = False
            self._len = 0
            self._queued = 0
            machine.enable_irq(st)

    def move(self, steps, over_ms=0):
        """Queue `steps` slices (int >= 0, a day of run at most) spread over `over_ms` ms (int,
        0..86400000; 0 or no longer than the run: back to back). ValueError for bad
        arguments and RuntimeError when 4 batches already wait, and nothing changes."""
        _int_in(steps, 0, _MAX_RUN_MS // self._slice, "slices (a day of run at most)")
        _int_in(over_ms, 0, _MAX_RUN_MS, "over_ms")
        if steps == 0:
            return
        p = over_ms // steps
        if p < self._slice:
            p = self._slice
        st = machine.disable_irq()
        n = self._len
        if n == _SLOTS:
            machine.enable_irq(st)
            raise RuntimeError("pump queue full: %d batches wait" % _SLOTS)
        i = (self._head + n) & _SLOT_MASK
        self._cnt[i] = steps
        self._per[i] = p
        self._len = n + 1
        if n:
            self._queued += steps
            machine.enable_irq(st)
            return
        # Idle: no timer is armed, so nothing races the start.
        now = self._ticks()
        self._t0 = now
        self._k = 0
        self._on = False
        machine.enable_irq(st)
        self._run(now)

    def left(self):
        """Slices queued or running and not yet started (a running slice counts as done)."""
        st = machine.disable_irq()
        n = 0
        if self._len:
            h = self._head
            k = self._k
            if self._on and self._per[h] == self._slice:
                # Back to back: the slices of this stretch start one slice_ms apart.
                started = time.ticks_diff(self._ticks(), self._on_at) // self._slice + 1
                k = self._cnt[h] - (time.ticks_diff(self._off_at, self._on_at) // self._slice)
                k += started
                if k > self._cnt[h]:
                    k = self._cnt[h]
            n = self._queued + self._cnt[h] - k
        machine.enable_irq(st)
        return n

    def busy(self):
        return self._len > 0

    def stalled(self):
        return False  # no sensor; a scale can still see a dry or blocked line
