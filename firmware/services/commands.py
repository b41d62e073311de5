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

# Requests that only read: a refusal of one (a bad page number) is not worth a record.
_READS = ("hello", "identify", "status", "alarms", "drugs", "log", "history", "program_show", "patient_usage")


class CommandContext:
    """Exactly what the handlers use. `stores` is filled at boot (log, history, auth, self-test);
    the callables are the App's: event(kind, data) logs, changed(save=True) saves and wakes the
    control loop, sync() accounts for the time so far, annunciate() drives buzzer and lights,
    clock_set(day, ms) tells the App the wall clock was just set."""

    def __init__(self, pump, alarms, clock, motor, device_id, board_name, stores, calibration, refill,
                 heap, annunciator, event, changed, sync, annunciate, clock_set, batch=None,
                 refusals=None, refused=None, usage=None, usage_noted=None, measure=None,
                 battery=None):
        self.pump, self.alarms, self.annunciator = pump, alarms, annunciator  # the core
        self.clock, self.motor = clock, motor  # the board's parts the handlers use
        self.device_id, self.board_name = device_id, board_name
        self.stores, self.heap = stores, heap  # services.startup.Stores, services.heapwatch.HeapWatch
        # core.records.CalibrationRecord and RefillPlan: what the pump knows beside its therapy
        self.calibration, self.refill = calibration, refill
        self.event, self.changed, self.sync = event, changed, sync  # the App's, see above
        self.annunciate, self.clock_set = annunciate, clock_set
        self.batch = batch  # services.motor_batch.MotorBatch: the control loop's wake counters
        self.refusals = refusals  # services.refusals.RefusalLog: what anyone without the key was refused
        self.refused = refused  # the same, for the clinician's refused requests, into the event log
        self.usage = usage  # core.usage.BolusUsage: patient bolus attempts per day
        self.usage_noted = usage_noted  # usage_noted(delivered): the App saves the counts (bounded)
        self.measure = measure  # measure(): the measured conditions (battery) read again now
        self.battery = battery  # battery(): the board's battery in mV now (status shows it)


class Commands(ReadCommands, TherapyCommands, SetupCommands, AlarmCommands):
    def __init__(self, ctx):
        self.ctx = ctx
        self.role = None
        self._prov_auth = None
        self._claimed = None  # the role an auth refusal's frame claimed, for its record

    # The commands that change nothing: the protocol may run one again after a MemoryError.
    READS = ("hello", "identify", "status", "program_show", "program_check", "alarms", "drugs",
             "log", "history", "patient_usage")

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
            "patient_usage": self.patient_usage,
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
            self._claimed = req.get("r") if isinstance(req, dict) else None
            if e.alarm:
                c.alarms.raise_alarm("AUTH_FAILURES", c.pump.up_s)
                c.changed()  # the alarm is in the saved state before the reply: a power cut keeps it
            raise  # an AuthError is a Refusal: the dispatcher replies and reports it
        # Checking a MAC takes tens of ms on a Pico: account for that time before the command
        # acts, so what it starts (a bolus, an alarm test) starts now, not back at the last tick.
        c.sync()
        return role

    def report(self, stage, code, cmd, role):
        """Every refusal and repeat the dispatcher answered (services/protocol.py): the
        clinician's refused requests go to the event log (a reviewer's record of what was asked
        and why it was refused); everything from anyone without the clinician's key goes to the
        refusals' ring, within its flash budget (services/refusals.py)."""
        c = self.ctx
        if stage == "command" and role == "clinician":
            if cmd not in _READS:
                rec = {"cmd": cmd[:24], "code": code}
                if c.refused is not None:
                    c.refused.note("refused", rec, code)
                else:
                    c.event("refused", rec)
            return
        ref = c.refusals
        if ref is None:
            return
        name = cmd[:24] if isinstance(cmd, str) else None
        if stage == "auth":
            r = self._claimed
            self._claimed = None
            ref.note("auth_fail", {"code": code, "cmd": name, "role": r[:12] if isinstance(r, str) else None}, code)
            if code == "RATE_LIMITED" and cmd == "patient_bolus" and c.usage is not None:
                # An authentic patient request the budget refused: still an attempt in the report.
                w = c.clock.wall()
                c.usage.note(w[0] if w else None, "rate_limited")
                if c.usage_noted is not None:
                    c.usage_noted(False)
        elif stage == "repeat":
            ref.note("repeat", {"cmd": name}, "REPEAT")
        elif stage == "command" and role == "patient":
            if cmd != "patient_bolus":  # a refused patient bolus was recorded where it was decided
                ref.note("patient_refused", {"cmd": name, "code": code}, code)
        elif stage == "internal":
            c.event("internal_error", {"where": "link", "cmd": name})
        else:
            ref.note("frame_bad", {"code": code, "cmd": name}, code)

    def provision(self, args):
        c = self.ctx
        keys = arg(args, "keys", dict)
        c.stores.auth.provision(keys, self._prov_auth)  # an AuthError is a Refusal: replied as is
        c.event("provision", {"by": self._prov_auth or "first"})
        return {"provisioned": True, "device_id": c.device_id}
