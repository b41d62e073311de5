# The virtual bench as a board: the same interface a Pico board offers (docs/architecture.md),
# backed by the physical model in physics.py and the clock in clock.py.
from sim.clock import SimClock
from sim.physics import Bench, REALISTIC
from sim.port import PtyPort


class StallFlag:
    """What a Pico's ThreadSafeFlag is to the stall IRQ: set() wakes one waiter, wait() clears."""

    def __init__(self):
        import asyncio
        self._e = asyncio.Event()

    def set(self):
        self._e.set()

    async def wait(self):
        await self._e.wait()
        self._e.clear()


class PressFlag(StallFlag):
    """The button's flag: as StallFlag, and it counts the waits that returned, so the control
    channel knows when the firmware's button task has taken a press (it runs to its next wait
    without yielding: once a wait has returned, the press is handled)."""

    def __init__(self):
        super().__init__()
        self.taken = 0

    async def wait(self):
        await super().wait()
        self.taken += 1


class SimButton:
    """The patient bolus button, as the Pico's (boards/pico/button.py) offers it to the firmware:
    a press sets pressed_flag, which the firmware's button task waits on. The bench's control
    channel presses it (`pumpctl bench press`); there is no contact bounce to reject here."""

    def __init__(self):
        self.pressed_flag = PressFlag()
        self.presses = 0  # presses since the bench started
        self.down = False

    def press(self):
        self.presses += 1
        self.pressed_flag.set()

    def held(self):
        """True while the button is down: the bench's button is only ever pressed and let go."""
        return self.down


class SimMotor:
    """Timed batches in virtual time: move(steps, over_ms) spreads the steps evenly over the
    span (pulse i of n at i * over_ms / n after the batch starts, rounded up to the ms), queued behind any batch
    still running, as the Pico's PIO does. Pulses reach the physics when anyone looks (the
    firmware's stalled()/left(), the scale, the control channel) in one call per look, so a
    quiet day costs the bench nothing per step. While the outlet is blocked the motor's own task
    hands the physics each pulse at its time, so the stall (and stall_flag) comes at the pulse
    that makes it, not at the batch's end."""

    _IDLE_MS = 86_400_000

    def __init__(self, bench, clock=None):
        self.bench = bench
        self.clock = clock
        self.enabled = False
        self.moves = 0
        self.batches = []  # [start_ms, steps, over_ms, pulsed], oldest first; start set when it runs
        self.stall_flag = StallFlag()
        self._stall_told = False
        self._sleeper = None

    def _now(self):
        return self.clock.now_ms() if self.clock is not None else self.bench.now_ms

    def move(self, steps, over_ms=0):
        if type(steps) is not int or steps < 0 or type(over_ms) is not int or over_ms < 0:
            raise ValueError("move needs steps >= 0 and over_ms >= 0, got %r, %r" % (steps, over_ms))
        if steps == 0:
            return
        now = self._now()
        self.release(now)
        self.enabled = True
        self.moves += 1
        start = now
        if self.batches:
            b = self.batches[-1]
            start = b[0] + b[2]
            if start < now:
                start = now
        self.batches.append([start, steps, over_ms, 0])
        self.release(now)
        self.kick()

    def release(self, now=None):
        """Hand the physics every pulse due by `now`."""
        if now is None:
            now = self._now()
        bench = self.bench
        while self.batches:
            b = self.batches[0]
            start, steps, over, done = b
            if now < start:
                break
            if over <= 0 or now >= start + over:
                due = steps
            else:
                due = (now - start) * steps // over
            if due > done:
                if bench.outlet_blocked:
                    # Each pulse at its own time, so the stall is at the pulse that makes it.
                    for i in range(done + 1, due + 1):
                        t = start + ((i * over + steps - 1) // steps if over > 0 else 0)
                        bench.move(1, t if t > bench.now_ms else bench.now_ms)
                else:
                    t = start + ((due * over + steps - 1) // steps if over > 0 else 0)
                    if t > now:
                        t = now
                    bench.move(due - done, t if t > bench.now_ms else bench.now_ms)
                b[3] = due
            if due < steps:
                break
            self.batches.pop(0)
        if not self.batches:
            self.enabled = False
        stalled = bench.stalled()
        if stalled != self._stall_told:
            # DIAG changed, either way: the firmware looks at once (a Pico's DIAG IRQ rises
            # only; there the end of a stall is seen at the next check).
            self._stall_told = stalled
            self.stall_flag.set()

    def left(self):
        self.release()
        n = 0
        for b in self.batches:
            n += b[1] - b[3]
        return n

    def enable(self, on):
        if not on:
            self.release()
            self.batches = []  # abort: the rest of the batch is never pulsed
        self.enabled = bool(on) and bool(self.batches)

    def stalled(self):
        self.release()
        return self.bench.stalled()

    def kick(self):
        if self._sleeper is not None:
            self._sleeper.kick()

    def _next_pulse_ms(self):
        """ms until the next pulse while the outlet is blocked; the idle wait otherwise."""
        if not self.batches or not self.bench.outlet_blocked or self.bench.stalled():
            return self._IDLE_MS
        start, steps, over, done = self.batches[0]
        t = start + (((done + 1) * over + steps - 1) // steps if over > 0 else 0)
        d = t - self._now()
        return d if d > 0 else 0

    async def run(self):
        """The motor's own task (a bench task, not the firmware's): pulses into a blocked line
        one at a time, at their times."""
        self._sleeper = self.clock.Sleeper()
        while True:
            await self.clock.wait(self._next_pulse_ms(), self._sleeper)
            self.release()

    def info(self):
        return {"enabled": self.enabled, "moves": self.moves, "steps": self.bench.head.steps,
                "left": self.left()}


class SimScale:
    def __init__(self, bench, clock):
        self.bench = bench
        self.clock = clock

    def read_ug(self):
        now = self.clock.now_ms()
        self.bench.motor.release(now)  # pulses due by now have reached the beaker
        return self.bench.scale_ug(now)


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

    # The bench feeds far less often than a Pico (1 s) so a lockstep year stays fast: each feed
    # is a wake of the bench's event loop. It bites 45 min after the last feed, so a control
    # loop that stops is reset within 75 min of its last wake (the wake it promised, up to a
    # quarter hour on, then a feed period of grace, then 45 min).
    feed_ms = 900_000
    timeout_ms = 2_700_000

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
        self.bench.motor = self.motor  # the control channel and the scale release due pulses through it
        self.buzzer = SimBuzzer(self.clock)
        self.leds = SimLeds()
        self.watchdog = SimWatchdog(self.clock)
        self.port = port if port is not None else PtyPort()
        self.button = SimButton()  # the firmware's button task waits on it, as on a Pico
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
        d = {"virtual_ms": v, "uptime_s": v // 1000, "wall": list(w) if w else None, "mode": self.mode()}
        if not self.clock.lockstep:
            # Does the bench keep up? Wakes that came later than LATE_MS of virtual time.
            d["late_wakes"] = self.clock.late_wakes
            d["max_late_ms"] = self.clock.max_late_ms
            d["keeping_up"] = self.clock.late_wakes == 0
        return d

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
        # The motor's pulse task runs with the firmware (a reset forgets its sleeper with the
        # firmware's); the control channel and the watchdog are run by run.py.
        return (self.motor.run(),)

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
        # Unbuffered: the record reaches the OS at once and survives a killed bench. No flush()
        # (an fsync on the unix port, 3 ms each), which only a host crash would need.
        self.f.seek(0)
        self.f.write(buf)

    def read(self, n):
        self.f.seek(0)
        d = self.f.read(n)
        return d if d else None
