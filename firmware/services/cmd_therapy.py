# The therapy commands: program, stop, resume, clock, boluses. Each decodes its arguments, asks
# the core (which owns every range and refuses with the sentence), then logs and saves.
from core import program as programs
from core.druglib import LIBRARY
from core.base import Refusal
from core.limits import check_bolus_size
from services.protocol import arg


def need_calibration(calibration):
    if not calibration.calibrated:
        raise Refusal("UNCALIBRATED", "this pump has no calibration: run `pumpctl calibrate` before therapy")


def _parse(args):
    return programs.parse(arg(args, "program", dict), LIBRARY)


class TherapyCommands:
    """Mixed into services.commands.Commands: `self.ctx` is its CommandContext."""

    def program_check(self, args):
        new = _parse(args)
        old = self.ctx.pump.program
        return {"old": old.to_dict() if old else None, "new": new.to_dict()}

    def program_set(self, args):
        c = self.ctx
        need_calibration(c.calibration)
        new = _parse(args)
        old = c.pump.program
        c.pump.check_new_program(new)  # a new drug or concentration needs a refill first
        c.pump.set_program(new, LIBRARY.max24_ug(new.drug))  # whole or not at all
        c.alarms.clear("STOPPED_TOO_LONG", c.pump.up_s)
        if c.refill.day is not None:
            # The refill-by day is the low-reservoir forecast: a new rate moves it.
            f = c.pump.forecast()
            c.refill.day = f["low_day"] if f else None
        c.event("program", {"drug": new.drug, "conc": new.conc, "mode": new.mode, "daily_ug": new.daily_total_ug()})
        for o in new.overrides_used:
            c.event("override", {"limit": o, "drug": new.drug})
        c.changed()
        return {"old": old.to_dict() if old else None, "new": new.to_dict(), "overrides_used": list(new.overrides_used)}

    def stop(self, args):
        c = self.ctx
        # No abort: the head finishes the step(s) already commanded and counted (a move is a few
        # ms), so delivered stays what the head moved; then EN is released as after every move.
        # An occlusion or a fault aborts at once (services/housekeeping.py occlusion).
        c.pump.stop("stopped by programmer")
        c.event("stop", {})
        c.changed()
        return {"state": c.pump.state}

    def resume(self, args):
        c = self.ctx
        need_calibration(c.calibration)
        if c.measure is not None:
            c.measure()  # the battery now, not at the last quarter hour: a new cell may clear EOS
        c.pump.resume()
        c.alarms.clear("STOPPED_TOO_LONG", c.pump.up_s)
        c.event("resume", {})
        c.changed()
        return {"state": c.pump.state}

    def time_set(self, args):
        c = self.ctx
        day = arg(args, "day", int)
        ms = arg(args, "ms", int)
        old = c.clock.wall()
        c.pump.set_wall(day, ms)  # the range is the core's: refused there before any change
        c.clock.set_wall(day, ms)
        c.alarms.clear("CLOCK_NOT_SET", c.pump.up_s)
        c.event("clock_set", {"day": day, "ms": ms, "was": list(old) if old else None})
        c.clock_set(day, ms)  # hourly history restarts; an outage boot could not measure is logged
        c.changed()
        return {"wall": [day, ms]}

    def bolus(self, args):
        c = self.ctx
        dose = arg(args, "dose_ug", int)
        dur = arg(args, "duration_min", int)
        p = c.pump.program
        if p is not None and dose < 1:
            # Quote the limit the clinician works with, the drug's, not the protocol's 1..600 µg.
            soft, hard = LIBRARY.get(p.drug)["bolus"]
            raise Refusal("RANGE", "a clinician bolus of %s must be 1 to %d µg (over %d µg needs the "
                          "override bolus_dose), not %d µg" % (p.drug, hard, soft, dose))
        check_bolus_size(dose, dur)  # the pump's range, before the library's limits for the drug
        overrides = args.get("overrides", [])
        if not isinstance(overrides, list):
            raise Refusal("BAD_ARGS", "overrides must be a list of limit names")
        if p is None:
            raise Refusal("STATE", "there is no program: a bolus needs a running program")
        used = LIBRARY.check_bolus(p.drug, dose, "clinician", overrides)
        try:
            c.pump.start_bolus("clinician", dose, dur)
        except Refusal as e:
            # Every refusal of a bolus is logged (the 24 h maximum above all).
            c.event("bolus", {"kind": "clinician", "dose_ug": dose, "outcome": "refused", "code": e.code})
            raise
        c.event("bolus", {"kind": "clinician", "dose_ug": dose, "min": dur, "outcome": "started", "overrides": list(used)})
        c.changed()
        return {"kind": "clinician", "dose_ug": dose, "duration_min": dur, "overrides_used": list(used)}

    def patient_request(self, source):
        """One patient request (the button or the patient's programmer). A delivered bolus is
        therapy: its record goes to the event log. A refused one is patient traffic: its record
        goes to the refusals' ring within its flash budget (services/refusals.py) and it is
        counted in the bolus usage either way, whose save is bounded too (App.usage_noted)."""
        c = self.ctx
        outcome, detail = c.pump.patient_bolus()
        rec = {"outcome": outcome, "why": detail[:80], "src": source}
        delivered = outcome == "delivered"
        if delivered or c.refusals is None:
            c.event("patient_bolus", rec)
        else:
            c.refusals.note("patient_bolus", rec, outcome)
        if c.usage is not None:
            w = c.clock.wall()
            c.usage.note(w[0] if w else None, outcome)
        if c.usage_noted is not None:
            c.usage_noted(delivered)
        else:
            c.changed()
        return outcome, detail

    def patient_bolus(self, args):
        outcome, detail = self.patient_request("programmer")
        if outcome != "delivered":
            # Already recorded above; the dispatcher must not record it a second time.
            raise Refusal("REFUSED_LOCKOUT" if outcome == "refused_lockout" else "REFUSED_LIMIT", detail)
        return {"outcome": outcome, "detail": detail}
