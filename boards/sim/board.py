# The virtual bench as a board: the same interface a Pico board offers (docs/architecture.md),
# backed by the physical model in physics.py and the clock in clock.py.
from sim.clock import SimClock
from sim.physics import Bench
from sim.port import PtyPort


class SimMotor:
    def __init__(self, bench):
        self.bench = bench
        self.enabled = False
        self.moves = 0

    def move(self, steps):
        # The driver is enabled only while moving; in the model a move is instantaneous.
        self.enabled = True
        self.bench.move(steps)
        self.moves += 1
        self.enabled = False

    def enable(self, on):
        self.enabled = bool(on)

    def stalled(self):
        return False

    def info(self):
        return {"enabled": self.enabled, "moves": self.moves, "steps": self.bench.head.steps}


class SimBuzzer:
    def __init__(self, clock):
        self.clock = clock
        self.hz = 0
        self.timeline = []  # (virtual ms, hz) edges, kept short
        self.max_edges = 2000

    def tone(self, hz):
        if hz != self.hz:
            self.hz = hz
            self._edge()

    def off(self):
        if self.hz:
            self.hz = 0
            self._edge()

    def _edge(self):
        self.timeline.append((self.clock.now_ms(), self.hz))
        if len(self.timeline) > self.max_edges:
            self.timeline.pop(0)


class SimLeds:
    def __init__(self):
        self.red = False
        self.yellow = False

    def set(self, red, yellow):
        self.red = bool(red)
        self.yellow = bool(yellow)


class SimWatchdog:
    def __init__(self):
        self.timeout_ms = 0
        self.feeds = 0

    def start(self, timeout_ms):
        self.timeout_ms = timeout_ms

    def feed(self):
        self.feeds += 1


class SimBoard:
    name = "sim"

    def __init__(self, lockstep=True, speed=1, true_pl_per_step=50_000, nominal_pl_per_step=50_000,
                 reservoir_ul=20_000, model_ml=20, device_id="SIM-0001", port=None):
        self.clock = SimClock(lockstep=lockstep, speed=speed)
        self.bench = Bench(true_pl_per_step=true_pl_per_step, reservoir_ul=reservoir_ul)
        self.motor = SimMotor(self.bench)
        self.buzzer = SimBuzzer(self.clock)
        self.leds = SimLeds()
        self.watchdog = SimWatchdog()
        self.port = port if port is not None else PtyPort()
        self.button = None
        self.scale = None
        self.device_id = device_id
        self.nominal_pl_per_step = nominal_pl_per_step
        self.reservoir_model_ml = model_ml
        self.initial_fill_ul = reservoir_ul  # the bench starts filled, firmware told the truth
        self.storage_root = None
        self.control = None

    def battery_mv(self):
        return self.bench.battery_mv

    def reset_cause(self):
        return "power_on"

    def mode(self):
        return "lockstep" if self.clock.lockstep else ("speed x%d" % self.clock.speed)

    def clock_info(self):
        v = self.clock.now_ms()
        w = self.clock.wall()
        return {"virtual_ms": v, "uptime_s": v // 1000, "wall": list(w) if w else None, "mode": self.mode()}

    def tasks(self, app):
        if self.control is not None:
            yield self.control.serve(app)
