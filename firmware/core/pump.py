# The pump's therapy state machine: program, dose sources, reservoir and counters.
#
# Pure: it is told elapsed time (`tick(dt_ms)`) and returns the steps to move; the app moves
# the motor. Everything a tick touches is preallocated, so the tick runs under heap_lock().
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

from core.engine import RateIntegrator, StepConverter, Counter, EngineError, UNITS_PER_Q, Q_PER_NG, Q_PER_UG
from core.reservoir import Reservoir

_DAY_MS = const(86_400_000)
_MIN_MS = const(60_000)
_MAX_WAKE_MS = const(3_600_000)
_EXACT_Q = const(500_000)  # below this many quanta left, bolus end times are computed exactly
MAX_BOLUS_UG = const(600)  # keeps a bolus's quanta (1.6e6 per µg) below 2**30

# Conditions found inside the tick, raised as alarms by the app (raising may allocate).
FLAG_EMPTY = const(1)
FLAG_LOW = const(2)

STOPPED = "stopped"
RUNNING = "running"


class PumpError(ValueError):
    """A refused request: `code` for scripts, `msg` a sentence for people."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


class Pump:
    def __init__(self, alarms, model_ml=20, pl_per_step=50_000):
        self.alarms = alarms
        self.reservoir = Reservoir(model_ml)
        self.program = None
        self.state = STOPPED
        self.stop_reason = "no program"
        self.basal = RateIntegrator()
        self.bolus = RateIntegrator()
        self.bolus_kind = None
        self.bolus_left_q = 0
        self.conv = None
        self.steps_total = Counter()
        self.nl_total = Counter()
        self.q_total = Counter()  # dose quanta (1/1600 ng) delivered, as k + units
        self._pl = 0  # pL of delivered volume below 1 nL
        self.calibrate(pl_per_step)
        # Time: uptime as s + ms, wall clock as day (since 2000-01-01) + ms of day.
        self.up_s = 0
        self._up_ms = 0
        self.day = 0
        self.ms = 0
        self.clock_set = False
        self._to_boundary = -1  # ms to the next program boundary, -1 if none
        self.flags = 0
        self._seg_cap = 1 << 29

    # ---- configuration (may allocate) -------------------------------------------------
    def calibrate(self, pl_per_step):
        if not isinstance(pl_per_step, int) or pl_per_step < 100 or pl_per_step > 1_000_000:
            raise PumpError("RANGE", "calibration must be 100..1000000 pL per step, not %r" % (pl_per_step,))
        if self.program is not None:
            self._check_conv(self.program.conc, pl_per_step)
        self.pl_per_step = pl_per_step
        self._nl_step = pl_per_step // 1000
        self._pl_step = pl_per_step % 1000
        if self.program is not None:
            self.conv = StepConverter(self.program.conc, pl_per_step)

    def _check_conv(self, conc, pl):
        try:
            return StepConverter(conc, pl)
        except EngineError as e:
            raise PumpError(e.code, e.msg)

    def set_program(self, program):
        """Apply a validated program whole (core.program.parse did the validation)."""
        conv = self._check_conv(program.conc, self.pl_per_step)
        if program.mode != "stopped" and not self.clock_set and len(program.steps) > 1:
            raise PumpError("CLOCK", "a flex profile follows the wall clock: set the clock first (pumpctl time sync)")
        self.cancel_bolus()
        self.program = program
        if self.conv is None or self.conv.conc != program.conc:
            self.conv = conv  # a new concentration starts a new accounting epoch
        if program.mode == "stopped":
            self.stop("programmed stopped")
        else:
            self.state = RUNNING
            self.stop_reason = ""
            self._enter_time()

    def stop(self, reason="stopped by programmer"):
        self.state = STOPPED
        self.stop_reason = reason
        self.basal.set_rate(0)
        self.cancel_bolus()
        self._to_boundary = -1

    def resume(self):
        if self.program is None or self.program.mode == "stopped":
            raise PumpError("STATE", "there is no program to resume; program the pump first")
        if self.alarms.motor_blocked():
            raise PumpError("ALARM", "an alarm that stops the motor is active; resolve it first")
        if self.reservoir.empty(self._nl_step, self._pl_step):
            raise PumpError("EMPTY", "the reservoir is empty; refill first")
        self.state = RUNNING
        self.stop_reason = ""
        self._enter_time()  # no catch-up: delivery restarts at the rate for now

    def set_wall(self, day, ms):
        if not (0 <= day < 1 << 20) or not (0 <= ms < _DAY_MS):
            raise PumpError("RANGE", "wall clock out of range")
        self.day, self.ms, self.clock_set = day, ms, True
        if self.state == RUNNING:
            self._enter_time()

    def start_bolus(self, kind, dose_ug, duration_ms):
        """Deliver dose_ug over duration_ms on top of the basal rate."""
        if self.state != RUNNING:
            raise PumpError("STATE", "the pump is stopped; a bolus needs a running program")
        if self.bolus_kind is not None:
            raise PumpError("BUSY", "a %s bolus is already running" % self.bolus_kind)
        if dose_ug <= 0 or duration_ms < _MIN_MS:
            raise PumpError("RANGE", "a bolus needs a dose > 0 µg and a duration of at least 1 minute")
        if dose_ug > MAX_BOLUS_UG:
            raise PumpError("RANGE", "a single bolus is at most %d µg on this pump" % MAX_BOLUS_UG)
        rate = dose_ug * _DAY_MS // duration_ms  # rounded down: the dose is exact, the end may be later
        self.bolus.set_rate(max(1, rate))
        self._rates_changed()
        self.bolus.da = 0
        self.bolus_left_q = dose_ug * Q_PER_UG
        self.bolus_kind = kind

    def cancel_bolus(self):
        left = self.bolus_left_q
        self.bolus.set_rate(0)
        self.bolus_kind = None
        self.bolus_left_q = 0
        self._rates_changed()
        return left

    def _rates_changed(self):
        a = self.basal.max_dt()
        b = self.bolus.max_dt()
        self._seg_cap = (a if a < b else b) // 2

    def _enter_time(self):
        """Set the basal rate and the next boundary for the current time of day."""
        p = self.program
        m = self.ms // _MIN_MS
        self.basal.set_rate(p.rate_at(m))
        self._rates_changed()
        if len(p.steps) > 1:
            nxt = p.next_change_min(m)
            d = nxt * _MIN_MS - self.ms
            if d <= 0:
                d += _DAY_MS
            self._to_boundary = d
        else:
            self._to_boundary = -1

    # ---- the control tick (allocation-free) --------------------------------------------
    def tick(self, dt_ms):
        """Advance dt_ms of time; return the steps the motor must move now."""
        steps = 0
        running = self.state == RUNNING
        while dt_ms > 0:
            seg = dt_ms
            b = self._to_boundary
            if running and b >= 0 and b < seg:
                seg = b
            if running and self.bolus_kind is not None:
                e = self._ms_to_bolus_end()
                if e < seg:
                    seg = e
            cap = self._seg_cap
            if seg > cap:
                seg = cap
            if seg <= 0:
                seg = 0
            if running and seg:
                ng = self.basal.advance(seg)
                if self.bolus_kind is not None:
                    bn = self.bolus.advance(seg)
                    if bn > self.bolus_left_q:
                        bn = self.bolus_left_q
                    self.bolus_left_q -= bn
                    ng += bn
                if ng:
                    self.q_total.add(ng)
                    steps += self.conv.add_q(ng)
            self._advance_time(seg)
            dt_ms -= seg
            if running:
                if self.bolus_kind is not None and self.bolus_left_q == 0:
                    self.cancel_bolus()
                if self._to_boundary == 0:
                    self._enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def _ms_to_bolus_end(self):
        left = self.bolus_left_q
        if left <= _EXACT_Q:
            return self.bolus.ms_to_q(left)
        per_ms = (self.bolus.rate + UNITS_PER_Q - 1) // UNITS_PER_Q  # upper bound of quanta/ms
        return (left - _EXACT_Q) // per_ms

    def _advance_time(self, seg):
        ms = self._up_ms + seg
        s = ms // 1000
        self._up_ms = ms - s * 1000
        self.up_s += s
        ms = self.ms + seg
        if ms >= _DAY_MS:
            d = ms // _DAY_MS
            self.day += d
            ms -= d * _DAY_MS
        self.ms = ms
        if self._to_boundary > 0:
            self._to_boundary -= seg

    def _deliver(self, steps):
        got = self.reservoir.take(steps, self._nl_step, self._pl_step)
        if got:
            self.steps_total.add(got)
            pl = self._pl + got * self._pl_step
            nl = pl // 1000
            self._pl = pl - nl * 1000
            self.nl_total.add(got * self._nl_step + nl)
        if got < steps or self.reservoir.empty(self._nl_step, self._pl_step):
            self.stop("reservoir empty")
            self.flags |= FLAG_EMPTY
        elif self.reservoir.low():
            self.flags |= FLAG_LOW
        return got

    def take_flags(self):
        """Conditions the last ticks found; the app turns them into alarms outside the tick."""
        f = self.flags
        self.flags = 0
        return f

    def ms_to_next_step(self):
        """When the next step falls due (never late; may be early), -1 if nothing is due."""
        if self.state != RUNNING or self.conv is None:
            return -1
        rate = self.basal.rate
        if self.bolus_kind is not None:
            rate += self.bolus.rate
        if rate == 0:
            return -1
        need = self.conv.q_to_next_step()
        units = need * UNITS_PER_Q - self.basal.da
        if self.bolus_kind is not None:
            units -= self.bolus.da
        if units <= 0:
            return 0
        return (units + rate - 1) // rate

    def next_wake_ms(self):
        """The longest the app may sleep before the tick has work to do."""
        w = _MAX_WAKE_MS
        n = self.ms_to_next_step()
        if 0 <= n < w:
            w = n
        if self.state == RUNNING:
            b = self._to_boundary
            if 0 <= b < w:
                w = b
            if self.bolus_kind is not None:
                e = self._ms_to_bolus_end()
                if e < w:
                    w = e
        return w if w > 0 else 0

    # ---- reporting (allocates; never in the tick) ------------------------------------
    def rate_now(self):
        if self.state != RUNNING:
            return 0
        return self.basal.rate

    def delivered_ul(self):
        return self.nl_total.value() // 1000

    def status(self):
        p = self.program
        return {
            "state": self.state,
            "stop_reason": self.stop_reason,
            "reservoir_ul": self.reservoir.volume_ul(),
            "reservoir_nl": self.reservoir.volume_nl,
            "reservoir_model_ml": self.reservoir.model_ml,
            "delivered_ul": self.delivered_ul(),
            "delivered_nl": self.nl_total.value(),
            "delivered_steps": self.steps_total.value(),
            "delivered_ug": self.q_total.value() // Q_PER_UG,
            "rate_ug_per_day": self.rate_now(),
            "concentration_ug_per_ml": p.conc if p else 0,
            "drug": p.drug if p else None,
            "mode": p.mode if p else "none",
            "bolus": None if self.bolus_kind is None else {"kind": self.bolus_kind, "left_ug": self.bolus_left_q // Q_PER_UG},
            "pl_per_step": self.pl_per_step,
            "uptime_s": self.up_s,
            "clock_set": self.clock_set,
        }
