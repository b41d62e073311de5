# What survives a reset: the pump's state as one JSON document saved atomically (StateStore),
# and the hourly therapy history. Saved on every accepted change and every 15 minutes, the rate
# the flash-wear figures in docs/persistence.md assume.
from core import program as programs
from core.druglib import LIBRARY
from core.pump import check_calibration

SAVE_EVERY_MS = 900_000
_HOUR_MS = 3_600_000
_VERSION = 1


def snapshot(app):
    """The saved state: the pump's own (Pump.to_state) and what the App keeps beside it, in
    one flat JSON-able dict (the on-flash format of docs/persistence.md)."""
    st = app.pump.to_state()
    w = app.clock.wall()
    st["v"] = _VERSION
    st["calibrated"] = app.calibrated
    st["cal_day"] = app.cal_day
    st["alarms"] = app.alarms.snapshot()
    st["wall"] = [w[0], w[1]] if w else None
    st["refill_day"] = app.refill_day
    return st


def _load_program(d):
    """A saved program checked again against the library, which may have changed since."""
    prog = programs.parse(d, LIBRARY)
    return prog, LIBRARY.max24_ug(prog.drug)


def restore(app, st):
    """Rebuild the pump and the App's own fields from a snapshot. Raises ValueError (or the
    core's Refusal) if anything is unusable; the caller then keeps the motor stopped (self-test
    failed). Returns (saved run state, stop reason)."""
    if not isinstance(st, dict) or st.get("v") != _VERSION:
        raise ValueError("state has an unknown version")
    # The calibration is kept with its flag as soon as it is known good, as before the rest is
    # restored: a state whose program the library now refuses keeps its calibration.
    check_calibration(st["pl_per_step"])
    app.calibrated = bool(st.get("calibrated"))
    app.cal_day = st.get("cal_day")
    was = app.pump.from_state(st, _load_program, st.get("wall"))
    app.alarms.restore(st.get("alarms") or [], app.pump.up_s)
    app.refill_day = st.get("refill_day")
    return was


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
