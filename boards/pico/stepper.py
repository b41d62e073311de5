# Stepper driver (A4988 / DRV8825 / TMC2209) in STEP/DIR/EN mode, pulses from PIO.
# Why PIO: pulse timing must not depend on the Python heap, GC pauses or asyncio latency, and
# the issue forbids Python step loops. Python only queues one 32-bit word per move (up to
# 65536 steps): the PIO counts the pulses and raises an IRQ when the move is done; the hard
# IRQ handler releases EN (driver off) when nothing is left to do.
#
# Contract used by firmware (board.motor; app.py calls enable(False) at start and then only
# move()):
#   move(steps)    adds `steps` forward steps to the work; EN is asserted at once and released
#                  by the PIO completion IRQ when everything asked for has been pulsed. Steps
#                  beyond what the 8-word FIFO holds wait in a backlog counter that the IRQ
#                  feeds in, so a fast caller never blocks and never loses steps.
#   enable(False)  aborts: drops the FIFO and the backlog, stops the PIO, releases EN.
#   enable(True)   clears a stall latch if DIAG is low again (moves need no arming).
#   stalled()      True after the TMC2209 DIAG pin rose. The stall IRQ releases EN at once and
#                  drops the backlog; move() is ignored until enable(True) clears the latch.
#   busy()         True while pulses are queued or running.
from micropython import const
import machine
from machine import Pin
import rp2
from pico.irq import interrupted

try:
    from typing_extensions import TYPE_CHECKING  # type: ignore
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from rp2.asm_pio import *  # noqa: F401,F403  (PIO DSL names for the type checker)

_SM_HZ = const(200000)      # state-machine clock: 5 us per cycle
_OVERHEAD = const(5)        # cycles per pulse beyond 2 * half (see the program)
_MAX_HALF = const(16383)    # keeps (half << 16) | count below 2**30: no big int on the Pico
_CHUNK = const(65536)       # steps per FIFO word
_FIFO_WORDS = const(8)      # TX FIFO joined: 8 words
_MAX_MOVE = const(1048576)  # one move: far above any bolus, keeps sums small
_MAX_BACKLOG = const(16777216)
MIN_RATE = const(7)         # steps/s: _SM_HZ // (2 * _MAX_HALF + _OVERHEAD) rounded up
MAX_RATE = const(20000)     # steps/s: far above what a pump head needs


@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW, out_shiftdir=rp2.PIO.SHIFT_RIGHT,
             fifo_join=rp2.PIO.JOIN_TX)
def step_program():
    # One FIFO word per move: low 16 bits = steps - 1, high bits = half-period in cycles.
    # Pulse period = 2 * half + 5 cycles (high: half + 2, low: half + 3).
    pull(block).side(0)
    out(x, 16).side(0)              # x = steps - 1; osr keeps the half-period
    label("pulse")
    mov(y, osr).side(1)             # STEP high
    label("high")
    jmp(y_dec, "high").side(1)
    mov(y, osr).side(0)             # STEP low
    label("low")
    jmp(y_dec, "low").side(0)
    jmp(x_dec, "pulse").side(0)
    irq(rel(0)).side(0)             # move done: tell Python


