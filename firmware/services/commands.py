# Protocol command handlers: each validates everything first, then changes state, logs the
# change and saves. A refusal raises an error with a code and a sentence and changes nothing.

from version import VERSION, BANNER
from core import program as programs
from core.druglib import LIBRARY
from core.engine import MAX_RATE
from core.base import Refusal
from core.pump import RUNNING, check_bolus_size, check_calibration, check_prime_duration
from services.protocol import arg

# A log page stops at this many stored bytes: the reply (and the copies made to encode, frame
# and cache it) stays around 2 KB however large the records are, so a download never needs a
# big contiguous block of a Pico's heap. The host pages on until it has everything.
_LOG_PAGE_BYTES = 1200
# The catheter arguments prime and settings both take, named once: a second spelling in one
# handler once made `pumpctl prime --catheter-nl-per-cm N` given alone do nothing.
_CATHETER_ARGS = ("tubing_ul", "catheter_cm", "catheter_nl_per_cm")


class Commands:
    def __init__(self, app):
        self.app = app
        self._prov_auth = None
        self._fails = 0  # authentication refusals counted but not yet written to the log
        self._win_s = -60
        self._win_n = 0

    def table(self):
        return {
            "hello": self.identify, "identify": self.identify, "status": self.status,
            "program_check": self.program_check, "program_set": self.program_set,
            "program_show": self.program_show, "stop": self.stop, "resume": self.resume,
            "time_set": self.time_set, "alarms": self.alarms, "alarms_ack": self.alarms_ack,
            "alarms_pause": self.alarms_pause, "alarms_test": self.alarms_test, "drugs": self.drugs,
            "bolus": self.bolus, "patient_bolus": self.patient_bolus, "prime": self.prime,
            "bridge": self.bridge, "refill": self.refill, "settings": self.settings,
            "calibrate": self.calibrate, "run_volume": self.run_volume, "log": self.log,
            "history": self.history, "provision": self.provision,
        }

    # ---- authentication (docs/security.md) -------------------------------------------------
    def authorise(self, cmd, body, req, mac):
        auth = self.app.auth
        if auth is None:
            return "clinician"  # no storage (unit tests of the dispatcher): nothing to check
        from services.auth import AuthError
        now = self.app.clock.ticks()
        try:
            if cmd == "provision":
                self._prov_auth = auth.authorise_provision(body, req, mac, now)
                return self._prov_auth
            role = auth.check(cmd, body, req, mac, now)
            self.role = role
        except AuthError as e:
            r = req.get("r") if isinstance(req, dict) else None
            # Every refusal is logged, up to 10 a minute; past that a flood is counted and
            # written as one record, so nobody on the port can flush the audit trail out of the
            # log ring (found by fuzzing).
            up = self.app.pump.up_s
            if up - self._win_s >= 60:
                if self._fails:
                    self.app.event("auth_fail_flood", {"suppressed": self._fails})
                self._win_s, self._win_n, self._fails = up, 0, 0
            if self._win_n < 10:
                self._win_n += 1
                self.app.event("auth_fail", {"code": e.code, "cmd": cmd[:24], "role": r[:12] if isinstance(r, str) else None})
            else:
                self._fails += 1
            if e.lock_engaged:
                self.app.alarms.raise_alarm("AUTH_LOCKED", self.app.pump.up_s)
            raise  # an AuthError is a Refusal: the dispatcher replies with its code and sentence
        # Checking a MAC takes tens of ms on a Pico: account for that time before the command
        # acts, so what it starts (a bolus, an alarm test) starts now, not back at the last tick.
        self.app.sync()
        return role

    def provision(self, args):
        keys = arg(args, "keys", dict)
        self.app.auth.provision(keys, self._prov_auth)  # an AuthError is a Refusal: replied as is
        self.app.event("provision", {"by": self._prov_auth or "first"})
        return {"provisioned": True, "device_id": self.app.board.device_id}

    # ---- reading ------------------------------------------------------------------------------
    def identify(self, args):
        a = self.app
        d = {"device": "bench-itb-pump", "device_id": a.board.device_id, "board": a.board.name,
             "firmware_version": VERSION, "protocol": 1, "banner": BANNER}
        if a.auth is not None:
            d["auth"] = a.auth.info(a.clock.ticks())
        return d

    def status(self, args):
        a = self.app
        st = a.pump.status()
        st["alarms"] = a.alarms.active()
        st["firmware_version"] = VERSION
        w = a.clock.wall()
        st["wall"] = [w[0], w[1]] if w else None
        st["calibrated"] = a.calibrated
        st["refill_day"] = a.refill_day
        st["selftest"] = a.selftest
        st["motor_stalled"] = a.board.motor.stalled()
        st["log_seq"] = a.log.last_seq() if a.log else 0
        # Heap figures of the collection after the last request (App._after_request): counting
        # the heap again here would cost a Pico tens of ms for the same numbers.
        st["heap_used"] = a.heap_used
        st["heap_free"] = a.heap_total - a.heap_used
        st["heap_total"] = a.heap_total
        st["heap_min_free"] = a.min_free
        st["heap_peak_live"] = a.peak_live
        st["boot_heap_used"] = a.boot_mem
        return st

    def program_show(self, args):
        p = self.app.pump.program
        return {"program": p.to_dict() if p else None, "state": self.app.pump.state}

    def drugs(self, args):
        return {"drugs": LIBRARY.to_list(), "digest": LIBRARY.verify()}

    def alarms(self, args):
        al = self.app.alarms
        return {"active": al.active(), "history": al.history(20), "audio_paused_ms": al.pause_remaining_ms()}

    def log(self, args):
        since = arg(args, "since", int, 0, (1 << 30) - 1, default=0, required=False) or 0
        n = arg(args, "max", int, 1, 40, default=20, required=False) or 20
        lg = self.app.log
        if lg is None:
            return {"records": [], "last_seq": 0, "first_seq": 0}
        recs = lg.read(since, n, _LOG_PAGE_BYTES)
        if lg.corrupt:
            # Damaged records are skipped, never returned; the damage itself is a recoverable
            # storage error worth a (medium) alarm.
            self.app.alarms.raise_alarm("MEMORY_ERROR", self.app.pump.up_s)
        return {"records": recs, "last_seq": lg.last_seq(), "first_seq": lg.first_seq(), "corrupt": lg.corrupt}

    def history(self, args):
        a = self.app
        if a.history is None:
            return {"hours": []}
        frm = arg(args, "from_hour", int, 0, 1 << 29)
        to = arg(args, "to_hour", int, 0, 1 << 29)
        if to - frm > 48:
            raise Refusal("RANGE", "ask for at most 48 hours per request")
        rows = a.history.read(frm, to)
        return {"hours": [list(r) for r in rows]}

    # ---- therapy ---------------------------------------------------------------------------
    def _need_calibration(self):
        if not self.app.calibrated:
            raise Refusal("UNCALIBRATED", "this pump has no calibration: run `pumpctl calibrate` before therapy")

    def _parse(self, args):
        return programs.parse(arg(args, "program", dict), LIBRARY)

    def program_check(self, args):
        new = self._parse(args)
        old = self.app.pump.program
        return {"old": old.to_dict() if old else None, "new": new.to_dict()}

    def program_set(self, args):
        self._need_calibration()
        a = self.app
        new = self._parse(args)
        old = a.pump.program
        if old is not None and old.conc != new.conc and old.drug == new.drug:
            raise Refusal("STATE", "a new concentration comes with a refill: use `pumpctl refill --concentration`")
        a.pump.set_program(new, LIBRARY.max24_ug(new.drug))  # whole or not at all
        a.alarms.clear("STOPPED_TOO_LONG", a.pump.up_s)
        a.event("program", {"drug": new.drug, "conc": new.conc, "mode": new.mode, "daily_ug": new.daily_total_ug()})
        for o in new.overrides_used:
            a.event("override", {"limit": o, "drug": new.drug})
        a.changed()
        return {"old": old.to_dict() if old else None, "new": new.to_dict(), "overrides_used": list(new.overrides_used)}

    def stop(self, args):
        a = self.app
        # No abort: the head finishes the step(s) already commanded and counted (a move is a few
        # ms), so delivered stays what the head moved; then EN is released as after every move.
        # An occlusion or a fault aborts at once (App.occlusion).
        a.pump.stop("stopped by programmer")
        a.event("stop", {})
        a.changed()
        return {"state": a.pump.state}

    def resume(self, args):
        self._need_calibration()
        a = self.app
        a.pump.resume()
        a.alarms.clear("STOPPED_TOO_LONG", a.pump.up_s)
        a.event("resume", {})
        a.changed()
        return {"state": a.pump.state}

    def time_set(self, args):
        a = self.app
        day = arg(args, "day", int)
        ms = arg(args, "ms", int)
        old = a.clock.wall()
        a.pump.set_wall(day, ms)  # the range is the core's: refused there before any change
        a.clock.set_wall(day, ms)
        a.alarms.clear("CLOCK_NOT_SET", a.pump.up_s)
        a.restart_hours()
        a.event("clock_set", {"day": day, "ms": ms, "was": list(old) if old else None})
        a.settle_outage(day, ms)
        a.changed()
        return {"wall": [day, ms]}

    def bolus(self, args):
        a = self.app
        dose = arg(args, "dose_ug", int)
        dur = arg(args, "duration_min", int)
        check_bolus_size(dose, dur)  # the pump's range, before the library's limits for the drug
        overrides = args.get("overrides", [])
        if not isinstance(overrides, list):
            raise Refusal("BAD_ARGS", "overrides must be a list of limit names")
        p = a.pump.program
        if p is None:
            raise Refusal("STATE", "there is no program: a bolus needs a running program")
        used = LIBRARY.check_bolus(p.drug, dose, "clinician", overrides)
        try:
            a.pump.start_bolus("clinician", dose, dur)
        except Refusal as e:
            # Every refusal of a bolus is logged (the 24 h maximum above all).
            a.event("bolus", {"kind": "clinician", "dose_ug": dose, "outcome": "refused", "code": e.code})
            raise
        a.event("bolus", {"kind": "clinician", "dose_ug": dose, "min": dur, "outcome": "started", "overrides": list(used)})
        a.changed()
        return {"kind": "clinician", "dose_ug": dose, "duration_min": dur, "overrides_used": list(used)}

    def patient_request(self, source):
        a = self.app
        outcome, detail = a.pump.patient_bolus()
        a.event("patient_bolus", {"outcome": outcome, "why": detail[:80], "src": source})
        return outcome, detail

    def patient_bolus(self, args):
        outcome, detail = self.patient_request("programmer")
        self.app.changed()
        if outcome != "delivered":
            raise Refusal("REFUSED_LOCKOUT" if outcome == "refused_lockout" else "REFUSED_LIMIT", detail)
        return {"outcome": outcome, "detail": detail}

    def prime(self, args):
        self._need_calibration()
        a = self.app
        dur = arg(args, "duration_min", int, default=10, required=False)
        check_prime_duration(dur)  # the pump's range, before the catheter settings change
        self._catheter(args)
        steps = a.pump.start_prime(dur)
        a.event("prime", {"steps": steps, "nl": a.pump.dead_volume_nl(), "min": dur})
        a.changed()
        return {"steps": steps, "volume_ul": a.pump.dead_volume_nl() / 1000, "duration_min": dur}

    def _catheter(self, args):
        """Apply the catheter arguments given, keeping the others; none given: nothing."""
        for k in _CATHETER_ARGS:
            if k in args:
                break
        else:
            return
        p = self.app.pump
        tub = arg(args, "tubing_ul", int, default=p.tubing_nl // 1000, required=False)
        cm = arg(args, "catheter_cm", int, default=p.catheter_cm, required=False)
        per = arg(args, "catheter_nl_per_cm", int, default=p.catheter_nl_per_cm, required=False)
        p.set_catheter(tub * 1000, cm, per)  # the ranges are the pump's, all checked before any is kept

    def bridge(self, args):
        a = self.app
        if a.pump.bridge_left:
            return {"bridge_steps_left": a.pump.bridge_left}
        raise Refusal("STATE", "no concentration change is waiting for a bridge: refill with --concentration and --bridge")

    def refill(self, args):
        a = self.app
        p = a.pump
        withdrawn = arg(args, "withdrawn_ul", int, 0, 50_000)
        new_vol = arg(args, "volume_ul", int, 1, 40_000)
        conc = arg(args, "concentration_ug_per_ml", int, 1, 100_000, required=False)
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
        expected, mismatch, warn = p.refill(withdrawn, new_vol)  # refuses overfill, changes nothing then
        bridge_steps = 0
        if newprog is not None:
            bridge_steps = p.change_concentration(newprog, bridge)
        a.alarms.clear("RESERVOIR_EMPTY", p.up_s)
        a.alarms.clear("RESERVOIR_LOW", p.up_s)
        a.alarms.clear("REFILL_DUE", p.up_s)
        f = p.forecast()
        a.refill_day = f["low_day"] if f else None
        a.event("refill", {"withdrawn_ul": withdrawn, "expected_ul": expected, "volume_ul": new_vol,
                           "conc": conc or (prog.conc if prog else None), "warn": warn, "bridge_steps": bridge_steps})
        a.changed()
        return {"expected_ul": expected, "withdrawn_ul": withdrawn, "mismatch_ul": mismatch, "warning": warn,
                "warning_text": ("withdrawn volume differs from the expected %d µL by %d µL: possible under- or "
                                 "over-delivery, or a fill outside the reservoir" % (expected, mismatch)) if warn else None,
                "volume_ul": new_vol, "forecast": f, "refill_day": a.refill_day, "bridge_steps": bridge_steps,
                "state": p.state}

    def settings(self, args):
        a = self.app
        p = a.pump
        low = arg(args, "low_reservoir_ul", int, 0, 10_000, required=False)
        stop_h = arg(args, "stopped_alarm_h", int, 1, 168, required=False)
        if low is not None and low * 1000 >= p.reservoir.capacity_nl:
            raise Refusal("RANGE", "low-reservoir threshold must be below the reservoir size")
        self._catheter(args)
        if low is not None:
            p.reservoir.low_nl = low * 1000
        if stop_h is not None:
            p.stopped_alarm_s = stop_h * 3600
        a.event("settings", {k: args[k] for k in args if type(args[k]) is int})
        a.changed()
        return {"low_reservoir_ul": p.reservoir.low_nl // 1000, "stopped_alarm_h": p.stopped_alarm_s // 3600,
                "tubing_ul": p.tubing_nl // 1000, "catheter_cm": p.catheter_cm, "catheter_nl_per_cm": p.catheter_nl_per_cm}

    def calibrate(self, args):
        a = self.app
        pl = arg(args, "pl_per_step", int)
        check_calibration(pl)  # the pump's range, before the distance from the last
        force = arg(args, "force", bool, required=False) or False
        day = arg(args, "day", int, 0, 1 << 20, required=False)
        old = a.pump.pl_per_step
        if a.calibrated and not force and (pl * 10 > old * 13 or pl * 13 < old * 10):
            raise Refusal("FAR_FROM_LAST", "new calibration %d pL/step is more than 30 %% from the last (%d): check the "
                               "measurement, or pass --force" % (pl, old))
        if a.pump.bolus_kind is not None or a.pump.prime_left:
            raise Refusal("BUSY", "finish the running bolus before calibrating")
        a.pump.calibrate(pl)
        a.calibrated = True
        a.cal_day = day
        a.event("calibration", {"pl_per_step": pl, "was": old, "forced": force})
        a.changed()
        return {"pl_per_step": pl, "was": old}

    def run_volume(self, args):
        """Calibration run: move the head by a number of steps at a given rate, no dose."""
        a = self.app
        p = a.pump
        steps = arg(args, "steps", int, 1, 400_000)
        minutes = arg(args, "duration_min", int, 1, 240)
        if p.state == RUNNING:
            raise Refusal("STATE", "stop therapy before a calibration run (pumpctl stop)")
        if p.bolus_kind is not None or p.prime_left:
            raise Refusal("BUSY", "a bolus or volume run is already running")
        fastest = MAX_RATE // 1440  # steps a minute the volume integrator takes
        if steps > fastest * minutes:
            ul = steps * p.pl_per_step // 1_000_000
            raise Refusal("RANGE", "a run of %d µL (%d steps) in %d min is faster than the pump moves "
                               "(at most %d steps a minute): give it at least %d minutes"
                               % (ul, steps, minutes, fastest, -(-steps // fastest)))
        p.start_calibration_run(steps, minutes)
        a.event("calibration_run", {"steps": steps, "min": minutes})
        a.changed()
        return {"steps": steps, "duration_min": minutes}

    # ---- alarms ------------------------------------------------------------------------------
    def alarms_ack(self, args):
        a = self.app
        code = arg(args, "code", str)
        try:
            done = a.alarms.ack(code, a.pump.up_s)
        except ValueError as e:
            raise Refusal("BAD_ARGS", str(e))
        if "OCCLUSION" in done:
            a.board.motor.enable(True)  # the driver may move again once the stall is gone
        a.changed()
        return {"acknowledged": done}

    def alarms_pause(self, args):
        a = self.app
        ms = arg(args, "ms", int, 1, 900_000)
        try:
            a.alarms.pause_audio(ms, a.pump.up_s)
        except ValueError as e:
            raise Refusal("RANGE", str(e))
        a.changed(save=False)
        return {"audio_paused_ms": ms}

    def alarms_test(self, args):
        a = self.app
        a.annunciator.start_test()
        a.annunciate()  # the first pulse sounds now, not once the reply is built and sent
        a.alarms.raise_alarm("ALARM_TEST", a.pump.up_s)
        a.alarms.clear("ALARM_TEST", a.pump.up_s)
        a.changed(save=False)
        return {"testing": True}
