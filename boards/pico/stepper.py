# Stepper driver (A4988 / DRV8825 / TMC2209) in STEP/DIR/EN mode, pulses and EN from PIO.
# Why PIO: pulse timing must not depend on the Python heap, GC pauses or asyncio latency, and
# the firmware sleeps through a batch (docs/architecture.md, issue 15): no Python step loops and
# no timers. Python queues two FIFO words per batch; the PIO waits out each gap, pulses STEP,
# drives EN, and raises an IRQ at the batch's end.
#
# Contract used by firmware (board.motor):
#   move(steps, over_ms=0)  queues a batch of `steps` forward steps spread evenly over over_ms
#                  (pulse i of n at about i * over_ms / n ms after the batch starts; the first
#                  after one gap, the last at over_ms: the period rounds down to whole 5 us
#                  cycles, and a held-EN step rises 15 us late). over_ms 0, or a gap under the
#                  period of set_rate()'s rate: at that rate. A batch queued while another runs
#                  starts when it ends. ValueError for bad arguments, and nothing changes.
#   left()         steps queued or running and not yet pulsed (see left() for its accuracy).
#   stall_flag     asyncio.ThreadSafeFlag set by the DIAG stall IRQ (never set without DIAG).
#   enable(False)  aborts: stops the PIO, drops every batch, releases EN; left() is then 0.
#   enable(True)   clears a stall latch if DIAG is low again (moves need no arming).
#   stalled()      True after the TMC2209 DIAG pin rose. The stall IRQ stops the PIO and
#                  releases EN at once; what was not pulsed stays in left() (moves asked for
#                  while stalled are added to it, never pulsed) until enable(False).
#   busy()         True while a batch is queued or running.
#
# EN belongs to the PIO (its SET pin), so the driver is powered only around steps: through a
# batch whose gaps are under _RELEASE_CYCLES (20 ms: every full-speed move), and otherwise
# from a wake time before each step to a hold time after it, released in between. A slow
# timed batch (a basal rate over 15 minutes) thus keeps the coils off for over 75 % of it.
#
# The PIO program (SM clock 200 kHz, 5 us a cycle). A batch is two FIFO words, both < 2**30:
#   word 1: (steps - 1) | released << 20     released = 1 when the period >= _RELEASE_CYCLES
#   word 2: gap loop count g                  period P = g + _HELD_OVER (held EN)
#                                                      or g + _REL_OVER  (released EN)
#   Per step the PIO waits first, then pulses STEP high for 2 cycles (10 us, above every
#   driver's minimum). Step k (1-based) of a batch rises at k * P + _HELD_EDGE cycles after the
#   batch starts (k * P + _REL_EDGE when released). P is at most _MAX_PERIOD (5000 s).
#   At a batch's end `irq block` waits until the completion IRQ has been taken, so every batch
#   raises its own IRQ (two can never merge into one while interrupts are held off by a flash
#   write) and the next queued batch starts at the moment the IRQ records as its start.
#
# Interrupt safety: the completion IRQ (PIO) and the stall IRQ (DIAG) are hard handlers at the
# same NVIC priority, so neither preempts the other; move(), left() and the abort take
# machine.disable_irq() around the ring they share with them. Every value kept or written to
# the FIFO stays below 2**30 (the rp2 port's small ints): nothing allocates in an IRQ.
from micropython import const
import asyncio
import time
import machine
from machine import Pin
import rp2
from pico.irq import interrupted

try:
    from typing_extensions import TYPE_CHECKING  # type: ignore
except ImportError:
    TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from rp2.asm_pio import *  # noqa: F401,F403  (PIO DSL names for the type checker)

_SM_HZ = const(200000)        # state-machine clock: 5 us per cycle
_HELD_OVER = const(5)         # cycles per step beyond the gap loop count, EN held
_REL_OVER = const(1032)       # the same with EN released in the gap (wake + hold: 1024)
_HELD_EDGE = const(3)         # step k rises at k * P + this (cycles from the batch's start)
_REL_EDGE = const(-510)
_RELEASE_CYCLES = const(4096)  # periods from 20.48 ms up release EN between steps
_MAX_PERIOD = const(1000000000)  # 5000 s: the gap word stays below 2**30
_MAX_MOVE = const(1048576)    # steps in one batch (count - 1 fits 20 bits)
_MAX_OVER_MS = const(86400000)  # one batch spreads over a day at most
_COUNT_BITS = const(20)
_SLOTS = const(8)             # batches queued or running (a power of two)
_SLOT_MASK = const(7)
_FIFO_WORDS = const(8)        # TX FIFO joined: 8 words, 4 batches
_MASK = const(0x3FFFFFFF)     # ticks_us / ticks_ms wrap at 2**30 on the rp2 port
_HALF = const(0x20000000)
_EXEC_IRQ_CLEAR = const(0xC050)  # irq(clear, rel(0)), side 0: forget a completion not yet taken
_EXEC_SET_PINS = const(0xE000)   # set(pins, v), side 0 (STEP low): | v
MIN_RATE = const(7)           # steps/s: a full-speed batch of _MAX_MOVE lasts under 2 days
MAX_RATE = const(20000)       # steps/s: far above what a pump head needs; P = 10 cycles


