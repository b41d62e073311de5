# The pump's therapy state machine: program, dose sources, reservoir and counters.
#
# Pure: it is told elapsed time (`tick(dt_ms)`) and returns the steps to move; the app moves
# the motor. One object in three files, each with one job:
#   core/pump.py         the requests a programmer makes (program, stop, bolus, prime, refill...)
#   core/pump_tick.py    the allocation-free control tick, run under heap_lock()
#   core/pump_record.py  status, forecast and the saved state (allocates; never in the tick)
# Every range a request may give is checked in core/limits.py. One object rather than several
# because each object and module costs a Pico's heap at boot (docs/architecture.md).
from core.base import const, Refusal

from core.engine import RateIntegrator, StepConverter, Counter, Q_PER_UG
from core.limits import (check_bolus_size, check_calibration, check_prime_duration, check_calibration_run,
                         check_wall, check_catheter, check_settings, check_refill)
from core.program_model import MODE_STOPPED  # a program that delivers nothing, not the pump's state
from core.pump_record import PumpRecord
from core.pump_tick import PumpTick, STOPPED, RUNNING, FLAG_PRIME_DONE, FLAG_CALIBRATION_RUN_DONE
from core.reservoir import Reservoir
from core.rolling import Rolling24
from core.patient import PatientGate, DELIVERED
from core.volume_run import VolumeRun

_DEFAULT_STOPPED_ALARM_S = const(48 * 3600)
# Refill mismatch thresholds by pump model (DOMAIN.md: about 1 mL for 20 mL, 2 mL for 40 mL).
_MISMATCH_UL = {10: 500, 20: 1000, 40: 2000}