def half_for_rate(rate):
    """Half-period in PIO cycles for `rate` steps/s (int, MIN_RATE..MAX_RATE)."""
    if not isinstance(rate, int) or isinstance(rate, bool):
        raise ValueError("step rate must be an int, got %r" % (rate,))
    if rate < MIN_RATE or rate > MAX_RATE:
        raise ValueError("step rate %d outside %d..%d steps/s" % (rate, MIN_RATE, MAX_RATE))
    half = (_SM_HZ // rate - _OVERHEAD) // 2
    if half < 0:
        half = 0
    if half > _MAX_HALF:
        half = _MAX_HALF
    return half


def rate_for_half(half):
    """The step rate (steps/s, rounded down) that a half-period really gives."""
    return _SM_HZ // (2 * half + _OVERHEAD)


class Stepper:
    def __init__(self, step_pin, dir_pin, en_pin, diag_pin=None, rate=400, sm_id=0,
                 en_active_low=True, forward=1):
        self._en_on = 0 if en_active_low else 1
        self._en_off = 1 - self._en_on
        # EN first, released, so the driver is never powered by a floating pin at boot.
        self._en = Pin(en_pin, Pin.OUT, value=self._en_off)
        self._dir = Pin(dir_pin, Pin.OUT, value=forward)  # fixed: the pump only runs forward
        self._step = Pin(step_pin, Pin.OUT, value=0)
        self._outstanding = 0       # FIFO words queued or running; only small ints
        self._backlog = 0           # steps asked for, not yet in the FIFO
        self._stall = False
        self._half = half_for_rate(rate)
        self._half_word = self._half << 16
        self._sm = rp2.StateMachine(sm_id)
        # Bound methods made once: creating them in an IRQ would allocate.
        self._done_cb = self._done
        self._stall_cb = self._on_stall
        self._start_sm()
        self._diag = None
        if diag_pin is not None:
            self._diag = Pin(diag_pin, Pin.IN, Pin.PULL_DOWN)
            self._diag.irq(handler=self._stall_cb, trigger=Pin.IRQ_RISING, hard=True)

    def _start_sm(self):
        # init() clears both FIFOs and drives STEP low through the side-set pin.
        self._sm.init(step_program, freq=_SM_HZ, sideset_base=self._step)
        self._sm.irq(self._done_cb, 1, True)
        self._sm.active(1)

    # --- IRQ handlers: attribute stores of small ints and pin writes only (no allocation).
    def _done(self, sm):
        try:
            n = self._outstanding - 1
            if n < 0:
                n = 0
            self._outstanding = n
            if self._backlog:
                self._feed()
            if self._outstanding == 0:
                self._en.value(self._en_off)
        except KeyboardInterrupt:
            # Ctrl-C landed here (pico/irq.py): release EN, hand the interrupt on, stay armed.
            self._en.value(self._en_off)
            interrupted.set()

    def _on_stall(self, pin):
        try:
            self._stall = True
            self._backlog = 0
        except KeyboardInterrupt:
            interrupted.set()
        self._en.value(self._en_off)

    def _feed(self):
        # Move backlog into the FIFO while it has room. Runs in move() with IRQs off and in
        # the completion IRQ: small ints and a FIFO write only.
        sm = self._sm
        while self._backlog > 0 and sm.tx_fifo() < _FIFO_WORDS:
            n = self._backlog if self._backlog < _CHUNK else _CHUNK
            self._outstanding += 1
            sm.put(self._half_word | (n - 1))
            self._backlog -= n

    # --- API
    def set_rate(self, rate):
        """Step rate (steps/s) for moves queued from now on. Returns the rate really used."""
        half = half_for_rate(rate)
        self._half = half
        self._half_word = half << 16
        return rate_for_half(half)

    def rate(self):
        return rate_for_half(self._half)

    def enable(self, on):
        if on:
            if self._diag is None or not self._diag.value():
                self._stall = False
        else:
            self._abort()

    def _abort(self):
        st = machine.disable_irq()
        self._sm.active(0)
        self._outstanding = 0
        self._backlog = 0
        self._en.value(self._en_off)
        machine.enable_irq(st)
        self._start_sm()

    def move(self, steps):
        """Add `steps` forward steps (int, 0..1048576). ValueError for a bad count, and
        nothing changes. Ignored while stalled (stalled() says why). Allocates nothing."""
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError("steps must be an int >= 0, got %r" % (steps,))
        if steps > _MAX_MOVE:
            raise ValueError("move of %d steps over the %d limit" % (steps, _MAX_MOVE))
        if steps == 0 or self._stall:
            return
        st = machine.disable_irq()
        if self._backlog + steps > _MAX_BACKLOG:
            machine.enable_irq(st)
            raise RuntimeError("motor backlog over %d steps: head blocked or rate too low"
                               % _MAX_BACKLOG)
        self._backlog += steps
        self._en.value(self._en_on)
        self._feed()
        machine.enable_irq(st)

    def pending(self):
        """Steps asked for and not yet handed to the PIO."""
        return self._backlog

    def busy(self):
        return self._outstanding > 0

    def stalled(self):
        return self._stall
