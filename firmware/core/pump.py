# The pump's therapy state machine: program, run state, and the control tick that orchestrates
# its parts, each in its own core module and each saving its own state:
#   clock (uptime, wall clock, stopped time), engine (dose integrators, step conversion,
#   counters), bolus (the bolus source, the periodic schedule), volume_run (priming and
#   calibration runs), catheter (dead volume), bridge (a concentration change), reservoir
#   (volume, refill, forecast), rolling (the 24 h dose window), patient (the patient gate),
#   limits (the ranges a programmer may ask), pump_record (saved state, journal, status).
# Pure: it is told elapsed time (`tick(dt_ms)`) and returns the steps to move; the app moves
# the motor. Everything a tick touches is preallocated, so the tick runs under heap_lock().
# Longer than 300 lines: this is where the parts meet. The tick and every request that changes
# what it runs (program, stop, a bolus, a volume run, a refill) share one run state (state,
# program, the sources' rates and segment cap, the flags); split, one state machine would be
# read across files, and each job they delegate already has a module of its own.
from core.base import const, Refusal

from core.engine import RateIntegrator, StepConverter, Counter, UNITS_PER_Q
from core.reservoir import Reservoir
from core.rolling import Rolling24
from core.patient import PatientGate, DELIVERED
from core.clock import PumpClock, StoppedTime, DAY_MS
from core.bolus import Bolus, PeriodicSchedule
from core.volume_run import VolumeRun
from core.catheter import Catheter, catheter_values, dead_volume_nl, steps_for_nl
from core.bridge import ConcentrationBridge
from core import pump_record
from core.limits import (MAX_BOLUS_UG, MIN_PL_PER_STEP, MAX_PL_PER_STEP,  # noqa: F401 (re-exported)
                         check_bolus_size, check_calibration, check_prime_duration, check_stopped_alarm_h)

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


