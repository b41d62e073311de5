# The pump's parts and its control tick: PumpTick holds every part (clock, dose sources,
# volume run, bridge, catheter, reservoir, counters, the 24 h window, the patient gate) and
# advances them by the time it is told (`tick(dt_ms)`), returning the steps to move. It also
# keeps what the tick runs by: state, rates, the next program boundary, the flags. core.pump's
# Pump builds on it with what a programmer asks (programs, boluses, priming, refill, settings).
# Everything a tick touches is preallocated: tick() and what it calls run under heap_lock().
from core.base import const

from core.engine import RateIntegrator, StepConverter, Counter, UNITS_PER_Q
from core.reservoir import Reservoir
from core.rolling import Rolling24
from core.patient import PatientGate
from core.clock import PumpClock, StoppedTime, DAY_MS
from core.bolus import Bolus, PeriodicSchedule
from core.volume_run import VolumeRun
from core.catheter import Catheter
from core.bridge import ConcentrationBridge
from core.limits import check_calibration

_MIN_MS = const(60_000)
_MAX_WAKE_MS = const(3_600_000)
_WINDOW_SEG_MS = const(900_000)  # keeps a bolus's quanta (1.6e6 per µg) below 2**30
_DEFAULT_STOPPED_ALARM_S = const(48 * 3600)

# Conditions found inside the tick, raised as alarms by the app (raising may allocate).
FLAG_EMPTY = const(1)
FLAG_LOW = const(2)
FLAG_LIMIT24 = const(4)  # the rolling 24 h dose reached the drug's maximum
FLAG_PERIODIC_REFUSED = const(8)  # a periodic bolus would have passed the 24 h maximum
FLAG_PERIODIC_SKIPPED = const(16)  # a periodic bolus fell while another bolus ran
FLAG_STOPPED_LONG = const(32)  # stopped longer than the set time while a program exists
FLAG_PERIODIC_STARTED = const(64)
FLAG_BRIDGE_DONE = const(128)
FLAG_PRIME_DONE = const(256)  # a priming bolus moved its volume
FLAG_CALIBRATION_RUN_DONE = const(512)  # a calibration run moved its volume

STOPPED = "stopped"
RUNNING = "running"


