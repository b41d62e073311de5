# The pump's therapy state machine: program, dose sources, reservoir and counters.
#
# Pure: it is told elapsed time (`tick(dt_ms)`) and returns the steps to move; the app moves
# the motor. Everything a tick touches is preallocated, so the tick runs under heap_lock().
from core.base import const, Refusal

from core.engine import RateIntegrator, StepConverter, Counter, UNITS_PER_Q, Q_PER_NG, Q_PER_UG, MAX_RATE
from core.program_model import MODE_STOPPED  # a program that delivers nothing, not the pump's state
from core.reservoir import Reservoir
from core.rolling import Rolling24
from core.patient import PatientGate, DELIVERED

_DAY_MS = const(86_400_000)
_MIN_MS = const(60_000)
_MAX_WAKE_MS = const(3_600_000)
_EXACT_Q = const(500_000)  # below this many quanta left, bolus end times are computed exactly
MAX_BOLUS_UG = const(600)
_MAX_BOLUS_MIN = const(1440)
MIN_PL_PER_STEP = const(100)  # calibration range: the tick's products stay small within it
MAX_PL_PER_STEP = const(1_000_000)
_MAX_PRIME_MIN = const(240)
_MAX_TUBING_NL = const(2_000_000)
_MAX_CATHETER_CM = const(500)
_MAX_CATHETER_NL_PER_CM = const(50_000)
_MAX_LOW_UL = const(10_000)
_MAX_STOPPED_ALARM_H = const(168)
_MAX_RUN_STEPS = const(400_000)
_MAX_RUN_MIN = const(240)
_DAY_LIMIT = const(1 << 20)  # wall-clock days since 2000-01-01 stay below this (2870 years)
_WINDOW_SEG_MS = const(900_000)  # keeps a bolus's quanta (1.6e6 per µg) below 2**30

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

_DEFAULT_STOPPED_ALARM_S = const(48 * 3600)
# Refill mismatch thresholds by pump model (DOMAIN.md: about 1 mL for 20 mL, 2 mL for 40 mL).
_MISMATCH_UL = {10: 500, 20: 1000, 40: 2000}

STOPPED = "stopped"
RUNNING = "running"


# The ranges of what a programmer may ask, checked here and nowhere else: the command layer
# only decodes and types, and calls these first where a range must be refused before anything
# else is asked (the drug library's limits, the distance from the last calibration).
def check_bolus_size(dose_ug, duration_min):
    """Refuse a bolus dose or duration outside what the pump delivers; changes nothing."""
    if type(dose_ug) is not int or dose_ug <= 0 or dose_ug > MAX_BOLUS_UG:
        raise Refusal("RANGE", "a bolus dose must be 1..%d µg, not %r" % (MAX_BOLUS_UG, dose_ug))
    if type(duration_min) is not int or duration_min < 1 or duration_min > _MAX_BOLUS_MIN:
        raise Refusal("RANGE", "a bolus duration must be 1..%d minutes, not %r" % (_MAX_BOLUS_MIN, duration_min))


def check_calibration(pl_per_step):
    """Refuse a volume per step outside the range the engine's arithmetic is proven for."""
    if type(pl_per_step) is not int or pl_per_step < MIN_PL_PER_STEP or pl_per_step > MAX_PL_PER_STEP:
        raise Refusal("RANGE", "calibration must be %d..%d pL per step, not %r"
                      % (MIN_PL_PER_STEP, MAX_PL_PER_STEP, pl_per_step))


def check_prime_duration(duration_min):
    """Refuse a priming duration the volume integrator is not given; changes nothing."""
    if type(duration_min) is not int or not 1 <= duration_min <= _MAX_PRIME_MIN:
        raise Refusal("RANGE", "priming duration must be 1..%d minutes" % _MAX_PRIME_MIN)


