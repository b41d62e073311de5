# The virtual bench as a board: the same interface a Pico board offers (docs/architecture.md),
# backed by the physical model in physics.py and the clock in clock.py.
from sim.clock import SimClock
from sim.physics import Bench, REALISTIC
from sim.port import PtyPort


class SimMotor:
    def __init__(self, bench, clock=None):
        self.bench = bench
        self.clock = clock
        self.enabled = False
        self.moves = 0

    def move(self, steps):
        # The driver is enabled only while moving; in the model a move is instantaneous.
        self.enabled = True
        self.bench.move(steps, self.clock.now_ms() if self.clock is not None else None)
        self.moves += 1
        self.enabled = False

    def enable(self, on):
        self.enabled = bool(on)

    def stalled(self):
        return self.bench.stalled()

    def info(self):
        return {"enabled": self.enabled, "moves": self.moves, "steps": self.bench.head.steps}


class SimScale:
    def __init__(self, bench, clock):
        self.bench = bench
        self.clock = clock

    def read_ug(self):
        return self.bench.scale_ug(self.clock.now_ms())


class SimBuzzer:
    """Records buzzer edges (virtual ms, Hz) in a fixed ring, so a long alarm cannot grow the
    bench's heap."""

    SIZE = 256

    def __init__(self, clock):
        self.clock = clock
        self.hz = 0
        self._t = [0] * self.SIZE
        self._f = [0] * self.SIZE
        self._n = 0  # edges ever recorded

    def tone(self, hz):
        if hz != self.hz:
            self.hz = hz
            self._edge()

    def off(self):
        if self.hz:
            self.hz = 0
            self._edge()

    def _edge(self):
        i = self._n % self.SIZE
        self._t[i] = self.clock.now_ms()
        self._f[i] = self.hz
        self._n += 1

    @property
    def timeline(self):
        """The recorded edges, oldest first (at most SIZE)."""
        n = self._n
        start = n - self.SIZE if n > self.SIZE else 0
        return [(self._t[i % self.SIZE], self._f[i % self.SIZE]) for i in range(start, n)]


class SimLeds:
    def __init__(self):
        self.red = False
        self.yellow = False

    def set(self, red, yellow):
        self.red = bool(red)
        self.yellow = bool(yellow)


class SimWatchdog:
    """The RP2040 watchdog in virtual time. Fed by the firmware's supervisor; if it starves for
    timeout_ms of board time the bench resets the firmware (run.py boots it again)."""

    feed_ms = 30_000  # the bench feeds less often than a Pico so lockstep days stay fast
    timeout_ms = 90_000

    def __init__(self, clock):
        import asyncio
        self.clock = clock
        self.started = False
        self.last = 0
        self.feeds = 0
        self.expired = asyncio.Event()

    def start(self, timeout_ms):
        self.timeout_ms = timeout_ms
        self.started = True
        self.last = self.clock.now_ms()

    def feed(self):
        self.feeds += 1
        self.last = self.clock.now_ms()

    def release(self):
        self.started = False  # Ctrl-C on the bench: the person is in charge now

    async def run(self):
        s = self.clock.Sleeper()
        while True:
            left = self.timeout_ms - (self.clock.now_ms() - self.last) if self.started else self.timeout_ms
            if self.started and left <= 0:
                self.expired.set()  # the bench reboots the firmware (run.py)
                return
            await self.clock.wait(left, s)


class SimBoard:
    name = "sim"

    def __init__(self, lockstep=True, speed=1, true_pl_per_step=50_000, nominal_pl_per_step=50_000,
                 reservoir_ul=20_000, model_ml=20, device_id="SIM-0001", port=None, realistic=False):
        self.clock = SimClock(lockstep=lockstep, speed=speed)
        kw = REALISTIC if realistic else {}
        self.bench = Bench(true_pl_per_step=true_pl_per_step, reservoir_ul=reservoir_ul, **kw)
        self.motor = SimMotor(self.bench, self.clock)
        self.buzzer = SimBuzzer(self.clock)
        self.leds = SimLeds()
        self.watchdog = SimWatchdog(self.clock)
        self.port = port if port is not None else PtyPort()
        self.button = None
        self.scale = SimScale(self.bench, self.clock)
        self.device_id = device_id
        self.nominal_pl_per_step = nominal_pl_per_step
        self.reservoir_model_ml = model_ml
        self.initial_fill_ul = reservoir_ul  # the bench starts filled, firmware told the truth
        self.calibrated_at_build = True  # the bench's nominal volume per step is known
        self.storage_root = None  # "/data" once run.py mounts the flash image
        self.lost_data = False
        self.control = None
        self.cause = "power_on"
        self.nvram = None  # FileNvram when the bench has a flash image (run.py)

    def battery_mv(self):
        return self.bench.battery_mv

    def reset_cause(self):
        return self.cause

    def mode(self):
        return "lockstep" if self.clock.lockstep else ("speed x%d" % self.clock.speed)

    def clock_info(self):
        v = self.clock.now_ms()
        w = self.clock.wall()
        return {"virtual_ms": v, "uptime_s": v // 1000, "wall": list(w) if w else None, "mode": self.mode()}

    def reboot(self, cause):
        """Firmware reset: the physical bench stays, the firmware's tasks and timers go."""
        self.cause = cause
        self.clock.forget_sleepers()
        self.clock.hang = False
        self.watchdog = SimWatchdog(self.clock)
        self.motor.enable(False)
        self.buzzer.off()
        self.leds.set(False, False)

    def tasks(self, app):
        return ()  # the bench's own tasks (control channel, watchdog) are run by run.py

    def shutdown(self):
        """Leave the bench safe (Ctrl-C, the bench stopping, a crash): motor off, buzzer off."""
        try:
            self.motor.enable(False)
        finally:
            self.buzzer.off()


class FileNvram:
    """The bench's non-volatile RAM (a board would use an I2C FRAM): a small file overwritten in
    place, so a killed bench keeps the last record. Like FRAM it takes a write after every
    move (min_interval_ms 0)."""

    kind = "fram"
    min_interval_ms = 0
    max_steps = 0

    def __init__(self, path):
        self.path = path
        try:
            self.f = open(path, "r+b")
        except OSError:
            self.f = open(path, "w+b")

    def write(self, buf):
        self.f.seek(0)
        self.f.write(buf)
        self.f.flush()

    def read(self, n):
        self.f.seek(0)
        d = self.f.read(n)
        return d if d else None
