# The protocol's command handlers and their one dispatch table. Each family lives in its own
# module (cmd_read, cmd_therapy, cmd_setup, cmd_alarms) and is mixed in here; every handler
# reaches the pump and its services through one CommandContext, never the App. A refusal
# raises core.base.Refusal (code and sentence) and changes nothing.
from services.protocol import arg
from services.auth import AuthError
from services.cmd_read import ReadCommands
from services.cmd_therapy import TherapyCommands
from services.cmd_setup import SetupCommands
from services.cmd_alarms import AlarmCommands


class CommandContext:
    """Exactly what the handlers use. `stores` is filled at boot (log, history, auth, self-test);
    the callables are the App's: event(kind, data) logs, changed(save=True) saves and wakes the
    control loop, sync() accounts for the time so far, annunciate() drives buzzer and lights,
    clock_set(day, ms) tells the App the wall clock was just set."""

    def __init__(self, pump, alarms, clock, motor, device_id, board_name, stores, calibration, refill,
                 heap, annunciator, event, changed, sync, annunciate, clock_set, batch=None):
        self.pump, self.alarms, self.annunciator = pump, alarms, annunciator  # the core
        self.clock, self.motor = clock, motor  # the board's parts the handlers use
        self.device_id, self.board_name = device_id, board_name
        self.stores, self.heap = stores, heap  # services.startup.Stores, services.heapwatch.HeapWatch
        # core.records.CalibrationRecord and RefillPlan: what the pump knows beside its therapy
        self.calibration, self.refill = calibration, refill
        self.event, self.changed, self.sync = event, changed, sync  # the App's, see above
        self.annunciate, self.clock_set = annunciate, clock_set
        self.batch = batch  # services.motor_batch.MotorBatch: the control loop's wake counters


class Commands(ReadCommands, TherapyCommands, SetupCommands, AlarmCommands):
    def __init__(self, ctx):
        self.ctx = ctx
        self.role = None
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
        c = self.ctx
        auth = c.stores.auth
        if auth is None:
            return "clinician"  # no storage (unit tests of the dispatcher): nothing to check
        now = c.clock.ticks()
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
            up = c.pump.up_s
            if up - self._win_s >= 60:
                if self._fails:
                    c.event("auth_fail_flood", {"suppressed": self._fails})
                self._win_s, self._win_n, self._fails = up, 0, 0
            if self._win_n < 10:
                self._win_n += 1
                c.event("auth_fail", {"code": e.code, "cmd": cmd[:24], "role": r[:12] if isinstance(r, str) else None})
            else:
                self._fails += 1
            if e.lock_engaged:
                c.alarms.raise_alarm("AUTH_LOCKED", c.pump.up_s)
            raise  # an AuthError is a Refusal: the dispatcher replies with its code and sentence
        # Checking a MAC takes tens of ms on a Pico: account for that time before the command
        # acts, so what it starts (a bolus, an alarm test) starts now, not back at the last tick.
        c.sync()
        return role

    def provision(self, args):
        c = self.ctx
        keys = arg(args, "keys", dict)
        c.stores.auth.provision(keys, self._prov_auth)  # an AuthError is a Refusal: replied as is
        c.event("provision", {"by": self._prov_auth or "first"})
        return {"provisioned": True, "device_id": c.device_id}
