# The saved state composed from the objects' own to_state/from_state: the on-flash format
# stays the one earlier firmware wrote (docs/persistence.md), so its saved states still load.
from mptest import eq, req

from services import persist
from pumpsim import booted_app as _app

# Every key of the state document as firmware before the reshaping wrote it.
_KEYS_WRITTEN_BEFORE = ("v", "program", "state", "stop_reason", "pl_per_step", "calibrated", "cal_day",
                        "reservoir", "steps", "nl", "q", "pl", "conc_epoch", "engine", "catheter",
                        "stopped_alarm_s", "stopped_s", "rolling", "gate", "alarms", "wall", "refill_day",
                        "pb", "bolus")
_KEYS_ADDED = ("usage",)  # issue 16: patient bolus usage per day; a state without it restores


def test_the_state_document_keeps_its_keys_and_survives_a_round_trip():
    a = _app()
    a.commands.settings({"tubing_ul": 20, "catheter_cm": 10, "catheter_nl_per_cm": 1000})
    a.commands.program_set({"program": {"drug": "baclofen", "concentration_ug_per_ml": 2000,
                                        "mode": "continuous", "rate_ug_per_day": 500}})
    a.pump.tick(3_600_000)
    a.commands.bolus({"dose_ug": 20, "duration_min": 10})
    st = persist.snapshot(a)
    eq(sorted(st), sorted(_KEYS_WRITTEN_BEFORE + _KEYS_ADDED))
    b = _app()
    was = persist.restore(b, st)
    eq(was, ("running", ""))
    mine = a.pump.to_state()
    back = b.pump.to_state()
    for k in mine:
        if k not in ("state", "stop_reason", "bolus", "gate", "rolling", "engine"):
            eq(back[k], mine[k], k)
    eq(back["engine"][1], mine["engine"][1], "the partial step is kept")
    eq((b.calibration.calibrated, b.pump.program.drug, b.pump.max24_ug), (a.calibration.calibrated, "baclofen", a.pump.max24_ug))


@req("SR-050")
def test_bolus_usage_survives_a_save_and_an_old_state_restores_without_it():
    a = _app()
    a.usage.note(9800, "delivered")
    a.usage.note(9800, "refused_lockout")
    a.usage.note(9801, "rate_limited")
    st = persist.snapshot(a)
    b = _app()
    persist.restore(b, st)
    eq(b.usage.report(), a.usage.report())
    eq(b.usage.report()[0], {"day": 9800, "date": [2026, 10, 31], "attempts": 2, "delivered": 1, "lockout": 1,
                             "limit": 0, "rate_limited": 0, "other": 0})
    del st["usage"]
    c = _app()
    persist.restore(c, st)
    eq(c.usage.report(), [])
