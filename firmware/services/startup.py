# The boot sequence: open the stores, self-test, restore the saved state and the step journal,
# account for the outage, and resume therapy by the rules below. app.App.boot() calls boot();
# the outage that boot cannot measure (no clock yet) is settled by Outage when the clock is set.
from version import VERSION
from core.base import Refusal
from core.limits import check_calibration
from core.pump import RUNNING, STOPPED
from core.druglib import LIBRARY
from services import persist
from services.history import History, HourAccumulator, PendingHours, programmed_ng_for_hour
# Imported with the app, not when boot opens the stores: on a Pico, a module loaded late must
# find room for its code among the small objects boot has made, and once found none (a
# MemoryError for 1.3 KB with 97 KB free, in pieces).
from services.storage import StateStore
from services.eventlog import EventLog
from services.auth import Auth

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000
REFUSAL_SEGMENTS = 4  # the refusals' ring: at least 3 x 16368 bytes kept (docs/persistence.md)
_NO_CALIBRATION = "no calibration stored"


class Stores:
    """What boot opens on the board's storage; each stays None without storage or when it
    could not be read (the failure is in `selftest`)."""

    def __init__(self):
        self.log = None  # services.eventlog.EventLog: therapy, alarms, programming, the clinician's refusals
        self.refusals = None  # services.eventlog.EventLog: what anyone without the key was refused
        self.history = None  # services.history.PendingHours over its History
        self.hours = None  # services.history.HourAccumulator feeding `history`
        self.state = None  # services.storage.StateStore
        self.auth = None  # services.auth.Auth
        self.selftest = []  # failures found at boot, sentences


