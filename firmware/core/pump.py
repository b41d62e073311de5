# The pump: what a programmer asks of it (a program, stop and resume, the clock, boluses,
# priming and calibration runs, refill and a concentration change, settings), each checked
# whole before anything changes, on top of core.pump_tick's PumpTick (the parts and the
# allocation-free control tick). The ranges are core.limits' and the parts' own; the saved
# state, the step journal's share and the status are composed in core.pump_record. Every name
# other modules import from here stays importable from here.
from core.base import Refusal

from core.patient import DELIVERED
from core.catheter import catheter_values, dead_volume_nl, steps_for_nl
from core import pump_record
from core.limits import (MAX_BOLUS_UG, MIN_PL_PER_STEP, MAX_PL_PER_STEP,  # noqa: F401 (re-exported)
                         check_bolus_size, check_calibration, check_prime_duration, check_stopped_alarm_h,
                         check_calibration_run)
from core.pump_tick import (PumpTick, STOPPED, RUNNING, FLAG_EMPTY, FLAG_LOW,  # noqa: F401 (re-exported)
                            FLAG_LIMIT24, FLAG_PERIODIC_REFUSED, FLAG_PERIODIC_SKIPPED, FLAG_STOPPED_LONG,
                            FLAG_PERIODIC_STARTED, FLAG_BRIDGE_DONE, FLAG_PRIME_DONE, FLAG_CALIBRATION_RUN_DONE)
from core.engine import StepConverter
from core.program_model import MODE_STOPPED  # a program that delivers nothing, not the pump's state


class Pump(PumpTick):
    # ---- configuration (may allocate) -------------------------------------------------
    def check_conversion(self, conc, pl):
        """The converter for conc and pl, or the engine's Refusal when they do not combine
        (a refill's new concentration is checked with it before anything changes)."""
        return StepConverter(conc, pl)

    def set_program(self, program, max24_ug=0):
        """Apply a validated program whole (core.program.parse did the validation)."""
        conv = self.check_conversion(program.conc, self.pl_per_step)
        if program.mode != MODE_STOPPED and not self.clock.clock_set and len(program.steps) > 1:
            raise Refusal("CLOCK", "a flex profile follows the wall clock: set the clock first (pumpctl time sync)")
        self.cancel_bolus()
        self.program = program
        self.max24_ug = max24_ug
        self.gate.reconfigure(program.patient, self.clock.up_s)  # lockout after programming
        if self.conv is None or self.conv.conc != program.conc:
            self.conv = conv  # a new concentration starts a new accounting epoch
            self.bridge.cancel()
        if program.mode == MODE_STOPPED:
            self.stop("programmed stopped")
        else:
            self.run_from_now()

    def resume(self):
        if self.program is None or self.program.mode == MODE_STOPPED:
            raise Refusal("STATE", "there is no program to resume; program the pump first")
        if self.alarms.motor_blocked():
            raise Refusal("ALARM", "an alarm that stops the motor is active; resolve it first")
        if self.reservoir_empty():
            raise Refusal("EMPTY", "the reservoir is empty; refill first")
        self.run_from_now()

    def set_wall(self, day, ms):
        self.clock.set_wall(day, ms)
        if self.state == RUNNING:
            self.enter_time()

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
        self.begin_bolus(kind, dose_ug, duration_min)

    def patient_bolus(self):
        """Decide a patient request: (outcome, sentence). Every outcome is for the log."""
        if self.state != RUNNING:
            return "refused_limit", "the pump is stopped"
        if self.busy():
            return "refused_lockout", "another bolus is running"
        outcome, detail = self.gate.request(self.clock.up_s, self.rolling, self.max24_ug)
        if outcome == DELIVERED:
            p = self.program.patient
            self.begin_bolus("patient", p[0], p[1])
        return outcome, detail

    def start_prime(self, duration_min, catheter=None):
        """Fill pump tubing and catheter: volume, not dose at the tip (it fills the line).
        catheter: None to keep the settings, or (tubing_nl, length_cm, nl_per_cm) to keep
        with this prime. Everything is checked before anything is kept. Returns the steps."""
        check_prime_duration(duration_min)
        if catheter is not None:
            catheter = catheter_values(catheter)
        if self.program is None:
            raise Refusal("STATE", "program the pump (drug and concentration) before priming")
        if self.busy():
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
        """Move `steps` over `duration_min` for weighing, therapy stopped; all is checked before
        anything changes. Ends with FLAG_CALIBRATION_RUN_DONE and the pump stopped again."""
        check_calibration_run(steps, duration_min, self.pl_per_step)
        if self.state == RUNNING:
            raise Refusal("STATE", "stop therapy before a calibration run (pumpctl stop)")
        if self.busy():
            raise Refusal("BUSY", "a bolus or volume run is already running")
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
        self.rates_changed()

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
        if p is None or self.state != RUNNING and p.mode == MODE_STOPPED:
            return None
        ug = p.worst_case_daily_ug()
        if ug <= 0:
            return None
        return self.reservoir.forecast(ug, p.conc, self.clock.day)

    # ---- saving, the step journal and status (allocate; never in the tick) ------------
    # Composed from the parts in core.pump_record, whose functions take the pump first, so
    # they are the pump's own methods: to_state(), from_state(st, load_program, last_wall),
    # journal_fields(), apply_journal(...), status().
    to_state = pump_record.to_state
    from_state = pump_record.from_state
    journal_fields = pump_record.journal_fields
    apply_journal = pump_record.apply_journal
    status = pump_record.status

    def rate_now(self):
        if self.state != RUNNING:
            return 0
        return self.basal.rate

    def delivered_ul(self):
        return self.nl_total.value() // 1000
