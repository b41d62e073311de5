# PicoBoard: the board interface of docs/architecture.md built from the Pico's drivers and the
# one pin map in pico/pins.py. main.py on the Pico does:
#     from pico.board import PicoBoard, boot_button_held
#     if not boot_button_held(): import app; app.run(PicoBoard())
from micropython import const
import time
import machine
from machine import Pin

from pico import pins
from pico.clock import Clock
from pico.buzzer import Buzzer
from pico.leds import Leds
from pico.button import Button
from pico.battery import Battery

_WDT_MAX_MS = const(8388)  # RP2040 hardware limit
# WATCHDOG REASON: why the last reset came through the watchdog. TIMER: it starved (a hang).
# FORCE: a requested reset (machine.reset(), mpremote reset), which MicroPython's
# machine.reset_cause() also reports as WDT_RESET.
_WATCHDOG_REASON = const(0x40058008)
_REASON_TIMER = const(1)
# WATCHDOG CTRL through the RP2040's atomic bit-clear alias (+0x3000): clearing ENABLE (bit 30)
# stops the countdown. machine.WDT has no deinit on rp2, but the hardware allows it.
_WATCHDOG_CTRL_CLR = const(0x4005B000)
_CTRL_ENABLE = const(0x40000000)


def boot_button_held(pin=pins.BUTTON, samples=5):
    """True when the bolus button is held down at boot: main.py then skips auto-start and
    leaves the REPL free. Samples a few times 2 ms apart so one glitch does not count."""
    p = Pin(pin, Pin.IN, Pin.PULL_UP)
    time.sleep_ms(2)  # let the pull-up charge the line
    for _ in range(samples):
        if p.value() != 0:
            return False
        time.sleep_ms(2)
    return True


class Watchdog:
    """machine.WDT behind start/feed. The RP2040 watchdog cannot be stopped once started."""

    timeout_ms = 8000  # near the RP2040's 8388 ms limit: ride out a slow flash write
    feed_ms = 1000     # the supervisor's period: a hung task is caught within ~1 s

    def __init__(self):
        self._wdt = None

    def start(self, timeout_ms):
        if not isinstance(timeout_ms, int) or not 1 <= timeout_ms <= _WDT_MAX_MS:
            raise ValueError("watchdog timeout must be an int in 1..%d ms, got %r"
                             % (_WDT_MAX_MS, timeout_ms))
        if self._wdt is not None:
            raise RuntimeError("watchdog already started")
        self._wdt = machine.WDT(timeout=timeout_ms)
        self.timeout_ms = timeout_ms

    def feed(self):
        if self._wdt is not None:
            self._wdt.feed()

    def release(self):
        """Stop the watchdog: only when a person interrupted the firmware (Ctrl-C from mpremote
        or Thonny). Without this the board resets 8 s later, in the middle of `make flash` or
        whatever the person is doing at the REPL. A crash keeps it running, so the board resets
        and therapy resumes."""
        machine.mem32[_WATCHDOG_CTRL_CLR] = _CTRL_ENABLE
        self._wdt = None


def make_motor(p=pins):
    if p.MOTOR_KIND == "stepper":
        from pico.stepper import Stepper
        return Stepper(p.STEP, p.DIR, p.EN, p.DIAG if p.HAS_DIAG else None,
                       rate=p.STEP_RATE_DEFAULT)
    if p.MOTOR_KIND == "dc":
        from pico.dcpump import DcPump
        return DcPump(p.PUMP_PWM, slice_ms=p.DC_SLICE_MS, duty_u16=p.DC_DUTY_U16)
    raise ValueError("pins.MOTOR_KIND must be 'stepper' or 'dc', got %r" % (p.MOTOR_KIND,))


def make_scale(p=pins, probe_ms=300):
    """The HX711 if one answers (DT goes low) within probe_ms, else None."""
    if not p.HAS_SCALE:
        return None
    from pico.hx711 import HX711
    hx = HX711(p.HX711_DT, p.HX711_SCK)
    t0 = time.ticks_ms()
    while not hx.ready():
        if time.ticks_diff(time.ticks_ms(), t0) > probe_ms:
            return None
        time.sleep_ms(10)
    return hx


def device_id(path="/device_id"):
    """"PICO-" and the flash chip's unique id in hex: stable for the board's life. A chip that
    reports no id (all zeros or all ones, as emulators and some clones do) gets a random one,
    made once and kept in `path` (None: not kept): "PICO-R" and 16 hex digits."""
    uid = machine.unique_id()
    if any(b not in (0, 0xFF) for b in uid):
        return "PICO-" + "".join("%02X" % b for b in uid)
    if path is not None:
        try:
            with open(path) as f:
                kept = f.read().strip()
            if kept.startswith("PICO-R") and len(kept) == 22:
                return kept
        except OSError:
            pass
    import os
    made = "PICO-R" + "".join("%02X" % b for b in os.urandom(8))
    if path is not None:
        with open(path, "w") as f:
            f.write(made)
    return made


class PicoBoard:
    name = "pico"
    lost_data = False  # MicroPython's own boot formats a flash it cannot mount: nothing to report
    calibrated_at_build = False  # a real head must be calibrated before therapy

    def __init__(self, p=pins, port=None, root="/"):
        # Motor first: its constructor releases EN before anything else can take time.
        self.motor = make_motor(p)
        # root: the mounted littlefs ("/" on the Pico; tests pass a scratch folder, or None).
        self.storage_root = root
        base = root.rstrip("/") if root else ""
        self.device_id = device_id(base + "/device_id" if root is not None else None)
        if p.MOTOR_KIND == "dc":
            self.nominal_pl_per_step = p.DC_SLICE_PL_DEFAULT
        else:
            self.nominal_pl_per_step = p.STEP_PL_DEFAULT
        self.reservoir_model_ml = p.RESERVOIR_ML
        # The firmware cannot know what is in a real reservoir: 0 until the refill workflow.
        self.initial_fill_ul = 0
        self.clock = Clock()
        if port is None:
            from pico.port import Port
            port = Port()
        self.port = port
        self.buzzer = Buzzer(p.BUZZER)
        self.leds = Leds(p.LED_RED, p.LED_YELLOW)
        self.button = Button(p.BUTTON)
        self.battery = Battery(p.BATTERY_ADC, p.DIVIDER_TOP_OHM, p.DIVIDER_BOTTOM_OHM,
                               p.ADC_VREF_MV)
        self.scale = make_scale(p)
        self.watchdog = Watchdog()
        self.nvram = None
        if root is not None:
            from pico.nvram import FlashNvram
            self.nvram = FlashNvram(base + "/journal")

    def tasks(self, app):
        from pico.irq import relay
        return (relay(),)  # a Ctrl-C caught inside an interrupt handler, raised again here

    def battery_mv(self):
        return self.battery.mv()

    def reset_cause(self):
        c = machine.reset_cause()
        if c == machine.PWRON_RESET:
            return "power_on"
        if c == machine.WDT_RESET and machine.mem32[_WATCHDOG_REASON] & _REASON_TIMER:
            return "watchdog"
        # machine.reset() goes through the watchdog too (REASON FORCE): a requested reset. A soft
        # reset (Ctrl-D) keeps the last hardware reason, so it reads as that reset again.
        return "soft"

    def shutdown(self):
        """Leave the hardware safe (Ctrl-C, fatal error): motor off and disarmed, buzzer off."""
        try:
            self.motor.enable(False)
        finally:
            self.buzzer.off()