class Outage:
    """Delivery missed while the pump was down is logged, never caught up."""

    def __init__(self, pump, clock, event):
        self.pump = pump
        self.clock = clock
        self.event = event
        self.unmeasured_from = None  # (day, ms) the pump was last alive, while the outage is unmeasured

    def log_at_boot(self, state):
        w = self.clock.wall()
        saved = state.get("wall") if state else None
        prog = self.pump.program
        if w is None or saved is None or prog is None:
            self.event("under_delivery", {"down_ms": None, "why": "outage of unknown length (clock not set)"})
            if saved is not None and prog is not None:
                # A Pico has no battery-backed clock: the outage is measured once the programmer
                # sets the time (settle), from the last moment the pump was known alive.
                self.unmeasured_from = (saved[0], saved[1])
            return
        self.log_missed(saved, (w[0] - saved[0]) * _DAY_MS + (w[1] - saved[1]), None)

    def log_missed(self, saved, down_ms, how):
        if down_ms <= 0:
            return
        ug = self.pump.program.rate_at(saved[1] // _MINUTE_MS) * (down_ms // 1000) // 86_400
        data = {"down_s": down_ms // 1000, "missed_ug": ug, "caught_up": False}
        if how:
            data["measured"] = how
        self.event("under_delivery", data)

    def settle(self, day, ms):
        """The clock was just set: log the outage that boot could not measure, if any."""
        saved = self.unmeasured_from
        self.unmeasured_from = None
        if saved is None or self.pump.program is None:
            return
        booted = (day - saved[0]) * _DAY_MS + (ms - saved[1]) - self.pump.up_s * 1000
        if booted <= 0:
            # The clock now set is earlier than the pump's last record (its clock had run fast,
            # or the programmer's is slow): the outage cannot be measured, and saying so beats
            # a silent nothing.
            self.event("under_delivery", {"down_ms": None, "why": "outage not measurable: the clock was set %d s before the pump's last record" % (-booted // 1000)})
            return
        self.log_missed(saved, booted, "when the clock was set")


def open_stores(board, stores, alarms):
    """Open log, history, keys and saved state on the board's storage; returns the saved state
    (None if there is none or it could not be read)."""
    root = board.storage_root
    fails = stores.selftest
    state = None
    if root:
        try:
            stores.log = EventLog(root + "/log")
        except Exception as e:
            fails.append("event log unreadable: %r" % (e,))
        try:
            # Its own small ring (services/refusals.py): a flood fills it, never the event log.
            stores.refusals = EventLog(root + "/refusals", segments=REFUSAL_SEGMENTS)
        except Exception as e:
            fails.append("refusals log unreadable: %r" % (e,))
        try:
            # Closed hours wait in a small file and go into the day files 6 at a time.
            stores.history = PendingHours(History(root + "/hist"), root + "/hist/pend")
            stores.hours = HourAccumulator(stores.history)
        except Exception as e:
            fails.append("history unreadable: %r" % (e,))
        try:
            stores.auth = Auth(root, board.device_id)
        except Exception as e:
            fails.append("authentication store unreadable: %r" % (e,))
        try:
            stores.state = StateStore(root + "/state")
            state = stores.state.load()
            if stores.state.status == "corrupt":
                fails.append("state checksum bad: no usable copy")
            elif stores.state.status == "recovered":
                alarms.raise_alarm("MEMORY_ERROR", 0)
        except Exception as e:
            fails.append("state unreadable: %r" % (e,))
        if stores.log is not None and stores.log.corrupt:
            alarms.raise_alarm("MEMORY_ERROR", 0)
    if board.lost_data:
        fails.append("storage unreadable: the flash held data littlefs could not mount")
    try:
        LIBRARY.verify()
    except Exception as e:
        fails.append("drug library integrity: %s" % (e,))
    return state


def _restore(app, state):
    """The saved state and the step journal after it; returns the saved run state or None."""
    try:
        was, why = persist.restore(app, state)
    except Exception as e:
        app.stores.selftest.append("saved state unusable: %r" % (e,))
        return None
    if was is not None and app.journal is not None:
        rec = app.journal.read()
        if rec is not None:
            jw = app.journal.apply(app.pump, rec)
            if jw is not None:
                state["wall"] = [jw[0], jw[1]]  # the last moment the pump was known alive
    return was


def boot(app):
    """Self-test, restore, log the reset cause, resume therapy for the current time. Returns
    True if the saved state is unsound (the motor stays stopped and nothing is saved)."""
    b = app.board
    pump, alarms, stores = app.pump, app.alarms, app.stores
    cause = b.reset_cause()
    state = open_stores(b, stores, alarms)
    was = None
    if state is not None:
        was = _restore(app, state)
    elif b.initial_fill_ul and not stores.selftest:
        pump.reservoir.fill(b.initial_fill_ul)  # a fresh bench starts filled
    app.restored = True  # from here on a save keeps what was restored
    if not app.calibration.calibrated:
        stores.selftest.append(_NO_CALIBRATION)
    try:
        check_calibration(pump.pl_per_step)  # the core's range, as a command is held to
    except Refusal:
        stores.selftest.append("calibration out of range")
    w = app.clock.wall()
    if w is not None:
        pump.set_wall(w[0], w[1])
        if stores.hours is not None:
            # The hour in progress at a power cut goes on, or is closed with what it delivered.
            stores.hours.resume(pump.day * 24 + pump.ms // _HOUR_MS, pump,
                                lambda h: programmed_ng_for_hour(pump.program, h))
    app.event("power_on", {"cause": cause, "fw": VERSION, "selftest": stores.selftest[:3]})
    if cause == "watchdog":
        alarms.raise_alarm("WATCHDOG_RESET", 0)
        alarms.clear("WATCHDOG_RESET", 0)  # latched until acknowledged
    # An uncalibrated pump only refuses therapy (commands check it); the rest is unsound.
    if [f for f in stores.selftest if f != _NO_CALIBRATION]:
        # Unsound state: the motor stays stopped and a high-priority alarm sounds.
        pump.stop("self-test failed")
        alarms.raise_alarm("SELF_TEST_FAILED", 0)
        if any("state" in f for f in stores.selftest):
            alarms.raise_alarm("MEMORY_CRITICAL", 0)
        return True
    if w is None:
        alarms.raise_alarm("CLOCK_NOT_SET", 0)
    _resume(app, was, state)
    return False


def _resume(app, was, state):
    """Therapy running before the reset resumes at the programmed rate (never a catch-up);
    stopped stays stopped with its reason; a bolus cut by the reset is logged, not resumed."""
    pump = app.pump
    if was == RUNNING and pump.program is not None:
        app.outage.log_at_boot(state)
        try:
            pump.resume()
        except Refusal as e:
            pump.stop(e.msg)
    elif was == STOPPED and pump.program is not None:
        pump.stop(state.get("stop_reason") or "stopped before the reset")
    if state and state.get("bolus"):
        kind, left = state["bolus"]
        app.event("bolus", {"kind": kind, "outcome": "interrupted", "left_ug": left})
