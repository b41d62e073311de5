# The setup commands: catheter and settings, priming, refill and bridge, calibration and the
# calibration run. They decode (present, of the right type) and hand the values to the core,
# which owns the ranges and takes each change whole or not at all.
from core import program as programs
from core.druglib import LIBRARY
from core.base import Refusal
from core.limits import check_calibration
from services.protocol import arg
from services.cmd_therapy import need_calibration

# The catheter arguments prime and settings both take, named once: a second spelling in one
# handler once made `pumpctl prime --catheter-nl-per-cm N` given alone do nothing.
_CATHETER_ARGS = ("tubing_ul", "catheter_cm", "catheter_nl_per_cm")


def _catheter(args, p):
    """The catheter the arguments ask for, as (tubing_nl, length_cm, nl_per_cm), the values not
    given kept from the pump; None when none is given."""
    for k in _CATHETER_ARGS:
        if k in args:
            break
    else:
        return None
    tub = arg(args, "tubing_ul", int, default=p.tubing_nl // 1000, required=False)
    cm = arg(args, "catheter_cm", int, default=p.catheter_cm, required=False)
    per = arg(args, "catheter_nl_per_cm", int, default=p.catheter_nl_per_cm, required=False)
    return (tub * 1000, cm, per)


class SetupCommands:
    """Mixed into services.commands.Commands: `self.ctx` is its CommandContext."""

    def prime(self, args):
        c = self.ctx
        need_calibration(c.calibration)
        dur = arg(args, "duration_min", int, default=10, required=False)
        # The duration's range and the catheter's are the core's: taken whole or not at all.
        steps = c.pump.start_prime(dur, _catheter(args, c.pump))
        c.event("prime", {"steps": steps, "nl": c.pump.dead_volume_nl(), "min": dur})
        c.changed()
        return {"steps": steps, "volume_ul": c.pump.dead_volume_nl() / 1000, "duration_min": dur}

    def settings(self, args):
        c = self.ctx
        p = c.pump
        p.configure(low_reservoir_ul=arg(args, "low_reservoir_ul", int, required=False),
                    stopped_alarm_h=arg(args, "stopped_alarm_h", int, required=False),
                    catheter=_catheter(args, p))
        c.event("settings", {k: args[k] for k in args if type(args[k]) is int})
        c.changed()
        return {"low_reservoir_ul": p.reservoir.low_nl // 1000, "stopped_alarm_h": p.stopped_alarm_s // 3600,
                "tubing_ul": p.tubing_nl // 1000, "catheter_cm": p.catheter_cm, "catheter_nl_per_cm": p.catheter_nl_per_cm}

    def bridge(self, args):
        p = self.ctx.pump
        if p.bridge_left:
            return {"bridge_steps_left": p.bridge_left}
        raise Refusal("STATE", "no concentration change is waiting for a bridge: refill with --concentration and --bridge")

    def refill(self, args):
        c = self.ctx
        p = c.pump
        withdrawn = arg(args, "withdrawn_ul", int)
        new_vol = arg(args, "volume_ul", int)
        conc = arg(args, "concentration_ug_per_ml", int, required=False)  # the drug library's range
        bridge = arg(args, "bridge", bool, required=False) or False
        prog = p.program
        newprog = None
        if conc is not None and prog is not None and conc != prog.conc:
            d = prog.to_dict()
            d["concentration_ug_per_ml"] = conc
            newprog = programs.parse(d, LIBRARY)  # refuses a concentration the library forbids
            p.check_conversion(conc, p.pl_per_step)
        if bridge and newprog is None:
            raise Refusal("STATE", "a bridge bolus is for a change of concentration")
        if bridge and p.dead_volume_nl() <= 0:
            raise Refusal("RANGE", "set the catheter length and volume per cm first (pumpctl settings)")
        expected, mismatch, warn = p.refill(withdrawn, new_vol)  # the core's ranges; refused, nothing changed
        bridge_steps = 0
        if newprog is not None:
            bridge_steps = p.change_concentration(newprog, bridge)
        c.alarms.clear("RESERVOIR_EMPTY", p.up_s)
        c.alarms.clear("RESERVOIR_LOW", p.up_s)
        c.alarms.clear("REFILL_DUE", p.up_s)
        f = p.forecast()
        c.refill.day = f["low_day"] if f else None
        c.event("refill", {"withdrawn_ul": withdrawn, "expected_ul": expected, "volume_ul": new_vol,
                           "conc": conc or (prog.conc if prog else None), "warn": warn, "bridge_steps": bridge_steps})
        c.changed()
        return {"expected_ul": expected, "withdrawn_ul": withdrawn, "mismatch_ul": mismatch, "warning": warn,
                "warning_text": ("withdrawn volume differs from the expected %d µL by %d µL: possible under- or "
                                 "over-delivery, or a fill outside the reservoir" % (expected, mismatch)) if warn else None,
                "volume_ul": new_vol, "forecast": f, "refill_day": c.refill.day, "bridge_steps": bridge_steps,
                "state": p.state}

    def calibrate(self, args):
        c = self.ctx
        pl = arg(args, "pl_per_step", int)
        check_calibration(pl)  # the pump's range, before the distance from the last
        force = arg(args, "force", bool, required=False) or False
        day = arg(args, "day", int, required=False)
        c.calibration.check_day(day)
        old = c.pump.pl_per_step
        if c.calibration.calibrated and not force and (pl * 10 > old * 13 or pl * 13 < old * 10):
            # In nL per step, as `pumpctl calibrate` shows it, not the wire's pL.
            raise Refusal("FAR_FROM_LAST", "new calibration %d.%03d nL per step is more than 30 %% from the last "
                          "(%d.%03d nL per step): check the measurement, or pass --force"
                          % (pl // 1000, pl % 1000, old // 1000, old % 1000))
        c.pump.calibrate(pl)
        c.calibration.record(day)
        c.event("calibration", {"pl_per_step": pl, "was": old, "forced": force})
        c.changed()
        return {"pl_per_step": pl, "was": old}

    def run_volume(self, args):
        """Calibration run: move the head by a number of steps at a given rate, no dose."""
        c = self.ctx
        p = c.pump
        steps = arg(args, "steps", int)
        minutes = arg(args, "duration_min", int)
        p.start_calibration_run(steps, minutes)
        c.event("calibration_run", {"steps": steps, "min": minutes})
        c.changed()
        return {"steps": steps, "duration_min": minutes}
