# What the pump keeps and reports, composed from its parts' own state: its share of the saved
# state (services/persist.py), the step journal's share (services/journal.py) and the status.
# Each reads the pump's public parts only; the Pump's own methods of the same names call these.
# Allocates: never in the tick.
from core.engine import StepConverter, Q_PER_UG


# The keys are the on-flash format of services/persist.py (docs/persistence.md): renaming one
# would stop old saved states from loading, so they stay as they were written.
def to_state(pump):
    """The pump's share of the saved state: a JSON-able dict of small ints and strings."""
    prog = pump.program
    conv = pump.conv
    up_s = pump.clock.up_s
    b = pump.bolus
    return {
        "program": prog.to_dict() if prog else None,
        "state": pump.state,
        "stop_reason": pump.stop_reason,
        "pl_per_step": pump.pl_per_step,
        "reservoir": pump.reservoir.state(),
        "steps": pump.steps_total.state(),
        "nl": pump.nl_total.state(),
        "q": pump.q_total.state(),
        "pl": pump.pl_below_nl,
        "conc_epoch": conv.conc if conv else 0,
        "engine": [pump.basal.remainder_units, conv.partial_step_units if conv else 0],
        "catheter": pump.catheter.to_state(),
        "stopped_alarm_s": pump.stopped.alarm_s,
        "stopped_s": pump.stopped.stopped_s,
        "rolling": pump.rolling.to_state(up_s),
        "gate": pump.gate.to_state(up_s),
        "pb": pump.periodic_schedule.to_state(),
        "bolus": [b.kind, b.left_q // Q_PER_UG] if b.kind else None,
    }


def from_state(pump, st, load_program, last_wall=None):
    """Restore what to_state saved. load_program(dict) -> (Program, max24_ug) validates the
    saved program against the drug library (the core knows no library); it is called after
    calibration, reservoir and counters are back, so a program the library now refuses still
    leaves them restored. last_wall: the last known (day, ms). The pump stays stopped: the
    caller resumes it (never a catch-up). Raises on anything unusable (Refusal, ValueError,
    KeyError, TypeError); the caller fails the self-test. Returns (state, stop reason)."""
    pump.calibrate(st["pl_per_step"])
    pump.reservoir.restore(st["reservoir"])
    pump.steps_total.restore(st["steps"])
    pump.nl_total.restore(st["nl"])
    pump.q_total.restore(st["q"])
    pump.pl_below_nl = st["pl"]
    pump.catheter.from_state(st["catheter"])
    pump.stopped.alarm_s = st["stopped_alarm_s"]
    if last_wall:
        pump.clock.assume_wall(last_wall[0], last_wall[1])  # until the clock is set again
    up_s = pump.clock.up_s
    pd = st.get("program")
    if pd:
        program, max24_ug = load_program(pd)
        pump.program = program
        pump.max24_ug = max24_ug
        pump.conv = StepConverter(program.conc, pump.pl_per_step)
        eng = st.get("engine") or [0, 0]
        if st.get("conc_epoch") == program.conc:
            pump.conv.restore_partial_step(eng[1])
        pump.gate.settings = program.patient
    pump.rolling.from_state(st.get("rolling") or [], up_s)
    pump.gate.from_state(st.get("gate") or {"lockout_s": 0, "ages": []}, up_s)
    pump.stopped.stopped_s = st.get("stopped_s", 0)
    pump.periodic_schedule.from_state(st.get("pb") or [-1, -1])
    return st.get("state"), st.get("stop_reason", "")


def journal_fields(pump):
    """The counters and remainders a power cut must not lose, in the journal record's order:
    (steps k, u, nL k, u, quanta k, u, pL below nL, reservoir nL, pL, partial step, basal
    remainder, bolus quanta left, concentration, pL per step)."""
    conv = pump.conv
    s, n, q, r = pump.steps_total, pump.nl_total, pump.q_total, pump.reservoir
    return (s.k, s.u, n.k, n.u, q.k, q.u, pump.pl_below_nl, r.volume_nl, r.pl,
            conv.partial_step_units if conv else 0, pump.basal.remainder_units, pump.bolus.left_q,
            conv.conc if conv else 0, pump.pl_per_step)


def apply_journal(pump, conc, pl_per_step, steps, nl, quanta, pl_below_nl, reservoir_nl, reservoir_pl,
                  partial_step_units, basal_remainder_units):
    """Bring restored counters forward to a journal record's (steps, nl, quanta as [k, u]) kept
    under the same concentration and calibration, unless it is older than them. Returns
    whether it was taken."""
    conv = pump.conv
    if conc != (conv.conc if conv else 0) or pl_per_step != pump.pl_per_step:
        return False
    if steps[0] * 1000 + steps[1] < pump.steps_total.value():
        return False  # older than the saved state: nothing to add
    pump.steps_total.restore(steps)
    pump.nl_total.restore(nl)
    pump.q_total.restore(quanta)
    pump.pl_below_nl = pl_below_nl
    pump.reservoir.volume_nl, pump.reservoir.pl = reservoir_nl, reservoir_pl
    if conv is not None:
        conv.restore_partial_step(partial_step_units)
    pump.basal.remainder_units = basal_remainder_units
    return True


def status(pump):
    p = pump.program
    b = pump.bolus
    up_s = pump.clock.up_s
    return {
        "state": pump.state,
        "stop_reason": pump.stop_reason,
        "reservoir_ul": pump.reservoir.volume_ul(),
        "reservoir_nl": pump.reservoir.volume_nl,
        "reservoir_model_ml": pump.reservoir.model_ml,
        "delivered_ul": pump.delivered_ul(),
        "delivered_nl": pump.nl_total.value(),
        "delivered_steps": pump.steps_total.value(),
        "delivered_ug": pump.q_total.value() // Q_PER_UG,
        "rate_ug_per_day": pump.rate_now(),
        "concentration_ug_per_ml": p.conc if p else 0,
        "drug": p.drug if p else None,
        "mode": p.mode if p else "none",
        "bolus": None if b.kind is None else {"kind": b.kind, "left_ug": b.left_q // Q_PER_UG},
        "pl_per_step": pump.pl_per_step,
        "uptime_s": up_s,
        "clock_set": pump.clock.clock_set,
        "dose_24h_ug": pump.rolling.total_ug(up_s),
        "max_24h_ug": pump.max24_ug,
        "priming_steps_left": pump.volume_run.steps_left,
        "bridge_steps_left": pump.bridge.steps_left,
        "low_reservoir_ul": pump.reservoir.low_nl // 1000,
        "stopped_s": pump.stopped.stopped_s,
        "forecast": pump.forecast(),
    }