def _program(off):
    """The step program for an EN pin whose released level is `off` (1: active low)."""
    on = 1 - off

    @rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW,
                 set_init=rp2.PIO.OUT_HIGH if off else rp2.PIO.OUT_LOW,
                 out_shiftdir=rp2.PIO.SHIFT_RIGHT, fifo_join=rp2.PIO.JOIN_TX)
    def step_program():
        # Idle: EN released, STEP low, waiting for a batch. Every instruction drives STEP.
        set(pins, off).side(0)
        pull(block).side(0)                 # word 1
        label("batch")
        out(x, 20).side(0)                  # x = steps - 1
        mov(y, osr).side(0)                 # y = the released bit
        pull(block).side(0)                 # word 2: osr keeps the gap for every step
        jmp(not_y, "held").side(0)
        label("released")                   # EN off in the gap, on 2.56 ms each side of a step
        set(pins, off).side(0)
        mov(y, osr).side(0)
        label("gap")
        jmp(y_dec, "gap").side(0)
        set(pins, on).side(0)
        set(y, 31).side(0)
        label("wake")
        jmp(y_dec, "wake").side(0)[15]      # 32 * 16 cycles: the driver wakes
        set(y, 31).side(1)[1]               # STEP high
        label("hold")
        jmp(y_dec, "hold").side(0)[15]      # 32 * 16 cycles: the rotor reaches the step
        jmp(x_dec, "released").side(0)
        jmp("done").side(0)
        label("held")                       # EN on through the batch
        set(pins, on).side(0)
        label("step")
        mov(y, osr).side(0)
        label("low")
        jmp(y_dec, "low").side(0)
        nop().side(1)[1]                    # STEP high
        jmp(x_dec, "step").side(0)
        label("done")
        irq(block, rel(0)).side(0)          # wait until Python has taken the completion
        pull(noblock).side(0)               # the next batch's word 1, or x (all ones): none
        mov(y, invert(osr)).side(0)
        jmp(y_dec, "batch").side(0)         # y == 0: nothing queued, wrap to idle

    return step_program


_PROGRAMS = [None, None]  # by EN's released level, assembled by the first Stepper that needs it


def step_program(off=1):
    """The program for EN released at `off` (1: active low, the usual carrier board), made
    once: sm.init() loads each program object into PIO memory, once."""
    p = _PROGRAMS[off]
    if p is None:
        p = _PROGRAMS[off] = _program(off)
    return p


def _int_in(v, lo, hi, what):
    """v, when it is an int (not a bool) in lo..hi; else ValueError naming `what`."""
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ValueError("%s must be an int in %d..%d, got %r" % (what, lo, hi, v))
    return v


def pulsed_by(n, period, dm, du):
    """Steps of a batch of n at `period` cycles already pulsed when dm ms (ticks_ms) and du us
    (ticks_us, both as their differences modulo 2**30) have passed since it started. Exact to
    the microsecond for any run shorter than 2**29 ms, with small ints only: ticks_us alone
    wraps at 2**30 us (17.9 min), shorter than a firmware batch (15 min) plus a margin, so the
    whole ms pick the wrap and the us give the fraction. Allocation-free."""
    if dm >= _HALF:
        return 0  # read just before the start was recorded
    # d = elapsed us - 1000 * dm, from du modulo 2**30 (|d| is about 1000: the ms ticks over
    # between the two reads). 1000 * dm is taken modulo 2**30 in two halves that fit.
    x = (du - 1000 * (dm & 0xFFFFF)) & _MASK
    x = (x - (((1000 * (dm >> 20)) & 1023) << 20)) & _MASK
    if x >= _HALF:
        x = x - _MASK - 1
    # Elapsed cycles = 200 * dm + x // 5; step k rises at k * period + edge.
    e = x // 5 - (_REL_EDGE if period >= _RELEASE_CYCLES else _HELD_EDGE)
    q = dm // period
    if q >= n:
        return n
    r = dm - q * period
    # a, b = divmod(200 * r, period) by doubling, every value below `period` (< 2**30).
    a = 0
    b = 0
    bit = 128
    while bit:
        a += a
        if b >= period - b:
            b -= period - b
            a += 1
        else:
            b += b
        if 200 & bit:
            if b >= period - r:
                b -= period - r
                a += 1
            else:
                b += r
        bit >>= 1
    k = 200 * q + a + (b + e) // period
    if k < 0:
        return 0
    return n if k > n else k


