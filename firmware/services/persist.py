# What survives a reset: the pump's state as one JSON document saved atomically (StateStore)
# (the hourly therapy history is services/history.py's). Saved on every accepted change and
# every 6 hours; the step journal carries delivery in between (docs/persistence.md says what a
# power cut can lose).
from core import program as programs
from core.druglib import LIBRARY
from core.limits import check_calibration

SAVE_EVERY_MS = 21_600_000
_VERSION = 1


def snapshot(app):
    """The saved state: the pump's own (Pump.to_state) and what the App keeps beside it, in
    one flat JSON-able dict (the on-flash format of docs/persistence.md)."""
    st = app.pump.to_state()
    w = app.clock.wall()
    st["v"] = _VERSION
    st["calibrated"] = app.calibration.calibrated
    st["cal_day"] = app.calibration.day
    st["alarms"] = app.alarms.snapshot()
    st["wall"] = [w[0], w[1]] if w else None
    st["refill_day"] = app.refill.day
    st["usage"] = app.usage.to_state()
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
    app.calibration.calibrated = bool(st.get("calibrated"))
    app.calibration.day = st.get("cal_day")
    was = app.pump.from_state(st, _load_program, st.get("wall"))
    rows = st.get("alarms") or []
    for r in rows:
        # Saved by firmware before issue 16, which had a lockout and named its alarm so.
        if isinstance(r, list) and r and r[0] == "AUTH_LOCKED":
            r[0] = "AUTH_FAILURES"
    app.alarms.restore(rows, app.pump.up_s)
    app.refill.day = st.get("refill_day")
    app.usage.from_state(st.get("usage"))
    return was