class Pump(PumpTick, PumpRecord):
    def __init__(self, alarms, model_ml=20, pl_per_step=50_000):
        self.alarms = alarms
        if hasattr(alarms, "wall_source"):
            alarms.wall_source = self  # alarms are stamped with this pump's wall clock
        self.reservoir = Reservoir(model_ml)
        # A refill while therapy was stopped replaced what the reservoir holds: the next program
        # may name another drug (check_new_program). Cleared when therapy runs again.
        self.refilled_stopped = False
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
        # Priming and calibration runs move volume, not dose (core/volume_run.py).
        self.run = VolumeRun()
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
        self.epoch = 0  # changes whenever what is due changes (core/pump_tick.py)
        self.rolling = Rolling24(900)
        self.max24_ug = 0
        self._q_rem = 0  # quanta below one ng, for the rolling window
        self.gate = PatientGate(None)
        self._pb_day = -1  # day and minute of the last periodic bolus started: never twice
        self._pb_min = -1
        self.stopped_s = 0
        self._stopped_ms = 0
        self.stopped_alarm_s = _DEFAULT_STOPPED_ALARM_S
        self.bridge_left = 0  # steps still carrying the old concentration
        self._conv_after = None
        # Catheter and pump tubing: the volume a priming bolus fills and a bridge flushes.
        self.tubing_nl = 0
        self.catheter_cm = 0
        self.catheter_nl_per_cm = 0

    # ---- configuration (may allocate) -------------------------------------------------
    def calibrate(self, pl_per_step):
        check_calibration(pl_per_step)
        if self.busy():
            raise Refusal("BUSY", "finish the running bolus before calibrating")
        if self.program is not None:
            self.check_conversion(self.program.conc, pl_per_step)
        self.pl_per_step = pl_per_step
        self._nl_step = pl_per_step // 1000
        self._pl_step = pl_per_step % 1000
        if self.program is not None:
            self.conv = StepConverter(self.program.conc, pl_per_step)
            self._rates_changed()  # a step holds a new dose: the motor's batch is planned again

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
        if self.program is not None and self.program.drug != program.drug:
            # µg of another drug are not this drug's dose: its 24 h window starts empty.
            self.rolling = Rolling24(self.rolling.bucket_s)
        self.program = program
        self.max24_ug = max24_ug
        self.refilled_stopped = False  # the program now says what the reservoir holds
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
        self.run.cancel()
        self._rates_changed()
        self._to_boundary = -1

    def check_new_program(self, new):
        """The reservoir rule of a program write (refuses, changes nothing): the drug and its
        concentration are what the reservoir holds, so a program naming others needs the
        reservoir emptied and refilled first. A new concentration of the same drug comes with
        the refill itself (`refill --concentration`, which may bridge); another drug needs
        therapy stopped and a refill, after which the next program says what was filled."""
        old = self.program
        if old is None or (old.drug == new.drug and old.conc == new.conc) or self.refilled_stopped:
            return
        held = "%s at %d µg/mL" % (old.drug, old.conc)
        if old.drug == new.drug:
            raise Refusal("STATE", "the reservoir holds %s: a new concentration comes with a refill: use "
                                   "`pumpctl refill --concentration %d`" % (held, new.conc))
        raise Refusal("STATE", "the reservoir holds %s, not %s at %d µg/mL: stop the pump (`pumpctl stop`), "
                               "empty and refill the reservoir with the new drug (`pumpctl refill`), then write "
                               "the program" % (held, new.drug, new.conc))

    def resume(self):
        if self.program is None or self.program.mode == MODE_STOPPED:
            raise Refusal("STATE", "there is no program to resume; program the pump first")
        blocker = self.alarms.motor_blocker()
        if blocker is not None:
            raise Refusal("ALARM", "%s stops the motor and its cause was still present when last measured; resolve it "
                                   "first (the battery and the line are measured every quarter hour, so wait up to "
                                   "15 min after fixing them)" % blocker)
        if self.reservoir.empty(self._nl_step, self._pl_step):
            raise Refusal("EMPTY", "the reservoir is empty; refill first")
        self.state = RUNNING
        self.stop_reason = ""
        self.stopped_s = self._stopped_ms = 0
        self.refilled_stopped = False  # the old program runs on: the reservoir holds its drug
        self._enter_time()  # no catch-up: delivery restarts at the rate for now

    def set_wall(self, day, ms):
        check_wall(day, ms)
        self.day, self.ms, self.clock_set = day, ms, True
        if self.state == RUNNING:
            self._enter_time()

    def check_bolus(self, kind, dose_ug, duration_min):
        """Refuse (raise) a bolus that cannot start now; changes nothing."""
        if self.state != RUNNING:
            raise Refusal("STATE", "the pump is stopped; a bolus needs a running program")
        if self.bolus_kind is not None:
            raise Refusal("BUSY", "a %s bolus is already running" % self.bolus_kind)
        if self.run.steps_left:
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
        if self.busy():
            if self.bolus_kind is None or self.bolus.rate <= 0:
                return "refused_lockout", "another bolus (priming or calibration) is running: ask again when it ends"
            # The patient's question is "when may I ask again": the running bolus's time left.
            left_ug = self.bolus_left_q // Q_PER_UG
            left_min = (self.bolus_left_q * 1440 + self.bolus.rate * Q_PER_UG - 1) // (self.bolus.rate * Q_PER_UG)
            left_min = left_min if left_min > 0 else 1
            wait_min = (self.gate.wait_s(self.up_s) + 59) // 60  # the lockout may last longer
            # Short enough for the log record's 80 characters.
            if wait_min > left_min:
                return "refused_lockout", ("another bolus is running (%d µg left, about %d min); next allowed in "
                                           "%d h %02d min" % (left_ug, left_min, wait_min // 60, wait_min % 60))
            return "refused_lockout", ("another bolus is running (%d µg left, ends in about %d min): ask again then"
                                       % (left_ug, left_min))
        outcome, detail = self.gate.request(self.up_s, self.rolling, self.max24_ug)
        if outcome == DELIVERED:
            p = self.program.patient
            self._start_bolus("patient", p[0], p[1])
        return outcome, detail

    def set_catheter(self, tubing_nl, length_cm, nl_per_cm):
        """Volumes a priming bolus fills and a bridge flushes (pump tubing + catheter). All
        three are checked before any is kept; sentences in the units a programmer gives."""
        check_catheter(tubing_nl, length_cm, nl_per_cm)
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
        check_settings(low, stop_h, self.reservoir)
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
        if self.busy():
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
        if self.busy():
            raise Refusal("BUSY", "a bolus or volume run is already running")
        self._move_volume(steps, duration_min, "calibration run done", FLAG_CALIBRATION_RUN_DONE)

    def _move_volume(self, steps, duration_min, done_reason, done_flag):
        """Move `steps` over `duration_min` as volume, not dose (priming, calibration runs).
        A pump that was stopped runs only for this and stops again with `done_reason`; the
        run's own flag tells the app which completion to log."""
        self.run.start(steps, duration_min, done_reason, done_flag, self.state != RUNNING)
        if self.state != RUNNING:
            # The motor runs even with basal stopped: the line must be full first.
            self.state = RUNNING
            self.stop_reason = ""
            self.basal.set_rate(0)
        self._rates_changed()

    def refill(self, withdrawn_ul, new_volume_ul):
        """Empty-and-refill: compare the withdrawn volume with what the pump expects, then take
        the new volume. Returns (expected_ul, mismatch_ul, warn). Overfill is refused."""
        check_refill(withdrawn_ul, new_volume_ul, self.reservoir)
        Reservoir(self.reservoir.model_ml).fill(new_volume_ul)  # refuses (raises) before any change
        expected = self.reservoir.volume_ul()
        mismatch = withdrawn_ul - expected
        warn = abs(mismatch) > _MISMATCH_UL[self.reservoir.model_ml]
        low = self.reservoir.low_nl
        self.reservoir.fill(new_volume_ul)
        self.reservoir.low_nl = low
        self.gate.start_lockout(self.up_s)  # lockout after refill
        if self.state != RUNNING:
            self.refilled_stopped = True  # what was filled is the next program's to name
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