def check_calibration_run(steps, duration_min, pl_per_step):
    """Refuse a calibration run the volume integrator cannot move: 1..400000 steps in 1..240
    minutes, no faster than its top rate (the sentence says how long the run needs)."""
    if type(steps) is not int or not 1 <= steps <= _MAX_RUN_STEPS:
        raise Refusal("RANGE", "a calibration run must be 1..%d steps, not %r" % (_MAX_RUN_STEPS, steps))
    if type(duration_min) is not int or not 1 <= duration_min <= _MAX_RUN_MIN:
        raise Refusal("RANGE", "a calibration run must last 1..%d minutes, not %r" % (_MAX_RUN_MIN, duration_min))
    fastest = MAX_RATE // 1440  # steps a minute the volume integrator takes
    if steps > fastest * duration_min:
        raise Refusal("RANGE", "a run of %d µL (%d steps) in %d min is faster than the pump moves "
                               "(at most %d steps a minute): give it at least %d minutes"
                      % (steps * pl_per_step // 1_000_000, steps, duration_min, fastest, -(-steps // fastest)))


def check_day(day, what="the clock's day"):
    """Refuse a wall-clock day outside what the clock keeps; changes nothing."""
    if type(day) is not int or not 0 <= day < _DAY_LIMIT:
        raise Refusal("RANGE", "%s must be 0..%d (days since 2000-01-01), not %r" % (what, _DAY_LIMIT - 1, day))


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
        self.pl_below_nl = 0  # pL of delivered volume below 1 nL (the step journal keeps it too)
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
        self.rolling = Rolling24(900)
        self.max24_ug = 0
        self._q_rem = 0  # quanta below one ng, for the rolling window
        self.gate = PatientGate(None)
        self._pb_day = -1  # day and minute of the last periodic bolus started: never twice
        self._pb_min = -1
        self.stopped_s = 0
        self._stopped_ms = 0
        self.stopped_alarm_s = _DEFAULT_STOPPED_ALARM_S
        # Priming and bridging move volume, not dose: their own integrators in steps/day.
        self.prime = RateIntegrator()
        self.prime_left = 0  # steps
        self._prime_was_stopped = False
        self._prime_done_reason = ""
        self._prime_done_flag = 0  # which run it is: FLAG_PRIME_DONE or FLAG_CALIBRATION_RUN_DONE
        self._prime_q = 0
        self.bridge_left = 0  # steps still carrying the old concentration
        self._conv_after = None
        # Catheter and pump tubing: the volume a priming bolus fills and a bridge flushes.
        self.tubing_nl = 0
        self.catheter_cm = 0
        self.catheter_nl_per_cm = 0

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
        if program.mode != MODE_STOPPED and not self.clock_set and len(program.steps) > 1:
            raise Refusal("CLOCK", "a flex profile follows the wall clock: set the clock first (pumpctl time sync)")
        self.cancel_bolus()
        self.program = program
        self.max24_ug = max24_ug
        self.gate.reconfigure(program.patient, self.up_s)  # lockout after programming
        if self.conv is None or self.conv.conc != program.conc:
            self.conv = conv  # a new concentration starts a new accounting epoch
            self.bridge_left = 0
            self._conv_after = None
        if program.mode == MODE_STOPPED:
            self.stop("programmed stopped")
        else:
            self.state = RUNNING
            self.stop_reason = ""
            self.stopped_s = self._stopped_ms = 0
            self._enter_time()

    def stop(self, reason="stopped by programmer"):
        self.state = STOPPED
        self.stop_reason = reason
        self.basal.set_rate(0)
        self.cancel_bolus()
        self.prime_left = 0
        self.prime.set_rate(0)
        self._rates_changed()
        self._to_boundary = -1

    def resume(self):
        if self.program is None or self.program.mode == MODE_STOPPED:
            raise Refusal("STATE", "there is no program to resume; program the pump first")
        if self.alarms.motor_blocked():
            raise Refusal("ALARM", "an alarm that stops the motor is active; resolve it first")
        if self.reservoir.empty(self._nl_step, self._pl_step):
            raise Refusal("EMPTY", "the reservoir is empty; refill first")
        self.state = RUNNING
        self.stop_reason = ""
        self.stopped_s = self._stopped_ms = 0
        self._enter_time()  # no catch-up: delivery restarts at the rate for now

    def set_wall(self, day, ms):
        check_day(day)
        if type(ms) is not int or not 0 <= ms < _DAY_MS:
            raise Refusal("RANGE", "the clock's time of day must be 0..%d ms, not %r" % (_DAY_MS - 1, ms))
        self.day, self.ms, self.clock_set = day, ms, True
        if self.state == RUNNING:
            self._enter_time()

    def check_bolus(self, kind, dose_ug, duration_min):
        """Refuse (raise) a bolus that cannot start now; changes nothing."""
        if self.state != RUNNING:
            raise Refusal("STATE", "the pump is stopped; a bolus needs a running program")
        if self.bolus_kind is not None:
            raise Refusal("BUSY", "a %s bolus is already running" % self.bolus_kind)
        if self.prime_left:
            raise Refusal("BUSY", "a priming bolus is running")
        check_bolus_size(dose_ug, duration_min)
        if self.max24_ug and self.rolling.would_exceed(self.up_s, dose_ug, self.max24_ug):
            raise Refusal(
                "LIMIT_24H",
                "a %d µg %s bolus would pass the 24 h maximum of %d µg for %s (%d µg given in the last 24 h); refused whole"
                % (dose_ug, kind, self.max24_ug, self.program.drug, self.rolling.total_ug(self.up_s)),
            )

    def start_bolus(self, kind, dose_ug, duration_min):
        """Deliver dose_ug over duration_min on top of the basal rate (after check_bolus)."""
        self.check_bolus(kind, dose_ug, duration_min)
        self._start_bolus(kind, dose_ug, duration_min)

    def patient_bolus(self):
        """Decide a patient request: (outcome, sentence). Every outcome is for the log."""
        if self.state != RUNNING:
            return "refused_limit", "the pump is stopped"
        if self.bolus_kind is not None or self.prime_left:
            return "refused_lockout", "another bolus is running"
        outcome, detail = self.gate.request(self.up_s, self.rolling, self.max24_ug)
        if outcome == DELIVERED:
            p = self.program.patient
            self._start_bolus("patient", p[0], p[1])
        return outcome, detail

    def _start_bolus(self, kind, dose_ug, duration_min):
        # Small-int arithmetic only: a periodic bolus starts inside the control tick.
        rate = dose_ug * 1440 // duration_min  # rounded down: the dose is exact, the end may be later
        self.bolus.set_rate(rate if rate > 0 else 1)
        self._rates_changed()
        self.bolus.remainder_units = 0
        self.bolus_left_q = dose_ug * Q_PER_UG
        self.bolus_kind = kind
        self._rates_changed()

    def cancel_bolus(self):
        left = self.bolus_left_q
        self.bolus.set_rate(0)
        self.bolus_kind = None
        self.bolus_left_q = 0
        self._rates_changed()
        return left

    def _periodic(self, m):
        """Start the periodic bolus due at minute m, once per day, never late (no catch-up)."""
        p = self.program
        if not p.periodic or (self._pb_day == self.day and self._pb_min == m):
            return
        for t, dose, dur in p.periodic:
            if t == m and self.ms % _MIN_MS < 1000:
                self._pb_day = self.day
                self._pb_min = m
                if self.bolus_kind is not None or self.prime_left:
                    self.flags |= FLAG_PERIODIC_SKIPPED
                elif self.max24_ug and self.rolling.would_exceed(self.up_s, dose, self.max24_ug):
                    self.flags |= FLAG_PERIODIC_REFUSED
                else:
                    self._start_bolus("periodic", dose, dur)
                    self.flags |= FLAG_PERIODIC_STARTED
                return

    def _rates_changed(self):
        a = self.basal.max_dt()
        b = self.bolus.max_dt()
        c = self.prime.max_dt()
        if b < a:
            a = b
        if c < a:
            a = c
        self._seg_cap = a // 3

    def _enter_time(self):
        """Set the basal rate and the next boundary for the current time of day."""
        p = self.program
        m = self.ms // _MIN_MS
        self.basal.set_rate(p.rate_at(m))
        self._rates_changed()
        self._periodic(m)
        if len(p.steps) > 1:
            nxt = p.next_change_min(m)
            d = nxt * _MIN_MS - self.ms
            if d <= 0:
                d += _DAY_MS
            self._to_boundary = d
        else:
            self._to_boundary = -1

    def set_catheter(self, tubing_nl, length_cm, nl_per_cm):
        """Volumes a priming bolus fills and a bridge flushes (pump tubing + catheter). All
        three are checked before any is kept; sentences in the units a programmer gives."""
        if type(tubing_nl) is not int or not 0 <= tubing_nl <= _MAX_TUBING_NL:
            raise Refusal("RANGE", "the tubing volume must be 0..%d µL, not %r" % (
                _MAX_TUBING_NL // 1000, tubing_nl // 1000 if type(tubing_nl) is int else tubing_nl))
        if type(length_cm) is not int or not 0 <= length_cm <= _MAX_CATHETER_CM:
            raise Refusal("RANGE", "the catheter length must be 0..%d cm, not %r" % (_MAX_CATHETER_CM, length_cm))
        if type(nl_per_cm) is not int or not 0 <= nl_per_cm <= _MAX_CATHETER_NL_PER_CM:
            raise Refusal("RANGE", "the catheter volume per cm must be 0..%d nL, not %r" % (_MAX_CATHETER_NL_PER_CM, nl_per_cm))
        self.tubing_nl, self.catheter_cm, self.catheter_nl_per_cm = tubing_nl, length_cm, nl_per_cm

    def dead_volume_nl(self):
        return self.tubing_nl + self.catheter_cm * self.catheter_nl_per_cm

    def start_prime(self, duration_min, catheter=None):
        """Fill pump tubing and catheter: volume, not dose at the tip (it fills the line).
        catheter: None, or (tubing_nl, length_cm, nl_per_cm) to set first. Everything is
        checked before anything is kept: a refused prime leaves the catheter as it was."""
        check_prime_duration(duration_min)
        if catheter is None:
            return self._start_prime(duration_min)
        was = (self.tubing_nl, self.catheter_cm, self.catheter_nl_per_cm)
        self.set_catheter(catheter[0], catheter[1], catheter[2])  # checks all three first
        try:
            return self._start_prime(duration_min)
        except Refusal:
            self.tubing_nl, self.catheter_cm, self.catheter_nl_per_cm = was
            raise

    def configure(self, low_reservoir_ul=None, stopped_alarm_h=None, catheter=None):
        """Settings a clinician may change, each None to keep it; all are checked before any is
        kept. catheter: as for start_prime."""
        low, stop_h = low_reservoir_ul, stopped_alarm_h
        if low is not None and (type(low) is not int or not 0 <= low <= _MAX_LOW_UL
                                or low * 1000 >= self.reservoir.capacity_nl):
            raise Refusal("RANGE", "the low-reservoir threshold must be 0..%d µL and below the %d mL "
                                   "reservoir, not %r" % (_MAX_LOW_UL, self.reservoir.model_ml, low))
        if stop_h is not None and (type(stop_h) is not int or not 1 <= stop_h <= _MAX_STOPPED_ALARM_H):
            raise Refusal("RANGE", "the stopped-pump alarm must be 1..%d h, not %r" % (_MAX_STOPPED_ALARM_H, stop_h))
        if catheter is not None:
            self.set_catheter(catheter[0], catheter[1], catheter[2])  # the last check: it keeps
        if low is not None:
            self.reservoir.low_nl = low * 1000
        if stop_h is not None:
            self.stopped_alarm_s = stop_h * 3600

    def _start_prime(self, duration_min):
        """Fill pump tubing and catheter: volume, not dose at the tip (it fills the line)."""
        if self.program is None:
            raise Refusal("STATE", "program the pump (drug and concentration) before priming")
        if self.bolus_kind is not None or self.prime_left:
            raise Refusal("BUSY", "a bolus is already running")
        check_prime_duration(duration_min)
        vol = self.dead_volume_nl()
        if vol <= 0:
            raise Refusal("RANGE", "set the catheter length and volume per cm first (nothing to prime)")
        steps = (vol * 1000 + self.pl_per_step // 2) // self.pl_per_step  # nearest step
        if steps < 1:
            raise Refusal("RANGE", "the dead volume is smaller than one step")
        self._move_volume(steps, duration_min, "primed", FLAG_PRIME_DONE)
        return steps

    def start_calibration_run(self, steps, duration_min):
        """Move `steps` over `duration_min` for weighing, therapy stopped; all is checked before
        anything changes. Ends with FLAG_CALIBRATION_RUN_DONE and the pump stopped again."""
        check_calibration_run(steps, duration_min, self.pl_per_step)
        if self.state == RUNNING:
            raise Refusal("STATE", "stop therapy before a calibration run (pumpctl stop)")
        if self.bolus_kind is not None or self.prime_left:
            raise Refusal("BUSY", "a bolus or volume run is already running")
        self._move_volume(steps, duration_min, "calibration run done", FLAG_CALIBRATION_RUN_DONE)

    def _move_volume(self, steps, duration_min, done_reason, done_flag):
        """Move `steps` over `duration_min` as volume, not dose (priming, calibration runs).
        A pump that was stopped runs only for this and stops again with `done_reason`; the
        run's own flag tells the app which completion to log."""
        self.prime.set_rate(steps * 1440 // duration_min or 1)
        self.prime.remainder_units = 0
        self._prime_q = 0
        self.prime_left = steps
        self._prime_was_stopped = self.state != RUNNING
        self._prime_done_reason = done_reason + "; not resumed"
        self._prime_done_flag = done_flag
        if self.state != RUNNING:
            # The motor runs even with basal stopped: the line must be full first.
            self.state = RUNNING
            self.stop_reason = ""
            self.basal.set_rate(0)
        self._rates_changed()

    def refill(self, withdrawn_ul, new_volume_ul):
        """Empty-and-refill: compare the withdrawn volume with what the pump expects, then take
        the new volume. Returns (expected_ul, mismatch_ul, warn). Overfill is refused."""
        if type(withdrawn_ul) is not int or withdrawn_ul < 0 or withdrawn_ul > self.reservoir.capacity_nl // 1000 + 5000:
            raise Refusal("RANGE", "withdrawn volume must be 0..%d µL" % (self.reservoir.capacity_nl // 1000 + 5000))
        if type(new_volume_ul) is int and new_volume_ul < 1:
            raise Refusal("RANGE", "a refill must put in 1..%d µL, not %d µL" % (self.reservoir.capacity_nl // 1000, new_volume_ul))
        Reservoir(self.reservoir.model_ml).fill(new_volume_ul)  # refuses (raises) before any change
        expected = self.reservoir.volume_ul()
        mismatch = withdrawn_ul - expected
        warn = abs(mismatch) > _MISMATCH_UL[self.reservoir.model_ml]
        low = self.reservoir.low_nl
        self.reservoir.fill(new_volume_ul)
        self.reservoir.low_nl = low
        self.gate.start_lockout(self.up_s)  # lockout after refill
        return expected, mismatch, warn

    def change_concentration(self, program, bridge):
        """After a refill with a new concentration: the new program (same drug, new conc).
        With bridge, the tubing and catheter still hold the old drug: keep delivering the
        prescribed dose at the old concentration until that volume has been pushed through."""
        old = self.conv
        conv = self.check_conversion(program.conc, self.pl_per_step)
        dead = self.dead_volume_nl()
        if bridge and (old is None or old.conc == program.conc):
            raise Refusal("STATE", "no concentration change to bridge")
        if bridge and dead <= 0:
            raise Refusal("RANGE", "set the catheter length and volume per cm first (nothing to bridge)")
        self.set_program(program, self.max24_ug)
        if bridge:
            self.conv = old
            self._conv_after = conv
            self.bridge_left = (dead * 1000 + self.pl_per_step // 2) // self.pl_per_step
        return self.bridge_left

    def forecast(self):
        """Days until the low-reservoir threshold and until empty, at the worst-case daily
        volume (program + every allowed patient bolus, as Prometra assumes). None if no use."""
        p = self.program
        if p is None or self.state != RUNNING and p.mode == MODE_STOPPED:
            return None
        ug = p.worst_case_daily_ug()
        if ug <= 0:
            return None
        nl_day = ug * 1_000_000 // p.conc
        vol = self.reservoir.volume_nl
        low = vol - self.reservoir.low_nl
        return {"daily_ug_worst": ug, "daily_ul_worst": nl_day // 1000,
                "days_to_low": low // nl_day if low > 0 else 0, "days_to_empty": vol // nl_day,
                "low_day": self.day + (low // nl_day if low > 0 else 0), "empty_day": self.day + vol // nl_day}

    # ---- saving and restoring (allocates; never in the tick) ---------------------------
    # The keys are the on-flash format of services/persist.py (docs/persistence.md): renaming
    # one would stop old saved states from loading, so they stay as they were written.
    def to_state(self):
        """The pump's share of the saved state: a JSON-able dict of small ints and strings."""
        prog = self.program
        conv = self.conv
        return {
            "program": prog.to_dict() if prog else None,
            "state": self.state,
            "stop_reason": self.stop_reason,
            "pl_per_step": self.pl_per_step,
            "reservoir": self.reservoir.state(),
            "steps": self.steps_total.state(),
            "nl": self.nl_total.state(),
            "q": self.q_total.state(),
            "pl": self.pl_below_nl,
            "conc_epoch": conv.conc if conv else 0,
            "engine": [self.basal.remainder_units, conv.partial_step_units if conv else 0],
            "catheter": [self.tubing_nl, self.catheter_cm, self.catheter_nl_per_cm],
            "stopped_alarm_s": self.stopped_alarm_s,
            "stopped_s": self.stopped_s,
            "rolling": self.rolling.to_state(self.up_s),
            "gate": self.gate.to_state(self.up_s),
            "pb": [self._pb_day, self._pb_min],
            "bolus": [self.bolus_kind, self.bolus_left_q // Q_PER_UG] if self.bolus_kind else None,
        }

    def from_state(self, st, load_program, last_wall=None):
        """Restore what to_state saved. load_program(dict) -> (Program, max24_ug) validates the
        saved program against the drug library (the core knows no library); it is called after
        calibration, reservoir and counters are back, so a program the library now refuses
        still leaves them restored. last_wall: the last known (day, ms). The pump stays stopped:
        the caller resumes it (never a catch-up). Raises on anything unusable (Refusal,
        ValueError, KeyError, TypeError); the caller fails the self-test."""
        self.calibrate(st["pl_per_step"])
        self.reservoir.restore(st["reservoir"])
        self.steps_total.restore(st["steps"])
        self.nl_total.restore(st["nl"])
        self.q_total.restore(st["q"])
        self.pl_below_nl = st["pl"]
        cat = st["catheter"]
        self.set_catheter(cat[0], cat[1], cat[2])
        self.stopped_alarm_s = st["stopped_alarm_s"]
        if last_wall:
            self.day, self.ms = last_wall[0], last_wall[1]  # until the clock is set again
        pd = st.get("program")
        if pd:
            program, max24_ug = load_program(pd)
            self.program = program
            self.max24_ug = max24_ug
            self.conv = StepConverter(program.conc, self.pl_per_step)
            eng = st.get("engine") or [0, 0]
            if st.get("conc_epoch") == program.conc and 0 <= eng[1] < self.conv.units_per_step:
                self.conv.partial_step_units = eng[1]  # keep the partial step: accounting stays within one step
            self.gate.settings = program.patient
        self.rolling.from_state(st.get("rolling") or [], self.up_s)
        self.gate.from_state(st.get("gate") or {"lockout_s": 0, "ages": []}, self.up_s)
        self.stopped_s = st.get("stopped_s", 0)
        pb = st.get("pb") or [-1, -1]
        self._pb_day, self._pb_min = pb[0], pb[1]
        return st.get("state"), st.get("stop_reason", "")

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
                if self.bolus_kind is not None:
                    bolus_quanta = self.bolus.advance(seg)
                    if bolus_quanta > self.bolus_left_q:
                        bolus_quanta = self.bolus_left_q
                    self.bolus_left_q -= bolus_quanta
                    quanta += bolus_quanta
                if self.prime_left:
                    steps += self._prime_steps(seg)
            elif not running and seg and self.program is not None:
                self._stopped_time(seg)
            self._advance_time(seg)
            if running and quanta:
                self.q_total.add(quanta)
                steps += self.conv.add_q(quanta)
                self._dose_window(quanta)  # stamped at the segment's end: never ages out early
            dt_ms -= seg
            if running:
                if self.bolus_kind is not None and self.bolus_left_q == 0:
                    self.cancel_bolus()
                if self._to_boundary == 0:
                    self._enter_time()
        if steps:
            steps = self._deliver(steps)
        return steps

    def _dose_window(self, quanta):
        quanta += self._q_rem
        ng = quanta // Q_PER_NG
        self._q_rem = quanta - ng * Q_PER_NG
        if ng:
            self.rolling.add(self.up_s, ng)
            if self.max24_ug and self.rolling.total_ug(self.up_s) >= self.max24_ug:
                self.flags |= FLAG_LIMIT24

    def _prime_steps(self, seg):
        q = self._prime_q + self.prime.advance(seg)
        n = q // Q_PER_NG  # the prime integrator counts steps/day, so one "ng" is one step
        self._prime_q = q - n * Q_PER_NG
        if n >= self.prime_left:
            n = self.prime_left
            self.prime_left = 0
            self.prime.set_rate(0)
            self._rates_changed()
            self.flags |= self._prime_done_flag
            if self._prime_was_stopped:
                self.state = STOPPED
                self.stop_reason = self._prime_done_reason
        else:
            self.prime_left -= n
        return n

    def _stopped_time(self, seg):
        ms = self._stopped_ms + seg
        s = ms // 1000
        self._stopped_ms = ms - s * 1000
        self.stopped_s += s
        if self.stopped_s >= self.stopped_alarm_s:
            self.flags |= FLAG_STOPPED_LONG

    def _ms_to_bolus_end(self):
        left = self.bolus_left_q
        if left <= _EXACT_Q:
            return self.bolus.ms_to_q(left)
        per_ms = (self.bolus.rate + UNITS_PER_Q - 1) // UNITS_PER_Q  # upper bound of quanta/ms
        return 1 + (left - _EXACT_Q) // per_ms

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
        if got and self.bridge_left:
            if got >= self.bridge_left:
                self.bridge_left = 0
                self.conv = self._conv_after  # the new drug has reached the catheter tip
                self._conv_after = None
                self.flags |= FLAG_BRIDGE_DONE
            else:
                self.bridge_left -= got
        if got:
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
        rate = self.basal.rate
        if self.bolus_kind is not None:
            rate += self.bolus.rate
        if rate == 0:
            return -1
        need = self.conv.q_to_next_step()
        units = need * UNITS_PER_Q - self.basal.remainder_units
        if self.bolus_kind is not None:
            units -= self.bolus.remainder_units
        if units <= 0:
            # The two remainders add up to a quantum but neither holds one: the next whole
            # quantum of either source is the earliest anything can happen (never 0: no spin).
            a = self.basal.ms_to_q(1)
            b = self.bolus.ms_to_q(1) if self.bolus_kind is not None else -1
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
        if self.prime_left:
            n = self.prime.ms_to_q(Q_PER_NG - self._prime_q)
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
            "dose_24h_ug": self.rolling.total_ug(self.up_s),
            "max_24h_ug": self.max24_ug,
            "priming_steps_left": self.prime_left,
            "bridge_steps_left": self.bridge_left,
            "low_reservoir_ul": self.reservoir.low_nl // 1000,
            "stopped_s": self.stopped_s,
            "forecast": self.forecast(),
        }
