# What the pump reports and saves: status, the refill forecast, and its share of the saved
# state (to_state / from_state).
#
# PumpRecord is the part of Pump (core/pump.py) that allocates: it builds dicts, so it never
# runs inside the control tick. One object with Pump, split by file only (docs/architecture.md).
from core.engine import StepConverter, Q_PER_UG
from core.program_model import MODE_STOPPED
from core.pump_tick import RUNNING


class PumpRecord:
    # ---- reporting ------------------------------------------------------------------------
    def rate_now(self):
        if self.state != RUNNING:
            return 0
        return self.basal.rate

    def delivered_ul(self):
        return self.nl_total.value() // 1000

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
            "priming_steps_left": self.run.steps_left,
            "bridge_steps_left": self.bridge_left,
            "low_reservoir_ul": self.reservoir.low_nl // 1000,
            "stopped_s": self.stopped_s,
            "forecast": self.forecast(),
        }

    # ---- saving and restoring -------------------------------------------------------------
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