class Stepper:
    def __init__(self, step_pin, dir_pin, en_pin, diag_pin=None, rate=400, sm_id=0,
                 en_active_low=True, forward=1, ticks_us=None, ticks_ms=None):
        self._en_off = 1 if en_active_low else 0
        # EN first, released, so the driver is never powered by a floating pin at boot; the
        # PIO takes the pin over in _start_sm and starts from the same released level.
        self._en = Pin(en_pin, Pin.OUT, value=self._en_off)
        self._dir = Pin(dir_pin, Pin.OUT, value=forward)  # fixed: the pump only runs forward
        self._step = Pin(step_pin, Pin.OUT, value=0)
        self._prog = step_program(self._en_off)
        self._exec_en_off = _EXEC_SET_PINS | self._en_off
        # Plain ints to this driver: it does the rp2 port's 30-bit tick arithmetic itself.
        self._us: "Callable[[], int]" = ticks_us or time.ticks_us  # type: ignore[assignment]
        self._ms: "Callable[[], int]" = ticks_ms or time.ticks_ms  # type: ignore[assignment]
        # The batches queued or running, oldest (the running one) at _head: a ring of small
        # ints made once, so move() and the IRQ never allocate.
        self._cnt = [0] * _SLOTS
        self._per = [0] * _SLOTS
        self._w1 = [0] * _SLOTS
        self._w2 = [0] * _SLOTS
        self._head = 0
        self._len = 0       # batches in the ring
        self._fed = 0       # of those, how many (from _head) are in the FIFO or running
        self._queued = 0    # steps of the batches behind the running one
        self._s_us = 0      # when the running batch started (ticks_us, ticks_ms)
        self._s_ms = 0
        self._frozen = 0    # steps a stall or a Ctrl-C in the IRQ left unpulsed
        self._halted = False  # the PIO was stopped in an IRQ: re-init before the next batch
        self._stall = False
        self._period = _SM_HZ // _int_in(rate, MIN_RATE, MAX_RATE, "step rate")
        self.stall_flag = asyncio.ThreadSafeFlag()
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
        # init() clears both FIFOs, restarts the program at idle, drives STEP low (side-set)
        # and EN released (set_init).
        self._sm.init(self._prog, freq=_SM_HZ, sideset_base=self._step, set_base=self._en)
        self._sm.irq(self._done_cb, 1, True)
        self._sm.active(1)
        self._halted = False

    # --- IRQ handlers: small ints, list slots, FIFO writes and exec only (no allocation).
    def _done(self, sm):
        # A batch ended; the PIO waits in `irq block` until this IRQ was taken, then runs the
        # next batch at once if its words are in the FIFO.
        try:
            if self._len:
                h = (self._head + 1) & _SLOT_MASK
                self._head = h
                self._len -= 1
                self._fed -= 1
                if self._len:
                    self._s_us = self._us()
                    self._s_ms = self._ms()
                    self._queued -= self._cnt[h]
                    self._feed()
        except KeyboardInterrupt:
            # Ctrl-C landed here (pico/irq.py): stop the PIO (EN released), hand it on.
            self._freeze()
            interrupted.set()

    def _on_stall(self, pin):
        try:
            if not self._stall:
                st = machine.disable_irq()
                self._stall = True
                self._freeze()
                machine.enable_irq(st)
                self.stall_flag.set()
        except KeyboardInterrupt:
            interrupted.set()
        self._halt()

    def _halt(self):
        # PIO stopped where it is, EN released, STEP low, a completion not yet taken dropped.
        sm = self._sm
        sm.active(0)
        sm.exec(self._exec_en_off)
        sm.exec(_EXEC_IRQ_CLEAR)
        self._halted = True

    def _freeze(self):
        # Stop now and keep what was not pulsed in left(). IRQs off or inside an IRQ.
        self._halt()
        self._frozen += self._left_running()
        self._len = 0
        self._fed = 0
        self._queued = 0

    def _feed(self):
        # Move queued batches into the FIFO while it has room for both words. Runs in move()
        # with IRQs off and in the completion IRQ.
        sm = self._sm
        while self._fed < self._len and sm.tx_fifo() <= _FIFO_WORDS - 2:
            i = (self._head + self._fed) & _SLOT_MASK
            sm.put(self._w1[i])
            sm.put(self._w2[i])
            self._fed += 1

    def _put_words(self, i):
        # Slot i's two FIFO words from its count and period (both below 2**30).
        per = self._per[i]
        if per >= _RELEASE_CYCLES:
            self._w1[i] = (self._cnt[i] - 1) | (1 << _COUNT_BITS)
            self._w2[i] = per - _REL_OVER
        else:
            self._w1[i] = self._cnt[i] - 1
            self._w2[i] = per - _HELD_OVER

    def _left_running(self):
        # Steps of the ring not yet pulsed. IRQs off or inside an IRQ.
        if not self._len:
            return 0
        h = self._head
        n = self._cnt[h]
        done = pulsed_by(n, self._per[h], (self._ms() - self._s_ms) & _MASK,
                         (self._us() - self._s_us) & _MASK)
        return self._queued + n - done

    # --- API
    def set_rate(self, rate):
        """Full-speed step rate (steps/s) for batches queued from now on. Returns the rate
        really used (the period is a whole number of 5 us cycles)."""
        self._period = _SM_HZ // _int_in(rate, MIN_RATE, MAX_RATE, "step rate")
        return _SM_HZ // self._period

    def rate(self):
        return _SM_HZ // self._period

    def enable(self, on):
        if on:
            if self._diag is None or not self._diag.value():
                self._stall = False
                if self._halted:
                    self._start_sm()
        else:
            self._abort()

    def _abort(self):
        st = machine.disable_irq()
        self._halt()
        self._len = 0
        self._fed = 0
        self._queued = 0
        self._frozen = 0
        machine.enable_irq(st)
        self._start_sm()

    def move(self, steps, over_ms=0):
        """Queue `steps` forward steps (int, 0..1048576) spread evenly over `over_ms` ms (int,
        0..86400000; 0: at the rate set). ValueError for bad arguments and RuntimeError when
        8 batches already wait, and nothing changes. While stalled the steps are not pulsed
        but counted in left(). Allocates nothing."""
        _int_in(steps, 0, _MAX_MOVE, "steps")
        _int_in(over_ms, 0, _MAX_OVER_MS, "over_ms")
        if steps == 0:
            return
        per = self._period
        if over_ms:
            q = over_ms // steps
            if q > _MAX_PERIOD // 200:
                raise ValueError("%d steps over %d ms: a gap over the PIO's 5000 s"
                                 % (steps, over_ms))
            p = q * 200 + (over_ms - q * steps) * 200 // steps  # over_ms * 200 // steps
            if p > per:
                per = p
        if self._stall:
            self._frozen += steps
            return
        if self._halted:
            self._start_sm()
        st = machine.disable_irq()
        n = self._len
        if n == _SLOTS:
            i = (self._head + n - 1) & _SLOT_MASK
            if n <= self._fed or self._per[i] != per or self._cnt[i] + steps > _MAX_MOVE:
                machine.enable_irq(st)
                raise RuntimeError("motor queue full: %d batches wait" % _SLOTS)
            # Merged into the last batch, not yet in the FIFO: same period, one longer batch.
            self._cnt[i] += steps
            self._put_words(i)
            self._queued += steps
            machine.enable_irq(st)
            return
        i = (self._head + n) & _SLOT_MASK
        self._cnt[i] = steps
        self._per[i] = per
        self._put_words(i)
        self._len = n + 1
        if n:
            self._queued += steps
        else:
            self._s_us = self._us()
            self._s_ms = self._ms()
        self._feed()
        machine.enable_irq(st)

    def left(self):
        """Steps queued or running and not yet pulsed. Exact when idle. For the running batch
        it is counted from the start the driver recorded (move() on an idle PIO, else the
        completion IRQ of the batch before) and its period: the recorded start lies within
        ~15 us before and the IRQ's latency (tens of us) after the real one, so left() is
        right to one step while that latency stays under one step period (50 us at
        MAX_RATE). Allocation-free."""
        st = machine.disable_irq()
        n = self._frozen + self._left_running()
        machine.enable_irq(st)
        return n

    def busy(self):
        return self._len > 0

    def stalled(self):
        return self._stall
