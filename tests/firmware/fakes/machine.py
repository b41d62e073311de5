# Fake `machine` for boards/pico tests: records what the drivers do so tests can assert it.
# Pin state is shared per GPIO number, as on the chip: two Pin(5) objects see one level.

PWRON_RESET = 1
WDT_RESET = 3
SOFT_RESET = 5  # not on rp2; here so tests can see the "soft" mapping

PINS = {}       # gpio -> _PinState
PWMS = {}       # gpio -> PWM (the last one made on that pin)
ADC_VALUES = {}  # gpio -> raw read_u16 value the next reads return
ADC_READS = {}  # gpio -> number of reads
WDTS = []       # every WDT made
TIMERS = []     # every Timer made
IRQ_STATE = [0]  # disable_irq nesting depth (0 = interrupts on)
RESET_CAUSE = [PWRON_RESET]
UNIQUE_ID = [b"\xe6\x60\x58\x38\x83\x2f\x1a\x2b"]
WATCHDOG_REASON = 0x40058008


class _Mem32:
    """machine.mem32: only the registers the board reads (watchdog REASON)."""

    def __init__(self):
        self.regs = {}

    def __getitem__(self, addr):
        return self.regs.get(addr, 0)

    def __setitem__(self, addr, v):
        self.regs[addr] = v


mem32 = _Mem32()


def reset():
    PINS.clear()
    PWMS.clear()
    ADC_VALUES.clear()
    ADC_READS.clear()
    del WDTS[:]
    del TIMERS[:]
    IRQ_STATE[0] = 0
    RESET_CAUSE[0] = PWRON_RESET
    UNIQUE_ID[0] = b"\xe6\x60\x58\x38\x83\x2f\x1a\x2b"
    mem32.regs.clear()


class _PinState:
    def __init__(self, gpio):
        self.gpio = gpio
        self.level = 0
        self.mode = None
        self.pull = None
        self.writes = []      # every value written by the driver, in order
        self.handler = None   # IRQ handler registered by the driver
        self.trigger = 0
        self.hard = False
        self.on_write = None  # test hook: called with the new level after each write
        self.on_read = None   # test hook: returns the level to read
        self.pin = None       # a Pin object for this GPIO, handed to IRQ handlers


def state(gpio):
    s = PINS.get(gpio)
    if s is None:
        s = _PinState(gpio)
        PINS[gpio] = s
    return s


def fire(gpio, level):
    """Drive an input to `level` and call its IRQ handler if the edge matches the trigger."""
    s = state(gpio)
    old = s.level
    s.level = level
    if s.handler is None or old == level:
        return False
    edge = Pin.IRQ_RISING if level else Pin.IRQ_FALLING
    if s.trigger & edge:
        s.handler(s.pin)  # no allocation here: tests call fire() under heap_lock
        return True
    return False


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    ALT = 3
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_FALLING = 4
    IRQ_RISING = 8

    def __init__(self, id, mode=-1, pull=-1, value=None):
        if isinstance(id, Pin):
            id = id.gpio
        if not isinstance(id, int) or not 0 <= id <= 29:
            raise ValueError("invalid pin %r" % (id,))
        self.gpio = id
        self._s = state(id)
        if self._s.pin is None:
            self._s.pin = self
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        s = self._s
        if mode != -1:
            s.mode = mode
        if pull != -1:
            s.pull = pull
            if pull == Pin.PULL_UP and s.mode == Pin.IN and not s.writes:
                s.level = 1
        if value is not None:
            self.value(value)

    def value(self, v=None):
        s = self._s
        if v is None:
            if s.on_read is not None:
                return s.on_read()
            return s.level
        s.level = 1 if v else 0
        s.writes.append(s.level)
        if s.on_write is not None:
            s.on_write(s.level)
        return None

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=IRQ_FALLING | IRQ_RISING, hard=False):
        s = self._s
        s.handler = handler
        s.trigger = trigger
        s.hard = hard
        return None


class PWM:
    def __init__(self, pin, freq=None, duty_u16=None):
        self.gpio = pin.gpio if isinstance(pin, Pin) else pin
        self._freq = 0
        self._duty = 0
        self.history = []  # ("freq", hz) and ("duty", u16) in the order they were set
        self.deinited = False
        PWMS[self.gpio] = self
        if freq is not None:
            self.freq(freq)
        if duty_u16 is not None:
            self.duty_u16(duty_u16)

    def freq(self, hz=None):
        if hz is None:
            return self._freq
        if not 8 <= hz <= 62500000:
            raise ValueError("freq out of range")
        self._freq = hz
        if self.history is not None:  # None: a test that must not allocate
            self.history.append(("freq", hz))

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        if not 0 <= d <= 65535:
            raise ValueError("duty out of range")
        self._duty = d
        if self.history is not None:  # None: a test that must not allocate
            self.history.append(("duty", d))

    def deinit(self):
        self._duty = 0
        self.deinited = True
        if self.history is not None:  # None: a test that must not allocate
            self.history.append(("deinit", 0))


class ADC:
    def __init__(self, pin):
        self.gpio = pin.gpio if isinstance(pin, Pin) else pin
        if self.gpio not in (26, 27, 28, 29):
            raise ValueError("not an ADC pin")

    def read_u16(self):
        ADC_READS[self.gpio] = ADC_READS.get(self.gpio, 0) + 1
        return ADC_VALUES.get(self.gpio, 0)


class WDT:
    def __init__(self, id=0, timeout=5000):
        if not 1 <= timeout <= 8388:
            raise ValueError("timeout out of range")
        self.timeout = timeout
        self.feeds = 0
        WDTS.append(self)

    def feed(self):
        self.feeds += 1


class Timer:
    ONE_SHOT = 0
    PERIODIC = 1

    def __init__(self, id=-1, **kw):
        self.mode = None
        self.period = None
        self.callback = None
        self.active = False
        self.inits = 0
        TIMERS.append(self)
        if kw:
            self.init(**kw)

    def init(self, mode=PERIODIC, period=-1, callback=None, freq=-1, hard=True):
        self.mode = mode
        self.period = period
        self.callback = callback
        self.active = True
        self.inits += 1

    def deinit(self):
        self.active = False

    def expire(self):
        """Test helper: the period has elapsed."""
        if self.active and self.callback is not None:
            if self.mode == Timer.ONE_SHOT:
                self.active = False
            self.callback(self)


def disable_irq():
    IRQ_STATE[0] += 1
    return IRQ_STATE[0]


def enable_irq(state):
    IRQ_STATE[0] -= 1


def reset_cause():
    return RESET_CAUSE[0]


def unique_id():
    return UNIQUE_ID[0]


def freq(hz=None):
    return 125000000
