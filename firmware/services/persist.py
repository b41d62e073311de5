# What survives a reset: the pump's state as one JSON document saved atomically (StateStore),
# and the hourly therapy history. Saved on every accepted change and every 15 minutes, the rate
# the flash-wear figures in docs/persistence.md assume.
from core import program as programs
from core.druglib import LIBRARY

SAVE_EVERY_MS = 900_000
_HOUR_MS = 3_600_000
_VERSION = 1


def snapshot(app):
    """The pump's state as a JSON-able dict of small ints and strings."""
    p = app.pump
    prog = p.program
    w = app.clock.wall()
    return {
        "v": _VERSION,
        "program": prog.to_dict() if prog else None,
        "state": p.state,
        "stop_reason": p.stop_reason,
        "pl_per_step": p.pl_per_step,
        "calibrated": app.calibrated,
        "cal_day": app.cal_day,
        "reservoir": p.reservoir.state(),
        "steps": p.steps_total.state(),
        "nl": p.nl_total.state(),
        "q": p.q_total.state(),
        "pl": p._pl,
        "conc_epoch": p.conv.conc if p.conv else 0,
        "engine": [p.basal.da, p.conv.vb if p.conv else 0],
        "catheter": [p.tubing_nl, p.catheter_cm, p.catheter_nl_per_cm],
        "stopped_alarm_s": p.stopped_alarm_s,
        "stopped_s": p.stopped_s,
        "rolling": p.rolling.to_state(p.up_s),
        "gate": p.gate.to_state(p.up_s),
        "alarms": app.alarms.snapshot(),
        "wall": [w[0], w[1]] if w else None,
        "refill_day": app.refill_day,
        "pb": [p._pb_day, p._pb_min],
        "bolus": [p.bolus_kind, p.bolus_left_q // 1_600_000] if p.bolus_kind else None,
    }


def restore(app, st):
    """Rebuild the pump from a snapshot. Raises ValueError if anything is unusable; the caller
    then keeps the motor stopped (self-test failed)."""
    if not isinstance(st, dict) or st.get("v") != _VERSION:
        raise ValueError("state has an unknown version")
    p = app.pump
    p.calibrate(st["pl_per_step"])
    app.calibrated = bool(st.get("calibrated"))
    app.cal_day = st.get("cal_day")
    p.reservoir.restore(st["reservoir"])
    p.steps_total.restore(st["steps"])
    p.nl_total.restore(st["nl"])
    p.q_total.restore(st["q"])
    p._pl = st["pl"]
    cat = st["catheter"]
    p.set_catheter(cat[0], cat[1], cat[2])
    p.stopped_alarm_s = st["stopped_alarm_s"]
    if st.get("wall"):
        day, ms = st["wall"]
        p.day, p.ms = day, ms  # the last known time, until the clock is set again
    pd = st.get("program")
    if pd:
        prog = programs.parse(pd, LIBRARY)
        p.program = prog
        p.max24_ug = LIBRARY.max24_ug(prog.drug)
        from core.engine import StepConverter
        p.conv = StepConverter(prog.conc, p.pl_per_step)
        eng = st.get("engine") or [0, 0]
        if st.get("conc_epoch") == prog.conc and 0 <= eng[1] < p.conv.q:
            p.conv.vb = eng[1]  # keep the partial step: accounting stays within one step
        p.gate.settings = prog.patient
    p.rolling.from_state(st.get("rolling") or [], p.up_s)
    p.gate.from_state(st.get("gate") or {"lockout_s": 0, "ages": []}, p.up_s)
    p.stopped_s = st.get("stopped_s", 0)
    pb = st.get("pb") or [-1, -1]
    p._pb_day, p._pb_min = pb[0], pb[1]
    app.alarms.restore(st.get("alarms") or [], p.up_s)
    app.refill_day = st.get("refill_day")
    return st.get("state"), st.get("stop_reason", "")


class HourAccumulator:
    """Delivered and programmed dose per wall-clock hour, flushed to History once per hour."""

    def __init__(self, history):
        self.history = history
        self.hour = None
        self.q0 = 0
        self.nl0 = 0
        self.prog_ng = 0

    def start(self, hour, pump):
        self.hour = hour
        self.q0 = pump.q_total.value()
        self.nl0 = pump.nl_total.value()

    def flush(self, hour_now, pump, programmed_ng):
        """Close the hour if the wall clock moved past it; returns True if it wrote."""
        if self.hour is None:
            self.start(hour_now, pump)
            return False
        if hour_now == self.hour:
            return False
        q = pump.q_total.value()
        nl = pump.nl_total.value()
        ng = (q - self.q0) // 1600
        dnl = nl - self.nl0
        wrote = False
        if self.history is not None and hour_now > self.hour:
            try:
                self.history.add(self.hour, ng, dnl, programmed_ng)
                wrote = True
            except (ValueError, OSError):
                pass
        self.start(hour_now, pump)
        return wrote


def programmed_ng_for_hour(prog, hour_of_day):
    """Dose the program asks for in one hour of the day, in ng (basal + periodic boluses)."""
    if prog is None or prog.mode == "stopped":
        return 0
    x = 0  # µg/day summed over the hour's minutes; one division at the end keeps it exact
    for m in range(hour_of_day * 60, hour_of_day * 60 + 60):
        x += prog.rate_at(m)
    ng = x * 1000 // 1440
    for t, dose, dur in prog.periodic:
        if hour_of_day * 60 <= t < hour_of_day * 60 + 60:
            ng += dose * 1000
    return ng