class Pump:
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

    # ---- configuration (may allocate) -------------------------------------------------
    def calibrate(self, pl_per_step):
        check_calibration(pl_per_step)
        if self.program is not None:
            self.check_conversion(self.program.conc, pl_per_step)
        self.pl_per_step = pl_per_step
        self._nl_step = pl_per_step // 1000
        self._pl_step = pl_per_step % 1000
        if self.program is not None:
            self.conv = StepConverter(self.program.conc, pl_per_step)

    def check_conversion(self, conc, pl):
        """The converter for conc and pl, or the engine's Refusal when they do not combine
        (a refill's new concentration is checked with it before anything changes)."""
        return StepConverter(conc, pl)

    def set_program(self, program, max24_ug=0):
        """Apply a validated program whole (core.program.parse did the validation)."""
        conv = self.check_conversion(program.conc, self.pl_per_step)
        if program.mode != "stopped" and not self.clock.clock_set and len(program.steps) > 1:
            raise Refusal("CLOCK", "a flex profile follows the wall clock: set the clock first (pumpctl time sync)")
        self.cancel_bolus()
        self.program = program
        self.max24_ug = max24_ug
        self.gate.reconfigure(program.patient, self.clock.up_s)  # lockout after programming
        if self.conv is None or self.conv.conc != program.conc:
            self.conv = conv  # a new concentration starts a new accounting epoch
            self.bridge.cancel()
        if program.mode == "stopped":
            self.stop("programmed stopped")
        else:
            self._run()

    def _run(self):
        self.state = RUNNING
        self.stop_reason = ""
        self.stopped.reset()
        self._enter_time()  # no catch-up: delivery (re)starts at the rate for now

    def stop(self, reason="stopped by programmer"):
        self.state = STOPPED
        self.stop_reason = reason
        self.basal.set_rate(0)
        self.cancel_bolus()
        self.volume_run.cancel()
        self._rates_changed()
        self._to_boundary = -1

    def resume(self):
        if self.program is None or self.program.mode == "stopped":
            raise Refusal("STATE", "there is no program to resume; program the pump first")
        if self.alarms.motor_blocked():
            raise Refusal("ALARM", "an alarm that stops the motor is active; resolve it first")
        if self.reservoir.empty(self._nl_step, self._pl_step):
            raise Refusal("EMPTY", "the reservoir is empty; refill first")
        self._run()

    def set_wall(self, day, ms):
        self.clock.set_wall(day, ms)
        if self.state == RUNNING:
            self._enter_time()

    def configure(self, low_reservoir_ul=None, stopped_alarm_h=None, catheter=None):
        """The pump's settings, each None to keep it: all are checked before any is kept.
        catheter: (tubing_nl, length_cm, nl_per_cm). Returns the settings now kept."""
        if low_reservoir_ul is not None:
            self.reservoir.check_low_threshold(low_reservoir_ul)
        if stopped_alarm_h is not None:
            check_stopped_alarm_h(stopped_alarm_h)
        if catheter is not None:
            catheter = catheter_values(catheter)
        if low_reservoir_ul is not None:
            self.reservoir.low_nl = low_reservoir_ul * 1000
        if stopped_alarm_h is not None:
            self.stopped.alarm_s = stopped_alarm_h * 3600
        if catheter is not None:
            self.catheter.set(catheter[0], catheter[1], catheter[2])
        c = self.catheter
        return {"low_reservoir_ul": self.reservoir.low_nl // 1000, "stopped_alarm_h": self.stopped.alarm_s // 3600,
                "tubing_ul": c.tubing_nl // 1000, "catheter_cm": c.length_cm, "catheter_nl_per_cm": c.nl_per_cm}

    def set_catheter(self, tubing_nl, length_cm, nl_per_cm):
        """Volumes a priming bolus fills and a bridge flushes (pump tubing + catheter). All
        three are checked before any is kept; sentences in the units a programmer gives."""
        self.catheter.set(tubing_nl, length_cm, nl_per_cm)

    def dead_volume_nl(self):
        return self.catheter.dead_volume_nl()

    # ---- boluses and volume runs ------------------------------------------------------
    def _busy(self):
        return self.bolus.kind is not None or self.volume_run.steps_left

    def check_bolus(self, kind, dose_ug, duration_min):
        """Refuse (raise) a bolus that cannot start now; changes nothing."""
        if self.state != RUNNING:
            raise Refusal("STATE", "the pump is stopped; a bolus needs a running program")
        if self.bolus.kind is not None:
            raise Refusal("BUSY", "a %s bolus is already running" % self.bolus.kind)
        if self.volume_run.steps_left:
            raise Refusal("BUSY", "a priming bolus is running")
        check_bolus_size(dose_ug, duration_min)
        up_s = self.clock.up_s
        if self.max24_ug and self.rolling.would_exceed(up_s, dose_ug, self.max24_ug):
            raise Refusal(
                "LIMIT_24H",
                "a %d µg %s bolus would pass the 24 h maximum of %d µg for %s (%d µg given in the last 24 h); refused whole"
                % (dose_ug, kind, self.max24_ug, self.program.drug, self.rolling.total_ug(up_s)),
            )

    def start_bolus(self, kind, dose_ug, duration_min):
        """Deliver dose_ug over duration_min on top of the basal rate (after check_bolus)."""
        self.check_bolus(kind, dose_ug, duration_min)
        self._start_bolus(kind, dose_ug, duration_min)

    def patient_bolus(self):
        """Decide a patient request: (outcome, sentence). Every outcome is for the log."""
        if self.state != RUNNING:
            return "refused_limit", "the pump is stopped"
        if self._busy():
            return "refused_lockout", "another bolus is running"
        outcome, detail = self.gate.request(self.clock.up_s, self.rolling, self.max24_ug)
        if outcome == DELIVERED:
            p = self.program.patient
            self._start_bolus("patient", p[0], p[1])
        return outcome, detail

    def _start_bolus(self, kind, dose_ug, duration_min):
        self.bolus.start(kind, dose_ug, duration_min)
        self._rates_changed()

    def cancel_bolus(self):
        left = self.bolus.cancel()
        self._rates_changed()
        return left

    def _periodic(self):
        """Start the periodic bolus due now, unless another runs or it would pass the 24 h
        maximum (each said by a flag). Runs inside the tick: allocation-free."""
        due = self.periodic_schedule.due(self.program.periodic, self.clock.day, self.clock.ms_of_day)
        if due is None:
            return
        if self._busy():
            self.flags |= FLAG_PERIODIC_SKIPPED
        elif self.max24_ug and self.rolling.would_exceed(self.clock.up_s, due[1], self.max24_ug):
            self.flags |= FLAG_PERIODIC_REFUSED
        else:
            self._start_bolus("periodic", due[1], due[2])
            self.flags |= FLAG_PERIODIC_STARTED

    def start_prime(self, duration_min, catheter=None):
        """Fill pump tubing and catheter: volume, not dose at the tip (it fills the line).
        catheter: None to keep the settings, or (tubing_nl, length_cm, nl_per_cm) to keep
        with this prime. Everything is checked before anything is kept. Returns the steps."""
        check_prime_duration(duration_min)
        if catheter is not None:
            catheter = catheter_values(catheter)
        if self.program is None:
            raise Refusal("STATE", "program the pump (drug and concentration) before priming")
        if self._busy():
            raise Refusal("BUSY", "a bolus is already running")
        if catheter is None:
            vol = self.catheter.dead_volume_nl()
        else:
            vol = dead_volume_nl(catheter[0], catheter[1], catheter[2])
        if vol <= 0:
            raise Refusal("RANGE", "set the catheter length and volume per cm first (nothing to prime)")
        steps = steps_for_nl(vol, self.pl_per_step)
        if steps < 1:
            raise Refusal("RANGE", "the dead volume is smaller than one step")
        if catheter is not None:
            self.catheter.set(catheter[0], catheter[1], catheter[2])
        self._move_volume(steps, duration_min, "primed", FLAG_PRIME_DONE)
        return steps

    def start_calibration_run(self, steps, duration_min):
        """Move `steps` over `duration_min` for weighing (the command layer checked the pump is
        stopped and the rate is one the integrator takes); ends with FLAG_CALIBRATION_RUN_DONE."""
        self._move_volume(steps, duration_min, "calibration run done", FLAG_CALIBRATION_RUN_DONE)

    def _move_volume(self, steps, duration_min, done_reason, done_flag):
        # A pump that was stopped runs only for this and stops again with done_reason.
        was_stopped = self.state != RUNNING
        self.volume_run.start(steps, duration_min, was_stopped, done_reason, done_flag)
        if was_stopped:
            # The motor runs even with basal stopped: the line must be full first.
            self.state = RUNNING
            self.stop_reason = ""
            self.basal.set_rate(0)
        self._rates_changed()

    # ---- refill and concentration change ----------------------------------------------
    def refill(self, withdrawn_ul, new_volume_ul):
        """Empty-and-refill (core.reservoir checks both volumes before any change), then the
        patient lockout. Returns (expected_ul, mismatch_ul, warn). Overfill is refused."""
        got = self.reservoir.refill(withdrawn_ul, new_volume_ul)
        self.gate.start_lockout(self.clock.up_s)  # lockout after refill
        return got

    def change_concentration(self, program, bridge):
        """After a refill with a new concentration: the new program (same drug, new conc).
        With bridge, the tubing and catheter still hold the old drug: keep delivering the
        prescribed dose at the old concentration until that volume has been pushed through."""
        old = self.conv
        conv = self.check_conversion(program.conc, self.pl_per_step)
        dead = self.catheter.dead_volume_nl()
        if bridge and (old is None or old.conc == program.conc):
            raise Refusal("STATE", "no concentration change to bridge")
        if bridge and dead <= 0:
            raise Refusal("RANGE", "set the catheter length and volume per cm first (nothing to bridge)")
        self.set_program(program, self.max24_ug)
        if bridge:
            self.conv = old
            self.bridge.start(conv, steps_for_nl(dead, self.pl_per_step))
        return self.bridge.steps_left

    def forecast(self):
        """Days until the low-reservoir threshold and until empty, at the worst-case daily
        volume (program + every allowed patient bolus, as Prometra assumes). None if no use."""
        p = self.program
        if p is None or self.state != RUNNING and p.mode == "stopped":
            return None
        ug = p.worst_case_daily_ug()
        if ug <= 0:
            return None
        return self.reservoir.forecast(ug, p.conc, self.clock.day)

    # ---- saving, the step journal and status (allocate; never in the tick) ------------
    # core.pump_record composes them from the parts; the methods stay the pump's own.
    def to_state(self):
        """The pump's share of the saved state: a JSON-able dict of small ints and strings."""
        return pump_record.to_state(self)

    def from_state(self, st, load_program, last_wall=None):
        """Restore what to_state saved (core.pump_record.from_state says how); returns the saved
        (state, stop reason). The pump stays stopped: the caller resumes it."""
        return pump_record.from_state(self, st, load_program, last_wall)

    def journal_fields(self):
        return pump_record.journal_fields(self)

    def apply_journal(self, conc, pl_per_step, steps, nl, quanta, pl_below_nl, reservoir_nl, reservoir_pl,
                      partial_step_units, basal_remainder_units):
        return pump_record.apply_journal(self, conc, pl_per_step, steps, nl, quanta, pl_below_nl, reservoir_nl,
                                         reservoir_pl, partial_step_units, basal_remainder_units)

    def status(self):
        return pump_record.status(self)

    # ---- the control tick (allocation-free) --------------------------------------------
    def _rates_changed(self):
        a = self.basal.max_dt()
        b = self.bolus.integrator.max_dt()
        c = self.volume_run.integrator.max_dt()
        if b < a:
            a = b
        if c < a:
            a = c
        self._seg_cap = a // 3

    def _enter_time(self):
        """Set the basal rate and the next boundary for the current time of day."""
        p = self.program
        ms = self.clock.ms_of_day
        m = ms // _MIN_MS
        self.basal.set_rate(p.rate_at(m))
        self._rates_changed()
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
                    self._enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def _volume_run_steps(self, seg):
        run = self.volume_run
        n = run.advance(seg)
        if not run.steps_left:
            self._rates_changed()
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

    def rate_now(self):
        if self.state != RUNNING:
            return 0
        return self.basal.rate

    def delivered_ul(self):
        return self.nl_total.value() // 1000
