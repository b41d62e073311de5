# boards/pico on the real MicroPython interpreter against fake machine/rp2 (tests/firmware/fakes).
import sys
import fakes

machine, rp2 = fakes.install()  # before any pico import: they bind machine/rp2 at import

import asyncio
import micropython
from mptest import eq, raises, req
from pico import pins
from pico import stepper as stepper_mod
from pico.stepper import Stepper
from pico.dcpump import DcPump
from pico.buzzer import Buzzer
from pico.leds import Leds
from pico.button import Button
from pico.hx711 import HX711
from pico.battery import Battery
from pico.clock import Clock, Sleeper, DAY_MS
from pico import board as board_mod


def _stepper(**kw):
    fakes.reset()
    s = Stepper(pins.STEP, pins.DIR, pins.EN, **kw)
    return s, rp2.MACHINES[0], machine.state(pins.EN)


class FakeTicks:
    def __init__(self, t=1000):
        self.t = t

    def __call__(self):
        return self.t


_MASK30 = (1 << 30) - 1


class FakeUsClock:
    """The rp2 port's clocks from one microsecond count: ticks_us and ticks_ms both wrap at
    2**30, as on a Pico. Starts 3 s before ticks_us wraps, so tests cross it."""

    def __init__(self, t=_MASK30 - 3000000):
        self.t = t

    def us(self):
        return self.t & _MASK30

    def ms(self):
        return (self.t // 1000) & _MASK30

    def follow(self, sm, t0):
        """Keep time with the emulated PIO: cycle c of `sm` is t0 + 5 c us (200 kHz)."""
        def at(cycle):
            self.t = t0 + 5 * cycle
        sm.on_irq = at
        return at


def _clocked_stepper(**kw):
    clk = FakeUsClock()
    s, sm, en = _stepper(ticks_us=clk.us, ticks_ms=clk.ms, **kw)
    return s, sm, en, clk


def _batch_state(s, sm):
    return (list(sm.words), s.left(), s.busy(), s.rate(), len(sm.fifo))


# ---------------------------------------------------------------- stepper (PIO)

def test_stepper_program_is_a_real_pio_program():
    p = stepper_mod.step_program()
    eq(stepper_mod.step_program() is p, True, "assembled once")
    ops = [i.op for i in p.instrs]
    eq(ops, ["set", "pull", "out", "mov", "pull", "jmp", "set", "mov", "jmp", "set", "set", "jmp",
             "set", "jmp", "jmp", "jmp", "set", "mov", "jmp", "nop", "jmp", "irq", "pull", "mov",
             "jmp"])
    eq(len(ops) <= 32, True, "fits one PIO block's instruction memory")
    eq(p.kw["fifo_join"], rp2.PIO.JOIN_TX)
    eq(p.kw["set_init"], rp2.PIO.OUT_HIGH, "the PIO starts with EN released (active low)")
    # every instruction drives the side-set pin explicitly (non-optional side-set); STEP is
    # high only in the two pulse instructions
    eq([k for k, i in enumerate(p.instrs) if i.sideset], [12, 19])
    eq(all(i.sideset is not None for i in p.instrs), True)
    eq((p.instrs[21].a, p.instrs[21].b), ("block", ("rel", 0)), "irq waits until it is taken")
    eq(p.instrs[22].a, "noblock")
    # the SET pin is EN: released (1) at idle and in gaps, asserted (0) around steps
    eq([i.b for i in p.instrs if i.op == "set" and i.a == "pins"], [1, 1, 0, 0])
    hi = stepper_mod.step_program(0)
    eq([i.b for i in hi.instrs if i.op == "set" and i.a == "pins"], [0, 0, 1, 1])
    eq(hi.kw["set_init"], rp2.PIO.OUT_LOW)


def test_boot_state_driver_released_dir_forward():
    s, sm, en = _stepper()
    eq(en.level, 1, "EN must be high (driver off) at boot")
    eq(en.writes[0], 1, "EN's first write must release the driver")
    eq(0 in en.writes, False)
    eq(machine.state(pins.DIR).level, 1)
    eq(machine.state(pins.STEP).level, 0)
    eq(sm.running, True)
    eq(sm.kw["set_base"].gpio, pins.EN, "EN is the PIO's SET pin")
    eq(sm.kw["sideset_base"].gpio, pins.STEP)
    eq((s.busy(), s.left(), s.stalled()), (False, 0, False))
    eq(_flag_is_set(s.stall_flag), False, "a stepper without DIAG has a flag that stays clear")


def test_full_speed_batch_words_timing_and_en():
    s, sm, en = _stepper(rate=400)
    s.enable(False)   # what app.run does first
    s.enable(True)
    eq(en.level, 1, "enable(True) alone must not power the driver")
    s.move(1000)
    eq(sm.words, [999, 500 - 5], "count - 1, then the gap loop count")
    eq((s.busy(), s.left()), (True, 1000))
    tr = sm.run()
    eq(tr.rising, 1000)
    # every gap between pulses is identical: hardware timing, no jitter
    eq(tr.periods, {500: 999})
    eq(tr.first[0], 1 + 500 + 3, "the first step after one period (plus 3 cycles)")
    eq(tr.set_at_edge, {0: 1000}, "EN asserted at every step")
    eq(tr.set_changes, [(6, 0), (tr.irqs[0] + 4, 1)], "EN on through the batch, off at its end")
    eq(len(tr.irqs), 1)
    eq((en.level, s.busy(), s.left()), (1, False, 0))


def _one_timed(steps, over_ms, rate=400):
    s, sm, en = _stepper(rate=rate)
    s.move(steps, over_ms)
    w1, w2 = sm.words
    tr = sm.run()
    return s, sm, w1, w2, tr


def test_timed_batch_words_and_pulse_times_for_several_rates():
    # (steps, over_ms) -> period in cycles, EN released in the gaps or held
    cases = [
        ((10, 1000), 20000, True),          # 10 steps/s: 100 ms gaps
        ((100, 1000), 2000, False),         # 100 steps/s: 10 ms, under the 20 ms threshold
        ((7, 1000), 28571, True),           # the period rounds down: done by over_ms
        ((52, 900000), 3461538, True),      # a basal rate over the firmware's 15 min
        ((3, 2700000), 180000000, True),    # 15 min gaps
        ((1, 5000000), 1000000000, True),   # the longest gap: 5000 s, still a small int
        ((1000, 100), 500, False),          # gaps shorter than 400 steps/s: at that rate
        ((5, 0), 500, False),               # over_ms 0: at the rate set
    ]
    for (steps, over), period, released in cases:
        s, sm, w1, w2, tr = _one_timed(steps, over)
        want1 = (steps - 1) | ((1 << 20) if released else 0)
        want2 = period - (1032 if released else 5)
        eq((w1, w2), (want1, want2), "words for %r" % ((steps, over),))
        eq(w1 < (1 << 30) and w2 < (1 << 30), True)
        eq(tr.rising, steps)
        if steps > 1:
            eq(tr.periods, {period: steps - 1}, "even spacing for %r" % ((steps, over),))
        # step k rises at k * period + c cycles after the batch's start (cycle 1 here)
        c = -510 if released else 3
        eq(tr.first[0], 1 + period + c, "first step after one gap %r" % ((steps, over),))
        last = 1 + steps * period + c
        if over and period * steps <= over * 200:
            eq(last <= 1 + over * 200 + 3, True, "last step by over_ms + 15 us %r" % ((steps, over),))
            eq(over * 200 - steps * period < steps + 1000, True, "and not much before")
        eq(tr.set_at_edge, {0: steps}, "EN asserted at every step %r" % ((steps, over),))
        eq((s.busy(), s.left(), machine.state(pins.EN).level), (False, 0, 1))


def test_released_batch_powers_the_driver_only_around_each_step():
    s, sm, w1, w2, tr = _one_timed(10, 1000)   # 100 ms gaps
    ch = tr.set_changes
    eq(len(ch), 20, "EN on and off once per step")
    eq([lvl for _, lvl in ch], [0, 1] * 10)
    on = [ch[i + 1][0] - ch[i][0] for i in range(0, 20, 2)]
    eq(on, [1029] * 9 + [1034], "on 5.1 ms a step: 2.56 ms wake, the pulse, 2.56 ms hold")
    on = sum(on)
    eq(on * 100 // (10 * 20000) < 6, True, "the coils are off 95 % of a 10 steps/s batch")
    for i in range(10):
        a, b = ch[2 * i][0], ch[2 * i + 1][0]
        inside = [t for t in tr.first if a <= t < b]
        eq(len(inside), 1, "one step in each EN-on window")
        eq((inside[0] - a, b - inside[0]), (514, 515 if i < 9 else 520), "wake, then hold")


def test_a_move_during_a_move_is_queued_behind_it():
    s, sm, en, clk = _clocked_stepper(rate=1000)
    s.move(10)
    s.move(5, 10000)          # 2 s gaps, starts when the first batch ends
    s.move(20)
    eq(sm.words, [9, 195, 4 | (1 << 20), 400000 - 1032, 19, 195], "three batches, in order")
    eq((s.left(), s.busy()), (35, True))
    tr = sm.run()
    eq((tr.rising, len(tr.irqs)), (35, 3), "no step lost, one IRQ per batch")
    first = tr.first
    eq(first[10] - first[9] > 390000, True, "the timed batch starts after the first, spread")
    # step to end of the released batch 516, next batch's preamble 9, its first gap 197
    eq(first[15] - first[14], 516 + 9 + 197, "the third runs at once after the second")
    eq((en.level, s.busy(), s.left()), (1, False, 0))


def test_more_batches_than_the_fifo_holds_wait_in_the_ring_and_merge_when_full():
    s, sm, en = _stepper(rate=1000)
    for _ in range(12):
        s.move(3)
    eq(len(sm.fifo), 8, "4 batches in the FIFO, 2 words each")
    eq((s.left(), s._len), (36, 8), "the last full-speed moves merge into the 8th batch")
    before = _batch_state(s, sm)
    e = raises(RuntimeError, s.move, 2, 60000)  # a timed batch cannot merge: refused
    eq("queue full" in str(e), True, str(e))
    eq(_batch_state(s, sm), before, "a refused move changed nothing")
    tr = sm.run()              # the completion IRQ feeds the ring in
    eq((tr.rising, len(tr.irqs)), (36, 8))
    eq(tr.set_at_edge, {0: 36})
    eq((en.level, s.left(), s.busy()), (1, 0, False))
    eq([lvl for _, lvl in tr.set_changes], [0, 1], "EN held across the queued batches")


def test_left_before_while_and_after_a_batch():
    s, sm, en, clk = _clocked_stepper(rate=400)
    t0 = clk.t
    follow = clk.follow(sm, t0)
    s.move(40, 8000)          # 200 ms gaps, EN released
    s.move(30)                # then at 400 steps/s, started by the IRQ
    eq(s.left(), 70, "before: everything queued")
    pulsed = 0
    exact = 0
    looks = 0
    step = 3331
    while s.busy():
        tr = sm.run(step)
        pulsed += tr.rising
        follow(sm.cycle)
        looks += 1
        got = s.left()
        d = got - (70 - pulsed)
        eq(-1 <= d <= 1, True, "left() %d with %d pulsed at cycle %d" % (got, pulsed, sm.cycle))
        exact += d == 0
    eq(pulsed, 70)
    eq(s.left(), 0, "after: exact")
    eq(exact * 10 >= looks * 9, True, "exact at %d of %d looks" % (exact, looks))
    eq(clk.t > t0 + 3000000, True, "the run crossed ticks_us's wrap")


def test_left_over_a_batch_longer_than_the_tick_wraps():
    # 6 steps over 3 h: ticks_us wraps every 17.9 min, ticks_diff is good for 8.9 min only.
    s, sm, en, clk = _clocked_stepper()
    t0 = clk.t
    follow = clk.follow(sm, t0)
    s.move(6, 10800000)
    period = 10800000 * 200 // 6
    pulsed = 0
    for k in range(1, 7):
        for off, want in ((-1000, k - 1), (1000, k)):   # 5 ms before and after step k
            cyc = k * period - 510 + off
            tr = sm.run(cyc - sm.cycle)
            pulsed += tr.rising
            follow(sm.cycle)
            eq((pulsed, s.left()), (want, 6 - want), "around step %d" % k)
    pulsed += sm.run().rising
    eq((pulsed, s.left(), s.busy()), (6, 0, False))


def test_disable_aborts_every_batch_and_releases_en():
    s, sm, en, clk = _clocked_stepper()
    follow = clk.follow(sm, clk.t)
    s.enable(True)
    s.move(5000)
    s.move(100, 60000)
    tr = sm.run(1000 * 500 + 10)     # 1000 steps in
    follow(sm.cycle)
    eq((tr.rising, en.level), (1000, 0))
    eq(s.left(), 4100)
    inits, execs = sm.inits, sm.execs
    s.enable(False)
    eq(en.level, 1)
    eq((s.left(), s.busy()), (0, False), "left() is 0 after an abort")
    eq(sm.fifo, [], "FIFO cleared")
    eq((sm.inits, sm.execs), (inits + 1, execs + 2), "EN off and the IRQ flag cleared by exec")
    eq(sm.run().rising, 0, "nothing of the aborted batches runs")
    s.move(7)                 # works again after an abort
    eq(sm.run().rising, 7)


def test_bad_arguments_are_refused_and_change_nothing():
    s, sm, en = _stepper()
    s.move(10, 5000)          # something queued, so "nothing changes" means something
    before = _batch_state(s, sm)
    bad = [((-1,), "steps must be an int in 0..1048576, got -1"), ((1.5,), "steps"),
           ((True,), "steps"), ((10 ** 7,), "steps"), ((1048577,), "steps"),
           ((5, -1), "over_ms"), ((5, 1.5), "over_ms"), ((5, True), "over_ms"),
           ((5, 86400001), "over_ms must be an int in 0..86400000"),
           ((1, 5000001), "1 steps over 5000001 ms: a gap over the PIO's 5000 s"),
           ((2, 10000002), "gap")]
    for args, word in bad:
        e = raises(ValueError, s.move, *args)
        eq(word in str(e), True, "%r: %s" % (args, e))
        eq(_batch_state(s, sm), before, "move%r changed something" % (args,))
    for r in (0, 6, 20001, 50000, 400.0, True):
        raises(ValueError, s.set_rate, r)
        eq(_batch_state(s, sm), before, "set_rate(%r) changed something" % (r,))
    s.move(0)
    s.move(0, 1000)
    eq(_batch_state(s, sm), before)
    eq(sm.run().rising, 10)


def test_set_rate_changes_the_next_batch():
    s, sm, en = _stepper()
    eq(s.set_rate(2000), 2000)
    s.move(100)
    eq(sm.words[-1], 100 - 5)
    tr = sm.run()
    eq(tr.periods, {100: 99})
    real = s.set_rate(3000)
    eq((real, abs(real - 3000) * 100 <= 3000), (3030, True), "whole cycles, within 1 %")
    eq(s.set_rate(stepper_mod.MIN_RATE), 7)
    s.move(1)
    eq(sm.words[-2:], [1 << 20, 200000 // 7 - 1032], "slowest rate: EN released in its gaps")
    eq(s.set_rate(stepper_mod.MAX_RATE), 20000)
    s.move(3)
    eq(sm.words[-2:], [2, 5])
    eq(all(w < (1 << 30) for w in sm.words), True, "every word a small int")


def test_active_high_en_is_driven_the_other_way():
    fakes.reset()
    s = Stepper(pins.STEP, pins.DIR, pins.EN, en_active_low=False)
    en = machine.state(pins.EN)
    sm = rp2.MACHINES[0]
    eq((en.writes[0], en.level), (0, 0))
    s.move(4)
    s.move(2, 1000)
    tr = sm.run()
    eq(tr.set_at_edge, {1: 6})
    eq(en.level, 0)
    s.move(3)
    sm.run(50)
    eq(en.level, 1)
    s.enable(False)
    eq(en.level, 0)


def test_stall_from_diag_stops_the_pio_sets_the_flag_and_keeps_left():
    clk = FakeUsClock()
    fakes.reset()
    s = Stepper(pins.STEP, pins.DIR, pins.EN, diag_pin=pins.DIAG, ticks_us=clk.us, ticks_ms=clk.ms)
    follow = clk.follow(rp2.MACHINES[0], clk.t)
    en = machine.state(pins.EN)
    sm = rp2.MACHINES[0]
    s.enable(True)
    s.move(100, 10000)         # 100 ms gaps, EN released between steps
    tr = sm.run(30 * 20000 - 510 + 100)   # inside step 30's EN-on window
    follow(sm.cycle)
    eq((tr.rising, en.level), (30, 0))
    eq(_flag_is_set(s.stall_flag), False)
    micropython.heap_lock()
    try:
        machine.fire(pins.DIAG, 1)
    finally:
        micropython.heap_unlock()
    eq(s.stalled(), True)
    eq((en.level, sm.running), (1, False), "EN released and the PIO stopped at once")
    eq(_flag_is_set(s.stall_flag), True, "the stall task wakes at once")
    eq((s.left(), s.busy()), (70, False), "what the stall left unpulsed")
    n = len(sm.words)
    s.move(5)                 # not pulsed while stalled, but counted
    eq((len(sm.words), en.level, s.left()), (n, 1, 75))
    s.enable(True)
    eq(s.stalled(), True, "still stalled while DIAG is high")
    machine.fire(pins.DIAG, 0)
    s.enable(True)
    eq((s.stalled(), sm.running, s.left()), (False, True, 75))
    s.enable(False)
    eq(s.left(), 0, "enable(False) forgets it")
    s.move(2)
    eq(sm.run().rising, 2)
    eq(_flag_is_set(s.stall_flag), False, "set once per stall")


def test_stepper_irq_move_and_left_allocate_nothing():
    s, sm, en = _stepper()
    s.enable(True)
    micropython.heap_lock()
    try:
        s.move(100)
        s.move(10, 5000)
        n = s.left()
        s._done(sm)
        m = s.left()
        s._done(sm)
    finally:
        micropython.heap_unlock()
    eq((n, m, s.left(), s.busy()), (110, 10, 0, False))


# ---------------------------------------------------------------- DC pump

def _dc(slice_ms=100):
    fakes.reset()
    t = FakeTicks(5000)
    d = DcPump(pins.PUMP_PWM, slice_ms=slice_ms, duty_u16=40000, ticks_ms=t)
    return d, machine.PWMS[pins.PUMP_PWM], machine.TIMERS[0], t


def _expire(tim, t, late=0):
    t.t += tim.period + late
    tim.expire()


def test_dc_pump_runs_slices_back_to_back_and_queues_a_move_behind():
    d, pwm, tim, t = _dc()
    eq(pwm.duty_u16(), 0)
    d.enable(False)
    d.move(3)
    eq((pwm.duty_u16(), tim.period, tim.mode), (40000, 300, machine.Timer.ONE_SHOT))
    eq((d.left(), d.busy()), (2, True), "the first slice has started")
    t.t += 150
    eq(d.left(), 1)
    d.move(2)                 # queued behind the 150 ms left
    eq((d.left(), tim.period), (3, 300))
    t.t += 150
    tim.expire()
    eq((pwm.duty_u16(), tim.period, d.left()), (40000, 200, 1), "the next runs on, no blink")
    duties = [v for k, v in pwm.history if k == "duty"]
    eq(duties[duties.index(40000):], [40000], "never off between the batches")
    _expire(tim, t)
    eq((pwm.duty_u16(), d.busy(), d.left(), tim.active), (0, False, 0, False))


def test_dc_pump_spreads_slices_over_a_batch_on_its_grid():
    d, pwm, tim, t = _dc()
    t0 = t.t
    d.move(3, 1000)           # P = 333: on 233..333, 566..666, 899..999
    eq((pwm.duty_u16(), tim.period, d.left()), (0, 233, 3))
    seen = []
    lates = [0, 0, 7, 0, 0, 0]    # one start 7 ms late: the slice still runs 100 ms
    for late in lates:
        _expire(tim, t, late)
        seen.append((t.t - t0, pwm.duty_u16(), d.left()))
    eq(seen, [(233, 40000, 2), (333, 0, 2), (573, 40000, 1), (673, 0, 1), (899, 40000, 0),
              (999, 0, 0)])
    eq((d.busy(), tim.active), (False, False))
    # A spread batch queued behind another keeps to the grid of that one's planned end,
    # even when the callback ending it is late.
    t0 = t.t
    d.move(1, 300)            # on 200..300
    d.move(2, 400)            # then on 100..200 and 300..400 after it
    _expire(tim, t)
    _expire(tim, t, 7)        # the end of the first batch, 7 ms late
    eq((t.t - t0, pwm.duty_u16(), tim.period), (307, 0, 93), "next slice at 400, not 407")


def test_dc_pump_bad_arguments_and_a_full_queue_change_nothing():
    d, pwm, tim, t = _dc()
    d.move(2, 5000)
    before = (d.left(), tim.inits, tim.period, pwm.duty_u16())
    for args in ((-2,), (1.5,), (True,), (864001,), (5, -1), (5, 2.0), (5, 86400001)):
        raises(ValueError, d.move, *args)
        eq((d.left(), tim.inits, tim.period, pwm.duty_u16()), before, "move%r" % (args,))
    for _ in range(3):
        d.move(1, 1000)
    e = raises(RuntimeError, d.move, 1)
    eq("queue full" in str(e), True)
    eq(d.left(), 5)


def test_dc_pump_abort_and_no_stall_detection():
    d, pwm, tim, t = _dc()
    d.move(4, 4000)
    _expire(tim, t)
    eq(pwm.duty_u16(), 40000)
    d.enable(False)
    eq((pwm.duty_u16(), tim.active, d.left(), d.busy()), (0, False, 0, False))
    eq(d.stalled(), False)
    eq(_flag_is_set(d.stall_flag), False, "the contract's flag exists and is never set")
    d.move(1)
    eq(pwm.duty_u16(), 40000, "works again after an abort")


def test_dc_pump_timer_callback_allocates_nothing():
    d, pwm, tim, t = _dc()
    d.move(3, 900)
    d.move(2)
    pwm.history = None        # the fake's record would allocate; the driver must not
    micropython.heap_lock()
    try:
        for _ in range(7):
            t.t += tim.period
            tim.expire()
    finally:
        micropython.heap_unlock()
    eq((d.busy(), pwm.duty_u16()), (False, 0))


# ---------------------------------------------------------------- buzzer, LEDs

def test_buzzer_pwm_follows_tone_and_off():
    fakes.reset()
    b = Buzzer(pins.BUZZER)
    pwm = machine.PWMS[pins.BUZZER]
    eq(pwm.duty_u16(), 0)
    b.tone(880)
    eq((pwm.freq(), pwm.duty_u16()), (880, 32768))
    b.off()
    eq(pwm.duty_u16(), 0)
    b.tone(440)
    eq((pwm.freq(), pwm.duty_u16()), (440, 32768))
    raises(ValueError, b.tone, 5)
    raises(ValueError, b.tone, 440.0)
    eq((pwm.freq(), pwm.duty_u16()), (440, 32768), "bad tone changed nothing")
    b.off()
    eq(pwm.history[-3:], [("freq", 440), ("duty", 32768), ("duty", 0)])


def test_leds():
    fakes.reset()
    l = Leds(pins.LED_RED, pins.LED_YELLOW)
    eq((machine.state(pins.LED_RED).level, machine.state(pins.LED_YELLOW).level), (0, 0))
    l.set(True, False)
    eq((machine.state(pins.LED_RED).level, machine.state(pins.LED_YELLOW).level), (1, 0))
    l.set(0, 1)
    eq(l.get(), (False, True))


# ---------------------------------------------------------------- button

def _flag_is_set(flag):
    async def probe():
        try:
            await asyncio.wait_for_ms(flag.wait(), 5)
            return True
        except asyncio.TimeoutError:
            return False
    return asyncio.run(probe())


def test_button_debounced_press_sets_flag_once():
    fakes.reset()
    t = FakeTicks(10000)
    b = Button(pins.BUTTON, debounce_ms=50, ticks_ms=t)
    st = machine.state(pins.BUTTON)
    eq(st.pull, machine.Pin.PULL_UP)
    eq(st.hard, True)
    eq(st.level, 1)
    eq(_flag_is_set(b.pressed_flag), False)
    # press with bounce: down, up, down within 3 ms
    micropython.heap_lock()
    try:
        machine.fire(pins.BUTTON, 0)
        t.t += 1
        machine.fire(pins.BUTTON, 1)
        t.t += 2
        machine.fire(pins.BUTTON, 0)
    finally:
        micropython.heap_unlock()
    eq(b.presses, 1)
    eq(_flag_is_set(b.pressed_flag), True)
    eq(_flag_is_set(b.pressed_flag), False, "flag consumed by one wait")
    # held 400 ms, release with bounce
    t.t += 400
    machine.fire(pins.BUTTON, 1)
    t.t += 2
    machine.fire(pins.BUTTON, 0)
    t.t += 1
    machine.fire(pins.BUTTON, 1)
    eq(b.presses, 1, "release bounce is not a press")
    eq(_flag_is_set(b.pressed_flag), False)
    # a second clean press later
    t.t += 500
    machine.fire(pins.BUTTON, 0)
    eq(b.presses, 2)
    eq(b.held(), True)
    eq(_flag_is_set(b.pressed_flag), True)


def test_boot_button_held():
    fakes.reset()
    eq(board_mod.boot_button_held(), False)
    machine.state(pins.BUTTON).writes.append(0)   # a pressed button: line pulled to GND
    machine.state(pins.BUTTON).level = 0
    eq(board_mod.boot_button_held(), True)


# ---------------------------------------------------------------- HX711

class FakeHX711Chip:
    """Shifts a 24-bit two's complement value out on DT, MSB first, on SCK rising edges."""

    def __init__(self, dt, sck):
        self.value = 0
        self.bit = 0
        self.pulses = 0
        self.dt = machine.state(dt)
        self.dt.level = 0  # ready
        self.cur = 0
        machine.state(sck).on_write = self.on_sck

    def on_sck(self, level):
        if level:
            self.pulses += 1
            if self.pulses <= 24:
                v = self.value & 0xFFFFFF
                self.dt.level = (v >> (24 - self.pulses)) & 1
            else:
                self.pulses = 0
                self.dt.level = 0  # next conversion ready at once


def test_hx711_reads_signed_24_bit_and_scales():
    fakes.reset()
    hx = HX711(pins.HX711_DT, pins.HX711_SCK, samples=4, ng_per_count=120000)
    chip = FakeHX711Chip(pins.HX711_DT, pins.HX711_SCK)
    chip.value = 123456
    eq(hx.read_raw(), 123456)
    eq(chip.pulses, 0, "25 pulses: gain 128 channel A")
    chip.value = -5000
    eq(hx.read_raw(), -5000)
    chip.value = 1000
    eq(hx.tare(), 1000)
    chip.value = 1000 + 8000   # 8000 counts * 120 ug
    eq(hx.calibrate(960000), 120000)
    hx2 = HX711(pins.HX711_DT, pins.HX711_SCK, samples=2, ng_per_count=120000, offset=1000)
    eq(hx2.read_ug(), 960000)
    chip.value = 1000 + 8500
    eq(hx2.read_ug(), (8000 + 8500) // 2 * 120)   # average of the two buffered samples
    eq(hx2.read_ug(), 8500 * 120)
    # not ready: returns the last value without touching SCK
    chip.dt.level = 1
    n = len(machine.state(pins.HX711_SCK).writes)
    eq(hx2.read_ug(), 8500 * 120)
    eq(len(machine.state(pins.HX711_SCK).writes), n)
    # huge raw values clamp below 2**30 instead of growing a big int
    eq(hx2.counts_to_ug(8000000) < (1 << 30), True)
    raises(ValueError, hx2.set_calibration, 0, 0)
    raises(ValueError, hx2.calibrate, 5)


def test_hx711_none_before_first_sample():
    fakes.reset()
    machine.state(pins.HX711_DT).level = 1
    hx = HX711(pins.HX711_DT, pins.HX711_SCK)
    eq(hx.read_ug(), None)


# ---------------------------------------------------------------- battery

def test_battery_mv_through_divider():
    fakes.reset()
    b = Battery(pins.BATTERY_ADC, 100000, 100000, 3300)
    machine.ADC_VALUES[pins.BATTERY_ADC] = 65535
    eq(b.mv(), 6600)
    machine.ADC_VALUES[pins.BATTERY_ADC] = 32768
    eq(b.pin_mv(), 1650)
    eq(b.mv(), 3300)
    b2 = Battery(pins.BATTERY_ADC, 47000, 100000, 3300)   # ratio 1.47
    machine.ADC_VALUES[pins.BATTERY_ADC] = 39719           # 2000 mV at the pin
    eq(b2.mv(), 2000 * 147 // 100)
    eq(machine.ADC_READS[pins.BATTERY_ADC] >= 12, True)
    raises(ValueError, Battery, pins.BATTERY_ADC, 100000, 0)
    raises(ValueError, Battery, pins.BATTERY_ADC, -1, 100)


# ---------------------------------------------------------------- clock

def test_clock_wall_rolls_over_midnight_and_folds():
    t = FakeTicks(777)
    c = Clock(ticks_ms=t)
    eq(c.wall(), None)
    c.set_wall(9000, DAY_MS - 1500)
    t.t += 1000
    eq(c.wall(), (9000, DAY_MS - 500))
    t.t += 700
    eq(c.wall(), (9001, 200))
    # 5 days without a read, then 3 more: still exact, stored numbers stay small
    t.t += 5 * DAY_MS
    eq(c.wall(), (9006, 200))
    t.t += 3 * DAY_MS + 10
    eq(c.wall(), (9009, 210))
    raises(ValueError, c.set_wall, -1, 0)
    raises(ValueError, c.set_wall, 1, DAY_MS)
    raises(ValueError, c.set_wall, 1, 1.5)
    eq(c.wall(), (9009, 210), "bad set_wall changed nothing")


def test_clock_wait_timeout_and_kick():
    c = Clock()
    s = Sleeper()

    async def main():
        t0 = c.ticks()
        await c.wait(30, s)
        waited = c.diff(c.ticks(), t0)

        async def kicker():
            await asyncio.sleep_ms(10)
            s.kick()
        asyncio.create_task(kicker())
        t1 = c.ticks()
        await c.wait(5000, s)
        kicked = c.diff(c.ticks(), t1)
        s.kick()
        t2 = c.ticks()
        await c.wait(5000, s)          # a kick before the wait is not lost
        early = c.diff(c.ticks(), t2)
        return waited, kicked, early
    waited, kicked, early = asyncio.run(main())
    eq(waited >= 30, True, "waited %d" % waited)
    eq(kicked < 1000, True, "kick ended the wait (%d ms)" % kicked)
    eq(early < 1000, True)


# ---------------------------------------------------------------- whole board

class NullPort:
    """A USB port that reads one byte at a time and takes any write."""
    async def read(self):
        return b"x"

    def write(self, b):
        return len(b)


def test_pico_board_has_the_interface():
    fakes.reset()
    from pico.port import Port
    import io
    root = _scratch_root()
    b = board_mod.PicoBoard(port=NullPort(), root=root)
    eq(b.name, "pico")
    eq(b.device_id, "PICO-E6605838832F1A2B")
    eq(b.nominal_pl_per_step, pins.STEP_PL_DEFAULT)
    eq((b.reservoir_model_ml, b.initial_fill_ul), (20, 0))
    eq(b.storage_root, root)
    eq((b.calibrated_at_build, b.lost_data), (False, False))
    eq(b.nvram.kind, "flash")
    eq(machine.state(pins.EN).level, 1)
    for attr in ("ticks", "diff", "wait", "Sleeper", "wall", "set_wall"):
        eq(hasattr(b.clock, attr), True, attr)
    for attr in ("move", "left", "enable", "stalled", "stall_flag", "busy"):
        eq(hasattr(b.motor, attr), True, attr)
    eq(b.scale is not None, True, "fake DT reads low: HX711 present")
    machine.ADC_VALUES[pins.BATTERY_ADC] = 65535
    eq(b.battery_mv(), 6600)
    eq(b.reset_cause(), "power_on")
    machine.RESET_CAUSE[0] = machine.WDT_RESET
    machine.mem32[machine.WATCHDOG_REASON] = 1  # TIMER: the watchdog starved
    eq(b.reset_cause(), "watchdog")
    machine.mem32[machine.WATCHDOG_REASON] = 2  # FORCE: machine.reset(), mpremote reset
    eq(b.reset_cause(), "soft", "a requested reset is not a watchdog alarm")
    machine.RESET_CAUSE[0] = machine.SOFT_RESET
    eq(b.reset_cause(), "soft")
    raises(ValueError, b.watchdog.start, 9000)
    eq(machine.WDTS, [])
    eq(b.watchdog.feed_ms < b.watchdog.timeout_ms <= 8388, True, "the contract values fit the RP2040")
    b.watchdog.feed()   # before start: harmless
    b.watchdog.start(b.watchdog.timeout_ms)
    eq(b.watchdog.timeout_ms, 8000)
    b.watchdog.feed()
    b.watchdog.feed()
    eq((machine.WDTS[0].timeout, machine.WDTS[0].feeds), (8000, 2))
    raises(RuntimeError, b.watchdog.start, 5000)
    b.motor.enable(True)
    b.motor.move(50)
    b.buzzer.tone(1000)
    rp2.MACHINES[0].run(20)   # the PIO asserts EN as it starts the batch
    eq(machine.state(pins.EN).level, 0)
    b.shutdown()
    eq(machine.state(pins.EN).level, 1)
    eq(machine.PWMS[pins.BUZZER].duty_u16(), 0)
    eq(b.button.pressed_flag is not None, True)


def _scratch_root():
    import os
    root = "/tmp/_pico_root_%d" % id(object())
    try:
        os.mkdir(root)
    except OSError:
        pass
    return root


def test_device_id_without_a_chip_id_is_made_once_and_kept():
    fakes.reset()
    machine.UNIQUE_ID[0] = b"\x00" * 8  # what an emulated chip (and some clones) report
    root = _scratch_root()
    first = board_mod.device_id(root + "/device_id")
    eq((first[:6], len(first)), ("PICO-R", 22))
    eq(board_mod.device_id(root + "/device_id"), first, "the same id after a reboot")
    machine.UNIQUE_ID[0] = b"\xff" * 8
    eq(board_mod.device_id(root + "/device_id"), first)
    other = board_mod.device_id(_scratch_root() + "/device_id")
    eq(other != first, True, "another board, another id")
    machine.UNIQUE_ID[0] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    eq(board_mod.device_id(root + "/device_id"), "PICO-0102030405060708", "a real id wins")


def test_flash_nvram_keeps_the_last_record_and_states_its_policy():
    from pico.nvram import FlashNvram, JOURNAL_MS, JOURNAL_STEPS
    root = _scratch_root()
    nv = FlashNvram(root + "/journal")
    eq(nv.read(8), None, "a new store holds nothing")
    nv.write(b"abcdefgh")
    nv.write(b"ABCDEFGH")
    eq(FlashNvram(root + "/journal").read(8), b"ABCDEFGH", "what a reboot reads back")
    eq((nv.min_interval_ms, nv.max_steps, nv.writes), (JOURNAL_MS, JOURNAL_STEPS, 2))
    raises(ValueError, FlashNvram, root + "/j2", 10)
    raises(ValueError, FlashNvram, root + "/j2", 60000, 0)


def test_journal_on_flash_writes_by_time_or_steps_not_every_move():
    from pico.nvram import FlashNvram
    from services.journal import Journal

    class Clk:
        t = 0

        def ticks(self):
            return self.t

        def diff(self, a, b):
            return a - b
    nv = FlashNvram(_scratch_root() + "/journal", 60000, 320)
    j = Journal(nv)
    c = Clk()
    eq(j.due(5, c), True, "the first move after boot is journaled")
    j.at = 0
    j.pending = 0
    c.t = 30000
    eq(j.due(100, c), False)
    eq(j.due(100, c), False)
    eq(j.due(120, c), True, "320 steps since the last record")
    j.pending = 0
    c.t = 60000
    eq(j.due(1, c), True, "a minute since the last record")


# ---------------------------------------------------------------- port (USB CDC)

def test_port_reads_what_is_there_and_write_never_blocks():
    import io
    from pico.port import Port
    path = "/tmp/_pico_port_test_%d.bin" % id(object())
    f = open(path, "wb")
    f.write(b"abcdef")
    f.close()
    inp = open(path, "rb")
    sink = io.BytesIO()

    class Stuck(io.IOBase):
        """A host that stopped reading: poll never says writable; write would block."""
        def ioctl(self, req, arg):
            return -1 if req == 10 else 0   # no fd (10 = GET_FILENO); poll: nothing ready

        def write(self, b):
            raise AssertionError("write() must not be called when not writable")

    class Ready(io.IOBase):
        def ioctl(self, req, arg):
            if req == 10:
                return -1                   # no OS fd: the poller asks ioctl(POLL)
            return arg if req == 3 else 0   # MP_STREAM_POLL: ready for what was asked

        def write(self, b):
            sink.write(b)
            return len(b)

    p = Port(inp, Ready(), bufsize=4)

    async def main():
        return (await p.read(), await p.read())
    eq(asyncio.run(main()), (b"abcd", b"ef"))
    eq(p.write(b"hello"), 5)
    eq(sink.getvalue(), b"hello")
    q = Port(open(path, "rb"), Stuck())
    eq(q.write(b"frame\r\n"), 0)
    eq(q.dropped, 7)
    import os
    os.remove(path)


# ---------------------------------------------------------------- the app on the Pico board

def _app_on_pico(fill_ul):
    fakes.reset()
    import app as app_mod

    class NullPort:
        async def read(self):
            return b""

        def write(self, b):
            return len(b)
    b = board_mod.PicoBoard(port=NullPort(), root=None)
    t = FakeTicks(50000)
    b.clock = Clock(ticks_ms=t)
    # The motor on the same fake time (its left() counts from ticks_us / ticks_ms).
    b.motor = Stepper(pins.STEP, pins.DIR, pins.EN, rate=pins.STEP_RATE_DEFAULT,
                      ticks_us=lambda: (t.t * 1000) & _MASK30, ticks_ms=lambda: t.t & _MASK30)
    b.initial_fill_ul = fill_ul
    machine.ADC_VALUES[pins.BATTERY_ADC] = 40000  # a healthy cell (about 3.6 V through the divider)
    a = app_mod.App(b)
    if fill_ul:
        a.pump.reservoir.fill(fill_ul)  # boot() fills a fresh bench; this test skips boot()
    return a, b, t


def _run(a, t, ms, sm=None, cap=1000):
    """Advance fake time by `ms`, waking when the app asks (at most every `cap` ms), as the
    control loop does (sync, then plan the motor's next batch where the app has plan());
    the emulated PIO runs in step with the clock, 200 cycles a ms. Returns the STEP pulses."""
    pulses = 0
    end = t.t + ms
    plan = getattr(a, "plan", None)
    while t.t < end:
        a.sync()
        if plan is not None:
            plan()
        w = a.next_wake()
        if w is None or w > cap:
            w = cap
        if w < 1:
            w = 1
        w = min(w, end - t.t)
        sm = rp2.MACHINES[0]
        if sm.running:
            pulses += sm.run(w * 200).rising
        t.t += w
    return pulses
    return pulses


@req("SR-008")
def test_continuous_program_gives_step_pulses_at_the_mean_rate():
    from core import program as programs
    from core.druglib import LIBRARY
    a, b, t = _app_on_pico(20000)
    sm = rp2.MACHINES[0]
    prog = programs.parse({"drug": "water", "concentration_ug_per_ml": 1000,
                           "mode": "continuous", "rate_ug_per_day": 7200}, LIBRARY)
    a.pump.set_program(prog)
    # 7200 ug/day of 1000 ug/mL = 5 uL/min; at 31250 pL/step that is 160 steps/min, a step
    # every 375 ms. 10 min and 100 ms: past step 1600's EN window, before step 1601.
    pulses = _run(a, t, 10 * 60000 + 100, sm)
    eq(abs(pulses - 1600) <= 2, True, "10 min gave %d pulses, want 1600" % pulses)
    eq(machine.state(pins.EN).level, 1, "EN released between steps 375 ms apart")
    eq(abs(machine.state(pins.EN).writes.count(0) - pulses) <= 2, True, "EN asserted for each step")


def test_empty_reservoir_alarm_sounds_its_pattern_on_the_buzzer_pin():
    from core import program as programs
    from core.druglib import LIBRARY
    a, b, t = _app_on_pico(0)     # a real Pico does not know its reservoir: starts empty
    prog = programs.parse({"drug": "water", "concentration_ug_per_ml": 1000,
                           "mode": "continuous", "rate_ug_per_day": 7200}, LIBRARY)
    a.pump.set_program(prog)
    pwm = machine.PWMS[pins.BUZZER]
    n0 = len(pwm.history)
    _run(a, t, 20000, rp2.MACHINES[0], cap=20)
    duties = [v for k, v in pwm.history[n0:] if k == "duty"]
    ons = 0
    last = 0
    for d in duties:
        if d and not last:
            ons += 1
        last = d
    eq(ons >= 3, True, "buzzer pulses in 20 s: %d" % ons)
    eq(pwm.freq() >= 50, True)
    eq(machine.state(pins.LED_RED).writes.count(1) >= 1, True, "red LED lit")
    eq([x["code"] for x in a.alarms.active()], ["RESERVOIR_EMPTY"])
    eq(rp2.MACHINES[0].words, [], "no step pulses from an empty reservoir")


def test_button_press_gives_a_patient_bolus_request_through_the_app():
    from core import program as programs
    from core.druglib import LIBRARY
    a, b, t = _app_on_pico(20000)
    prog = programs.parse({"drug": "water", "concentration_ug_per_ml": 1000, "mode": "continuous",
                           "rate_ug_per_day": 1440, "patient_bolus": {"dose_ug": 100, "duration_min": 5,
                                                                       "max_per_24h": 4, "lockout_min": 30}}, LIBRARY)
    a.pump.set_program(prog, LIBRARY.max24_ug("water"))
    a.pump.tick(31 * 60_000)  # past the lockout that follows programming
    events = []
    a.event = lambda kind, data=None: events.append((kind, data))

    async def main():
        task = asyncio.create_task(a.button_loop())
        await asyncio.sleep_ms(0)
        machine.fire(pins.BUTTON, 0)  # the patient presses the button
        for _ in range(5):
            await asyncio.sleep_ms(0)
        task.cancel()
    asyncio.run(main())
    eq(a.pump.bolus_kind, "patient")
    eq([e[1]["outcome"] for e in events if e[0] == "patient_bolus"], ["delivered"])
    eq(events[0][1]["src"], "button")


@req("SR-008")
def test_ctrl_c_mid_move_leaves_the_driver_disabled():
    import app as app_mod
    fakes.reset()
    machine.ADC_VALUES[pins.BATTERY_ADC] = 40000

    class CtrlCPort:
        def __init__(self):
            self.board = None

        async def read(self):
            self.board.motor.move(500)  # the motor is moving when Ctrl-C arrives
            rp2.MACHINES[0].run(20)
            eq(machine.state(pins.EN).level, 0, "EN asserted while moving")
            raise KeyboardInterrupt

        def write(self, b):
            return len(b)
    port = CtrlCPort()
    b = board_mod.PicoBoard(port=port, root=None)
    port.board = b
    try:
        app_mod.run(b)
    except KeyboardInterrupt:
        pass
    eq(machine.state(pins.EN).level, 1, "EN released after Ctrl-C")
    eq((b.motor.left(), b.motor.busy()), (0, False))
    # The RP2040 watchdog cannot be left running under a person at the REPL: it would reset
    # the board 8 s later, in the middle of `make flash`. Its ENABLE bit is cleared.
    eq(machine.mem32[0x4005B000], 0x40000000, "watchdog CTRL.ENABLE cleared through the clear alias")


@req("SR-008")
def test_ctrl_c_inside_an_irq_handler_is_handed_on_and_the_handler_stays_armed():
    # On the rp2 port a Ctrl-C can land inside a hard IRQ handler; MicroPython would print
    # "Uncaught exception in IRQ callback handler" and disable the handler for good.
    from pico import irq
    s, sm, en = _stepper()
    s.move(10)
    s.move(10)
    sm.run(20)
    eq(en.level, 0)

    def ctrl_c():
        raise KeyboardInterrupt
    s._feed = ctrl_c       # the IRQ's FIFO top-up is where the Ctrl-C lands
    s._done(sm)  # raises nothing
    eq((en.level, sm.running), (1, False), "EN released, the PIO stopped")
    eq(s.left(), 10, "the unpulsed batch stays counted for the firmware to take back")
    got = []

    def run_relay():
        # As in app.run: the KeyboardInterrupt of a task leaves asyncio.run itself.
        try:
            asyncio.run(asyncio.wait_for_ms(irq.relay(), 100))
        except KeyboardInterrupt:
            got.append("raised")
        except asyncio.TimeoutError:
            got.append("timeout")
    run_relay()
    eq(got, ["raised"], "the board's relay task raises it again in the firmware")
    b = Button(pins.BUTTON)
    b._ticks = ctrl_c
    b._isr(None)  # raises nothing either
    run_relay()
    eq(got, ["raised", "raised"])
    run_relay()
    eq(got[-1], "timeout", "once only")


def test_pico_board_runs_the_interrupt_relay_task():
    fakes.reset()
    b = board_mod.PicoBoard(port=NullPort(), root=None)
    tasks = list(b.tasks(None))
    eq(len(tasks), 1)
    tasks[0].close()