class PumpTick:
    def __init__(self, alarms, model_ml=20, pl_per_step=50_000):
        self.alarms = alarms
        self.reservoir = Reservoir(model_ml)
        self.program = None
        self.state = STOPPED
        self.stop_reason = "no program"
        self.basal = RateIntegrator()
        self.bolus = Bolus()
        self.volume_run = VolumeRun()
        self.conv = None
        self.bridge = ConcentrationBridge()
        self.catheter = Catheter()
        self.steps_total = Counter()
        self.nl_total = Counter()
        self.q_total = Counter()  # dose quanta (1/1600 ng) delivered, as k + units
        self.pl_below_nl = 0  # pL of delivered volume below 1 nL (the step journal keeps it too)
        self.calibrate(pl_per_step)
        self.clock = PumpClock()
        self.stopped = StoppedTime(_DEFAULT_STOPPED_ALARM_S)
        self._to_boundary = -1  # ms to the next program boundary, -1 if none
        self.flags = 0
        self._seg_cap = 1 << 29
        self.rolling = Rolling24(900)
        self.max24_ug = 0
        self.gate = PatientGate(None)
        self.periodic_schedule = PeriodicSchedule()

    # The parts' values under the names the app, the services and the tests read.
    up_s = property(lambda self: self.clock.up_s)
    day = property(lambda self: self.clock.day)
    ms = property(lambda self: self.clock.ms_of_day)
    clock_set = property(lambda self: self.clock.clock_set)
    bolus_kind = property(lambda self: self.bolus.kind)
    bolus_left_q = property(lambda self: self.bolus.left_q)
    prime_left = property(lambda self: self.volume_run.steps_left)  # steps any volume run has left
    bridge_left = property(lambda self: self.bridge.steps_left)
    tubing_nl = property(lambda self: self.catheter.tubing_nl)
    catheter_cm = property(lambda self: self.catheter.length_cm)
    catheter_nl_per_cm = property(lambda self: self.catheter.nl_per_cm)
    stopped_s = property(lambda self: self.stopped.stopped_s)

    @property
    def stopped_alarm_s(self):
        return self.stopped.alarm_s

    @stopped_alarm_s.setter
    def stopped_alarm_s(self, seconds):
        self.stopped.alarm_s = seconds

    # ---- what the programmer's requests (core.pump) and the tick share -----------------
    def calibrate(self, pl_per_step):
        """Take a new volume per step (refused whole if the program's drug cannot use it)."""
        check_calibration(pl_per_step)
        # The program's converter at the new calibration, or the engine's Refusal first.
        conv = StepConverter(self.program.conc, pl_per_step) if self.program is not None else None
        self.pl_per_step = pl_per_step
        self._nl_step = pl_per_step // 1000
        self._pl_step = pl_per_step % 1000
        if conv is not None:
            self.conv = conv

    def run_from_now(self):
        """Run the program at its rate for the current time (the caller checked it may)."""
        self.state = RUNNING
        self.stop_reason = ""
        self.stopped.reset()
        self.enter_time()  # no catch-up: delivery (re)starts at the rate for now

    def stop(self, reason="stopped by programmer"):
        self.state = STOPPED
        self.stop_reason = reason
        self.basal.set_rate(0)
        self.cancel_bolus()
        self.volume_run.cancel()
        self.rates_changed()
        self._to_boundary = -1

    def busy(self):
        """A bolus or a volume run is running: nothing else may start."""
        return self.bolus.kind is not None or self.volume_run.steps_left

    def begin_bolus(self, kind, dose_ug, duration_min):
        # Unchecked (callers refuse first): the periodic one starts inside the tick.
        self.bolus.start(kind, dose_ug, duration_min)
        self.rates_changed()

    def cancel_bolus(self):
        left = self.bolus.cancel()
        self.rates_changed()
        return left

    def _periodic(self):
        """Start the periodic bolus due now, unless another runs or it would pass the 24 h
        maximum (each said by a flag). Runs inside the tick: allocation-free."""
        due = self.periodic_schedule.due(self.program.periodic, self.clock.day, self.clock.ms_of_day)
        if due is None:
            return
        if self.busy():
            self.flags |= FLAG_PERIODIC_SKIPPED
        elif self.max24_ug and self.rolling.would_exceed(self.clock.up_s, due[1], self.max24_ug):
            self.flags |= FLAG_PERIODIC_REFUSED
        else:
            self.begin_bolus("periodic", due[1], due[2])
            self.flags |= FLAG_PERIODIC_STARTED

    # ---- the control tick (allocation-free) --------------------------------------------
    def rates_changed(self):
        # A tick segment stays short enough that no source's quanta leave the small ints.
        a = self.basal.max_dt()
        b = self.bolus.integrator.max_dt()
        c = self.volume_run.integrator.max_dt()
        if b < a:
            a = b
        if c < a:
            a = c
        self._seg_cap = a // 3

    def enter_time(self):
        """Set the basal rate and the next boundary for the current time of day."""
        p = self.program
        ms = self.clock.ms_of_day
        m = ms // _MIN_MS
        self.basal.set_rate(p.rate_at(m))
        self.rates_changed()
        if p.periodic:
            self._periodic()
        if len(p.steps) > 1:
            d = p.next_change_min(m) * _MIN_MS - ms
            if d <= 0:
                d += DAY_MS
            self._to_boundary = d
        else:
            self._to_boundary = -1

    def tick(self, dt_ms):
        """Advance dt_ms of time; return the steps the motor must move now."""
        steps = 0
        running = self.state == RUNNING
        bolus = self.bolus
        while dt_ms > 0:
            seg = dt_ms
            b = self._to_boundary
            if running and b >= 0 and b < seg:
                seg = b
            if running and bolus.kind is not None:
                e = bolus.ms_to_end()
                if e < seg:
                    seg = e
            cap = self._seg_cap
            if cap > _WINDOW_SEG_MS:
                cap = _WINDOW_SEG_MS  # the 24 h window's resolution: dose lands in the right bucket
            if seg > cap:
                seg = cap
            if seg < 1:
                # Only a boundary that is due right now may take a zero-length segment (it is
                # handled below); anything else moves at least 1 ms so the loop always ends.
                seg = 0 if (running and self._to_boundary == 0) else 1
            quanta = 0
            if running and seg:
                quanta = self.basal.advance(seg)
                if bolus.kind is not None:
                    quanta += bolus.advance(seg)
                if self.volume_run.steps_left:
                    steps += self._volume_run_steps(seg)
            elif not running and seg and self.program is not None:
                if self.stopped.advance(seg):
                    self.flags |= FLAG_STOPPED_LONG
            self.clock.advance(seg)
            if self._to_boundary > 0:
                self._to_boundary -= seg
            if running and quanta:
                self.q_total.add(quanta)
                steps += self.conv.add_q(quanta)
                # Stamped at the segment's end: never ages out early.
                if self.rolling.add_quanta(self.clock.up_s, quanta) and self.max24_ug \
                        and self.rolling.total_ug(self.clock.up_s) >= self.max24_ug:
                    self.flags |= FLAG_LIMIT24
            dt_ms -= seg
            if running:
                if bolus.kind is not None and bolus.left_q == 0:
                    self.cancel_bolus()
                if self._to_boundary == 0:
                    self.enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def _volume_run_steps(self, seg):
        run = self.volume_run
        n = run.advance(seg)
        if not run.steps_left:
            self.rates_changed()
            self.flags |= run.done_flag
            if run.was_stopped:
                self.state = STOPPED
                self.stop_reason = run.done_reason
        return n

    def _deliver(self, steps):
        got = self.reservoir.take(steps, self._nl_step, self._pl_step)
        if got:
            conv = self.bridge.delivered(got)
            if conv is not None:
                self.conv = conv  # the new drug has reached the catheter tip
                self.flags |= FLAG_BRIDGE_DONE
            self.steps_total.add(got)
            pl = self.pl_below_nl + got * self._pl_step
            nl = pl // 1000
            self.pl_below_nl = pl - nl * 1000
            self.nl_total.add(got * self._nl_step + nl)
        if got < steps or self.reservoir.empty(self._nl_step, self._pl_step):
            self.stop("reservoir empty")
            self.flags |= FLAG_EMPTY
        elif self.reservoir.low():
            self.flags |= FLAG_LOW
        return got

    def reservoir_empty(self):
        """Not even one more step is left."""
        return self.reservoir.empty(self._nl_step, self._pl_step)

    def take_flags(self):
        """Conditions the last ticks found; the app turns them into alarms outside the tick."""
        f = self.flags
        self.flags = 0
        return f

    def ms_to_next_step(self):
        """When the next step falls due (never late; may be early), -1 if nothing is due."""
        if self.state != RUNNING or self.conv is None:
            return -1
        bolus = self.bolus.integrator if self.bolus.kind is not None else None
        rate = self.basal.rate
        if bolus is not None:
            rate += bolus.rate
        if rate == 0:
            return -1
        units = self.conv.q_to_next_step() * UNITS_PER_Q - self.basal.remainder_units
        if bolus is not None:
            units -= bolus.remainder_units
        if units <= 0:
            # The two remainders add up to a quantum but neither holds one: the next whole
            # quantum of either source is the earliest anything can happen (never 0: no spin).
            a = self.basal.ms_to_q(1)
            b = bolus.ms_to_q(1) if bolus is not None else -1
            if a < 0 or (0 <= b < a):
                a = b
            return a if a > 0 else 1
        return (units + rate - 1) // rate

    def next_wake_ms(self):
        """The longest the app may sleep before the tick has work to do."""
        w = _MAX_WAKE_MS
        n = self.ms_to_next_step()
        if 0 <= n < w:
            w = n
        if self.volume_run.steps_left:
            n = self.volume_run.ms_to_next_step()
            if 0 <= n < w:
                w = n
        if self.state == RUNNING:
            b = self._to_boundary
            if 0 <= b < w:
                w = b
            if self.bolus.kind is not None:
                e = self.bolus.ms_to_end()
                if e < w:
                    w = e
        return w if w > 0 else 0
