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


# ---------------------------------------------------------------- stepper (PIO)

def test_stepper_program_is_a_real_pio_program():
    p = stepper_mod.step_program
    ops = [i.op for i in p.instrs]
    eq(ops, ["pull", "out", "mov", "jmp", "mov", "jmp", "jmp", "irq"])
    eq(p.kw["fifo_join"], rp2.PIO.JOIN_TX)
    # every instruction drives the side-set pin explicitly (non-optional side-set)
    eq([i.sideset for i in p.instrs], [0, 0, 1, 1, 0, 0, 0, 0])


def test_boot_state_driver_released_dir_forward():
    s, sm, en = _stepper()
    eq(en.level, 1, "EN must be high (driver off) at boot")
    eq(en.writes[0], 1, "EN's first write must release the driver")
    eq(machine.state(pins.DIR).level, 1)
    eq(machine.state(pins.STEP).level, 0)
    eq(sm.running, True)
    eq(s.busy(), False)


def test_move_puts_count_and_rate_word_and_en_only_during_move():
    s, sm, en = _stepper(rate=400)
    s.enable(False)   # what app.run does first
    s.enable(True)
    eq(en.level, 1, "enable(True) alone must not power the driver")
    s.move(1000)
    half = (200000 // 400 - 5) // 2
    eq(sm.words, [(half << 16) | 999])
    eq(en.level, 0, "EN asserted while moving")
    eq(s.busy(), True)
    tr = sm.run()
    eq(tr.rising, 1000)
    # every gap between pulses is identical: hardware timing, no jitter
    eq(tr.periods, {2 * half + 5: 999})
    eq(200000 // (2 * half + 5), 400)
    eq(s.rate(), 400)
    eq(len(tr.irqs), 1)
    eq(en.level, 1, "EN released by the completion IRQ")
    eq(s.busy(), False)
    eq(en.writes[-3:], [1, 0, 1])


def test_queued_moves_keep_en_until_the_last_one():
    s, sm, en = _stepper(rate=1000)
    s.move(10)
    s.move(70000)   # two FIFO words (65536 + 4464)
    eq(len(sm.words), 3)
    eq([w & 0xFFFF for w in sm.words], [9, 65535, 4463])
    tr = sm.run()
    eq(tr.rising, 70010)
    eq(len(tr.irqs), 3)
    eq(en.level, 1)
    # EN was never released between the queued moves
    eq(en.writes.count(1), 2, "one release at boot, one after the last move")


def test_more_moves_than_the_fifo_holds_go_to_the_backlog():
    s, sm, en = _stepper(rate=1000)
    for _ in range(12):
        s.move(3)
    eq(len(sm.fifo), 8)
    eq(s.pending(), 12, "moves past a full FIFO merge into one backlog")
    tr = sm.run()
    eq((tr.rising, len(tr.irqs)), (36, 9))
    eq(en.level, 1)
    s2, sm2, en2 = _stepper(rate=1000)
    for _ in range(7):
        s2.move(1)
    s2.move(65536 + 100)         # 2 chunks: one fills the FIFO, 100 steps wait
    eq(len(sm2.fifo), 8)
    eq(s2.pending(), 100)
    tr = sm2.run()               # the completion IRQ feeds the backlog in
    eq(tr.rising, 7 + 65536 + 100)
    eq(s2.pending(), 0)
    eq(en2.level, 1)
    eq(en2.writes.count(1), 2, "EN released only at boot and after the whole run")


def test_mean_rate_over_a_continuous_program():
    # A continuous program: 12 moves of 25 steps, 1 s apart, at 400 steps/s. Each move's
    # pulses last 62.5 ms, EN is released in between, and 300 steps were given in 12 s.
    s, sm, en = _stepper(rate=400)
    s.enable(True)
    total = 0
    for k in range(12):
        s.move(25)
        eq(en.level, 0)
        tr = sm.run()
        total += tr.rising
        eq(en.level, 1, "EN released between moves")
        eq(tr.cycles * 1000 // 200000 < 70, True, "move fits well inside its second")
    eq(total, 300)
    eq(en.writes.count(0), 12)


def test_move_errors_change_nothing():
    s, sm, en = _stepper()
    raises(ValueError, s.move, -1)
    raises(ValueError, s.move, 1.5)
    raises(ValueError, s.move, 10 ** 7)
    raises(ValueError, s.set_rate, 0)
    raises(ValueError, s.set_rate, 50000)
    raises(ValueError, s.move, True)
    s.move(0)
    eq(sm.words, [])
    eq(en.level, 1)
    eq(s.busy(), False)


def test_disable_aborts_move_and_releases_en():
    s, sm, en = _stepper()
    s.enable(True)
    s.move(5000)
    eq(en.level, 0)
    inits = sm.inits
    s.enable(False)
    eq(en.level, 1)
    eq(sm.fifo, [], "FIFO cleared")
    eq(sm.inits, inits + 1)
    eq(s.busy(), False)
    s.move(7)                 # works again after an abort
    eq(sm.run().rising, 7)


def test_set_rate_changes_next_word():
    s, sm, en = _stepper()
    s.enable(True)
    real = s.set_rate(2000)
    eq(abs(real - 2000) * 100 <= 2000, True, "within 1 %%: %d" % real)
    s.move(100)
    half = sm.words[0] >> 16
    eq(half, (200000 // 2000 - 5) // 2)
    tr = sm.run()
    eq(list(tr.periods), [2 * half + 5])
    eq(200000 // (2 * half + 5), real)
    eq(sm.words[0] < (1 << 30), True)
    s.set_rate(stepper_mod.MIN_RATE)
    s.move(1)
    eq(sm.words[1] < (1 << 30), True, "slowest word still a small int")


def test_stall_from_diag_releases_en_and_latches():
    fakes.reset()
    s = Stepper(pins.STEP, pins.DIR, pins.EN, diag_pin=pins.DIAG)
    en = machine.state(pins.EN)
    sm = rp2.MACHINES[0]
    s.enable(True)
    s.move(100)
    eq(en.level, 0)
    micropython.heap_lock()
    try:
        machine.fire(pins.DIAG, 1)
    finally:
        micropython.heap_unlock()
    eq(s.stalled(), True)
    eq(en.level, 1)
    n = len(sm.words)
    s.move(1)                 # ignored while stalled: no pulses, EN stays released
    eq(len(sm.words), n)
    eq(en.level, 1)
    s.enable(False)
    s.enable(True)
    eq(s.stalled(), True, "still stalled while DIAG is high")
    machine.fire(pins.DIAG, 0)
    s.enable(True)
    eq(s.stalled(), False)


def test_stepper_irq_and_move_allocate_nothing():
    s, sm, en = _stepper()
    s.enable(True)
    micropython.heap_lock()
    try:
        s.move(100)
        s._done(sm)
    finally:
        micropython.heap_unlock()
    eq(en.level, 1)


# ---------------------------------------------------------------- DC pump

def test_dc_pump_runs_for_slices_and_stops():
    fakes.reset()
    t = FakeTicks(5000)
    d = DcPump(pins.PUMP_PWM, slice_ms=100, duty_u16=40000, ticks_ms=t)
    pwm = machine.PWMS[pins.PUMP_PWM]
    tim = machine.TIMERS[0]
    eq(pwm.duty_u16(), 0)
    d.enable(False)
    d.move(3)
    eq(pwm.duty_u16(), 40000)
    eq(tim.period, 300)
    eq(tim.mode, machine.Timer.ONE_SHOT)
    t.t += 100
    d.move(2)           # adds to the 200 ms left
    eq(tim.period, 400)
    tim.expire()
    eq(pwm.duty_u16(), 0)
    eq(d.busy(), False)
    d.move(1)
    d.enable(False)
    eq(pwm.duty_u16(), 0)
    eq(tim.active, False)
    raises(ValueError, d.move, -2)


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
    for attr in ("move", "enable", "stalled"):
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
    j._at = 0
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
    b.initial_fill_ul = fill_ul
    machine.ADC_VALUES[pins.BATTERY_ADC] = 40000  # a healthy cell (about 3.6 V through the divider)
    a = app_mod.App(b)
    if fill_ul:
        a.pump.reservoir.fill(fill_ul)  # boot() fills a fresh bench; this test skips boot()
    return a, b, t


def _run(a, t, ms, sm=None, cap=1000):
    """Advance fake time by `ms`, waking when the app asks (at most every `cap` ms); let the
    emulated PIO run each move. Returns the STEP pulses counted."""
    pulses = 0
    end = t.t + ms
    while t.t < end:
        a.sync()
        if sm is not None and sm.fifo:
            pulses += sm.run().rising
            eq(machine.state(pins.EN).level, 1, "EN released after each move")
        w = a.next_wake()
        if w is None or w > cap:
            w = cap
        if w < 1:
            w = 1
        t.t += min(w, end - t.t)
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
    # 7200 ug/day of 1000 ug/mL = 5 uL/min; at 31250 pL/step that is 160 steps/min.
    pulses = _run(a, t, 10 * 60000, sm)
    eq(abs(pulses - 1600) <= 2, True, "10 min gave %d pulses, want 1600" % pulses)
    eq(machine.state(pins.EN).level, 1)
    eq(machine.state(pins.EN).writes.count(0) > 100, True, "many short moves, EN each time")


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
    eq(b.motor.pending(), 0)
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
    eq(en.level, 0)

    def ctrl_c():
        raise KeyboardInterrupt
    s._feed = ctrl_c
    s._backlog = 5
    s._done(None)  # raises nothing
    eq(en.level, 1, "EN released")
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
