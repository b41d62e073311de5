# The pump application: builds the core and services around the board it is handed and runs
# them on asyncio. Tasks: the control loop (time, dose, motor, alarms, annunciation, saving),
# the link loop (frames from the programmer), the supervisor (watchdog) and the button. The link
# loop can fail in any way without touching therapy: its exceptions are caught and it restarts.
import asyncio
import gc
import micropython

from version import VERSION, BANNER
from core.base import Refusal
from core.pump import (Pump, RUNNING, check_calibration, STOPPED, FLAG_EMPTY, FLAG_LOW, FLAG_LIMIT24,
                       FLAG_PERIODIC_REFUSED, FLAG_PERIODIC_SKIPPED, FLAG_STOPPED_LONG,
                       FLAG_PERIODIC_STARTED, FLAG_BRIDGE_DONE, FLAG_PRIME_DONE,
                       FLAG_CALIBRATION_RUN_DONE)
from core.druglib import LIBRARY
from core.alarms import AlarmManager
from core.annunciation import Annunciator
from services import link, persist
from services.protocol import Protocol
from services.commands import Commands
from services.supervisor import Supervisor
from services.journal import Journal

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_MINUTE_MS = 60_000
# Battery thresholds (mV): elective replacement, end of service. A potentiometer on the Pico's
# ADC or the bench's battery fault stands in for a draining cell.
BATTERY_ERI_MV = 3_300
BATTERY_EOS_MV = 3_000
BATTERY_HYST_MV = 50  # a reading must rise this far past a threshold before its alarm clears


def _check_board(board):
    """A board missing a member of the contract fails here, in one sentence. The contract's
    module is dropped again afterwards: its tables would otherwise hold ~3 KB of a Pico's heap."""
    import sys
    import board_contract
    try:
        board_contract.check(board)
    finally:
        sys.modules.pop("board_contract", None)


class App:
    def __init__(self, board, heap_lock_tick=False):
        _check_board(board)
        self.board = board
        self.clock = board.clock
        self.alarms = AlarmManager()
        self.pump = Pump(self.alarms, model_ml=board.reservoir_model_ml, pl_per_step=board.nominal_pl_per_step)
        self.annunciator = Annunciator()
        self.heap_lock_tick = heap_lock_tick
        self.sleeper = self.clock.Sleeper()
        self._last = self.clock.ticks()
        self._lines = []
        self.assembler = link.LineAssembler()
        self._link_reset = link.encode({"s": None, "ok": False, "e": {"code": "LINK_RESET", "msg": "link reset after an internal error"}})
        self.boot_mem = 0
        self.min_free = 1 << 30  # lowest gc.mem_free() seen, garbage included (GC runs at 0)
        self.peak_live = 0  # highest live heap right after a request, its reply still held
        self.heap_used = 0  # live heap after the last request (or boot)
        self.heap_total = 0  # what MicroPython gives Python, counted once at boot
        self.calibrated = board.calibrated_at_build
        self.cal_day = None
        self.refill_day = None
        self.selftest = []  # failures found at boot
        self.tasks = []
        self._out = None
        self._unsound = False  # the self-test found the saved state unusable
        self._restored = False  # boot() has restored the saved state (or found none)
        self.log = None
        self.history = None
        self.store = None
        self.auth = None
        self._save_due = persist.SAVE_EVERY_MS
        self._minute = _MINUTE_MS
        self._dirty = False
        self._hours = None
        self._outage_from = None  # (day, ms) the pump was last alive, while the outage is unmeasured
        self.commands = Commands(self)
        self.protocol = Protocol(self.commands.table(), authorise=self.commands.authorise)
        self.supervisor = Supervisor(board, ("control", "link"))
        self.journal = Journal(board.nvram) if board.nvram is not None else None

    # ---- boot -----------------------------------------------------------------------------
    def boot(self):
        """Self-test, restore, log the reset cause, resume therapy for the current time."""
        b = self.board
        root = b.storage_root
        cause = b.reset_cause()
        state = None
        if root:
            from services.storage import StateStore
            from services.eventlog import EventLog
            from services.history import History
            from services.auth import Auth
            try:
                self.log = EventLog(root + "/log")
            except Exception as e:
                self.selftest.append("event log unreadable: %r" % (e,))
            try:
                self.history = History(root + "/hist")
                self._hours = persist.HourAccumulator(self.history)
            except Exception as e:
                self.selftest.append("history unreadable: %r" % (e,))
            try:
                self.auth = Auth(root, b.device_id)
            except Exception as e:
                self.selftest.append("authentication store unreadable: %r" % (e,))
            try:
                self.store = StateStore(root + "/state")
                state = self.store.load()
                if self.store.status == "corrupt":
                    self.selftest.append("state checksum bad: no usable copy")
                elif self.store.status == "recovered":
                    self.alarms.raise_alarm("MEMORY_ERROR", 0)
            except Exception as e:
                self.selftest.append("state unreadable: %r" % (e,))
            if self.log is not None and self.log.corrupt:
                self.alarms.raise_alarm("MEMORY_ERROR", 0)
        if b.lost_data:
            self.selftest.append("storage unreadable: the flash held data littlefs could not mount")
        try:
            LIBRARY.verify()
        except Exception as e:
            self.selftest.append("drug library integrity: %s" % (e,))
        was = None
        if state is not None:
            try:
                was, why = persist.restore(self, state)
            except Exception as e:
                self.selftest.append("saved state unusable: %r" % (e,))
                was = None
            if was is not None and self.journal is not None:
                rec = self.journal.read()
                if rec is not None:
                    jw = self.journal.apply(self.pump, rec)
                    if jw is not None:
                        state["wall"] = [jw[0], jw[1]]  # the last moment the pump was known alive
        elif b.initial_fill_ul and not self.selftest:
            self.pump.reservoir.fill(b.initial_fill_ul)  # a fresh bench starts filled
        self._restored = True  # from here on a save keeps what was restored
        if not self.calibrated:
            self.selftest.append("no calibration stored")
        try:
            check_calibration(self.pump.pl_per_step)  # the core's range, as a command is held to
        except Refusal:
            self.selftest.append("calibration out of range")
        w = self.clock.wall()
        if w is not None:
            self.pump.set_wall(w[0], w[1])
            if self._hours is not None:
                self._hours.start(self.pump.day * 24 + self.pump.ms // _HOUR_MS, self.pump)
        self.event("power_on", {"cause": cause, "fw": VERSION, "selftest": self.selftest[:3]})
        if cause == "watchdog":
            self.alarms.raise_alarm("WATCHDOG_RESET", 0)
            self.alarms.clear("WATCHDOG_RESET", 0)  # latched until acknowledged
        # An uncalibrated pump only refuses therapy (commands check it); the rest is unsound.
        hard = [f for f in self.selftest if f != "no calibration stored"]
        if hard:
            self._unsound = True
            # Unsound state: the motor stays stopped and a high-priority alarm sounds.
            self.pump.stop("self-test failed")
            self.alarms.raise_alarm("SELF_TEST_FAILED", 0)
            if any("state" in f for f in self.selftest):
                self.alarms.raise_alarm("MEMORY_CRITICAL", 0)
            return
        if w is None:
            self.alarms.raise_alarm("CLOCK_NOT_SET", 0)
        if was == RUNNING and self.pump.program is not None:
            self._log_outage(state)
            try:
                self.pump.resume()  # at the programmed rate for now: never a catch-up
            except Refusal as e:
                self.pump.stop(e.msg)
        elif was == STOPPED and self.pump.program is not None:
            self.pump.stop(state.get("stop_reason") or "stopped before the reset")
        if state and state.get("bolus"):
            kind, left = state["bolus"]
            # A bolus cut by the reset is not resumed (no catch-up); what it did not give is logged.
            self.event("bolus", {"kind": kind, "outcome": "interrupted", "left_ug": left})

    def _log_outage(self, state):
        """Delivery missed while the pump was down is logged, never caught up."""
        w = self.clock.wall()
        saved = state.get("wall") if state else None
        prog = self.pump.program
        if w is None or saved is None or prog is None:
            self.event("under_delivery", {"down_ms": None, "why": "outage of unknown length (clock not set)"})
            if saved is not None and prog is not None:
                # A Pico has no battery-backed clock: the outage is measured once the programmer
                # sets the time (settle_outage), from the last moment the pump was known alive.
                self._outage_from = (saved[0], saved[1])
            return
        self._log_missed(saved, (w[0] - saved[0]) * _DAY_MS + (w[1] - saved[1]), None)

    def _log_missed(self, saved, down, how):
        if down <= 0:
            return
        ug = self.pump.program.rate_at(saved[1] // _MINUTE_MS) * (down // 1000) // 86_400
        data = {"down_s": down // 1000, "missed_ug": ug, "caught_up": False}
        if how:
            data["measured"] = how
        self.event("under_delivery", data)

    def settle_outage(self, day, ms):
        """The clock was just set: log the outage that boot could not measure, if any."""
        saved = self._outage_from
        self._outage_from = None
        if saved is None or self.pump.program is None:
            return
        booted = (day - saved[0]) * _DAY_MS + (ms - saved[1]) - self.pump.up_s * 1000
        if booted <= 0:
            # The clock now set is earlier than the pump's last record (its clock had run fast,
            # or the programmer's is slow): the outage cannot be measured, and saying so beats
            # a silent nothing.
            self.event("under_delivery", {"down_ms": None, "why": "outage not measurable: the clock was set %d s before the pump's last record" % (-booted // 1000)})
            return
        self._log_missed(saved, booted, "when the clock was set")

    # ---- events, saving ------------------------------------------------------------------
    def event(self, kind, data=None):
        """Append to the event log (wall time and uptime); returns the sequence number."""
        if self.log is None:
            return 0
        w = self.clock.wall()
        wall = (w[0], w[1]) if w else None
        try:
            return self.log.append(kind, data, wall, self.pump.up_s)
        except ValueError:
            # A record too big or of a shape the log refuses: keep the fact, drop the detail.
            try:
                return self.log.append(kind, {"truncated": True}, wall, self.pump.up_s)
            except Exception:
                pass
        except Exception:
            pass
        self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)  # the flash refused a write
        return 0

    def save(self):
        if self.store is None or self._unsound or not self._restored:
            # Never overwrite a state the self-test could not use, nor one not yet restored: a
            # Ctrl-C during boot (mpremote right after a reset) once saved a blank state over it.
            return
        self._journal()  # journal and state agree at every save
        try:
            self.store.save(persist.snapshot(self))
        except Exception:
            self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)
        self._save_due = persist.SAVE_EVERY_MS
        self._dirty = False

    def changed(self, save=True):
        """A command changed the schedule or the state: save, and wake the control loop."""
        if save:
            self.save()
        self.sleeper.kick()

    # ---- time and therapy -------------------------------------------------------------------
    def sync(self):
        """Account for the time since the last call: dose, motor, alarm timers, lights."""
        now = self.clock.ticks()
        dt = self.clock.diff(now, self._last)
        if dt < 0:
            dt = 0
        self._last = now
        if self.heap_lock_tick:
            micropython.heap_lock()
            try:
                steps = self.pump.tick(dt)
                self.alarms.tick(dt)
                self.annunciator.advance(dt)
            finally:
                micropython.heap_unlock()
        else:
            steps = self.pump.tick(dt)
            self.alarms.tick(dt)
            self.annunciator.advance(dt)
        if steps:
            self.board.motor.move(steps)
            self._journal(steps)
            if self.board.motor.stalled():
                self.occlusion()
        flags = self.pump.take_flags()
        if flags:
            self._conditions(flags)
        self._save_due -= dt
        self._minute -= dt
        if self._minute <= 0:
            self._minute = _MINUTE_MS
            self.housekeeping()
        # Pins first: a log or state write to flash takes tens of ms on a Pico, and an alarm's
        # first pulse must not wait for it.
        self.annunciate()
        if self._save_due <= 0:
            self.save()
        self._drain_alarm_events()

    def _journal(self, moved=-1):
        """Write the step journal: always at a save and at the minute heartbeat (moved < 0),
        after a move of `moved` steps only when the store's write policy says it is due."""
        j = self.journal
        if j is None or self._unsound:
            return
        if moved >= 0 and not j.due(moved, self.clock):
            return
        try:
            j.write(self.pump, self.clock.wall(), self.clock)
        except Exception:
            self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)

    def occlusion(self):
        """The head is turning but the line is blocked: stop the motor, alarm high."""
        if self.pump.state == RUNNING:
            self.pump.stop("occlusion")
        self.board.motor.enable(False)
        if self.alarms.raise_alarm("OCCLUSION", self.pump.up_s):
            self.event("occlusion", {"delivered_steps": self.pump.steps_total.value()})
            self.save()

    def _conditions(self, flags):
        now = self.pump.up_s
        if flags & FLAG_EMPTY:
            if self.alarms.raise_alarm("RESERVOIR_EMPTY", now):
                self.save()
        if flags & FLAG_LOW:
            self.alarms.raise_alarm("RESERVOIR_LOW", now)
        if flags & FLAG_LIMIT24:
            self.alarms.raise_alarm("DOSE_LIMIT_24H", now)
        if flags & FLAG_STOPPED_LONG:
            self.alarms.raise_alarm("STOPPED_TOO_LONG", now)
        if flags & FLAG_PERIODIC_STARTED:
            self.event("bolus", {"kind": "periodic", "outcome": "started"})
        if flags & FLAG_PERIODIC_REFUSED:
            self.event("bolus", {"kind": "periodic", "outcome": "refused_limit", "why": "24 h maximum"})
        if flags & FLAG_PERIODIC_SKIPPED:
            self.event("bolus", {"kind": "periodic", "outcome": "skipped", "why": "another bolus was running"})
        if flags & FLAG_BRIDGE_DONE:
            self.event("bridge_done", {"conc": self.pump.conv.conc})
        if flags & FLAG_PRIME_DONE:
            self.event("prime_done", {})
        if flags & FLAG_CALIBRATION_RUN_DONE:
            self.event("calibration_run_done", {})

    def _heap_mark(self):
        # gc.mem_free() allocates nothing but scans the whole heap (9 ms on a Pico): sampled
        # at boot and each minute, never per control tick nor per request.
        f = gc.mem_free()
        if f < self.min_free:
            self.min_free = f

    def _after_request(self):
        """Collect while the request's reply is still held: its live heap is the peak we
        report, and the collection happens now, between requests, rather than when the heap
        runs out in the middle of something that is due. One collection and one count (about
        30 ms on a Pico); status reports these figures instead of scanning the heap again."""
        gc.collect()
        u = gc.mem_alloc()
        self.heap_used = u
        if u > self.peak_live:
            self.peak_live = u

    def restart_hours(self):
        """The wall clock was set: hourly accounting starts again at the new time (an hour
        record never spans a clock change)."""
        if self._hours is not None:
            self._hours.hour = None

    def housekeeping(self):
        """Once a minute: conditions that are measured rather than counted, and history."""
        self._heap_mark()
        now = self.pump.up_s
        self._journal()  # a heartbeat: an outage is measured from the last minute alive
        mv = self.board.battery_mv()
        if mv <= BATTERY_EOS_MV:
            if self.pump.state == RUNNING:
                self.pump.stop("battery end of service")
            if self.alarms.raise_alarm("BATTERY_EOS", now):
                self.event("battery", {"mv": mv, "level": "end_of_service"})
                self.save()
        elif mv > BATTERY_EOS_MV + BATTERY_HYST_MV:
            self.alarms.clear("BATTERY_EOS", now)  # a new cell: the clinician may resume
        if BATTERY_EOS_MV < mv <= BATTERY_ERI_MV:  # at end of service EOS says it all
            if self.alarms.raise_alarm("BATTERY_ERI", now):
                self.event("battery", {"mv": mv, "level": "elective_replacement"})
        elif mv > BATTERY_ERI_MV + BATTERY_HYST_MV:
            self.alarms.clear("BATTERY_ERI", now)
        if self.auth is not None and self.auth.locked_ms(self.clock.ticks()) == 0:
            self.alarms.clear("AUTH_LOCKED", now)
        w = self.clock.wall()
        if w is None:
            self.alarms.raise_alarm("CLOCK_NOT_SET", now)
        else:
            self.alarms.clear("CLOCK_NOT_SET", now)
            if self.refill_day is not None and w[0] >= self.refill_day:
                self.alarms.raise_alarm("REFILL_DUE", now)
            if self._hours is not None and self.pump.clock_set:
                hour = self.pump.day * 24 + self.pump.ms // _HOUR_MS
                prev = self._hours.hour
                if prev is not None and prev != hour:
                    png = persist.programmed_ng_for_hour(self.pump.program, prev % 24)
                    self._hours.flush(hour, self.pump, png)
                elif prev is None:
                    self._hours.start(hour, self.pump)
        if self.pump.state == RUNNING:
            self.alarms.clear("STOPPED_TOO_LONG", now)
        if not self.pump.reservoir.low():
            self.alarms.clear("RESERVOIR_LOW", now)
        if self.board.motor.stalled():
            if self.pump.state == RUNNING:
                self.occlusion()
        elif self.alarms.state("OCCLUSION") is not None:
            # The head moves freely again: the cause is gone (the alarm stays latched until
            # acknowledged), and the clinician may resume.
            self.alarms.clear("OCCLUSION", now)

    def _drain_alarm_events(self):
        evs = self.alarms.drain_events()
        for e in evs:
            self.event("alarm", e)

    def annunciate(self):
        """Drive the buzzer and LEDs from the alarms now (the control loop calls it at each
        pattern edge; the alarm test calls it so its first pulse is not late)."""
        a = self.annunciator
        a.update(self.alarms.highest(), self.alarms.audio_paused())
        out = (a.buzzer_hz, a.red, a.yellow)
        if out == self._out:
            return  # drive the pins only on a change
        self._out = out
        b = self.board
        if a.buzzer_hz:
            b.buzzer.tone(a.buzzer_hz)
        else:
            b.buzzer.off()
        b.leds.set(a.red, a.yellow)

    def next_wake(self):
        w = self.pump.next_wake_ms()
        n = self.annunciator.ms_to_next_change()
        if n is not None and 0 <= n < w:
            w = n
        p = self.alarms.pause_remaining_ms()
        if 0 < p < w:
            w = p
        if 0 < self._minute < w:
            w = self._minute
        if 0 < self._save_due < w:
            w = self._save_due
        return w

    async def control_loop(self):
        sup = self.supervisor
        while True:
            try:
                self.sync()
            except Exception as e:  # fail safe: a fault in the tick stops the motor, loudly
                self.pump.stop("internal error")
                self.board.motor.enable(False)
                self.alarms.raise_alarm("SELF_TEST_FAILED", self.pump.up_s)
                self.event("internal_error", {"where": "control", "error": repr(e)[:60]})
            sup.check_in(0)
            await self.clock.wait(self.next_wake(), self.sleeper)

    # ---- the programmer link ------------------------------------------------------------------
    async def link_loop(self):
        port = self.board.port
        port.write(b"\r\n" + BANNER.encode() + b"\r\n")
        while True:
            try:
                data = await port.read()
                self.supervisor.check_in(1)
                lines = self.assembler.feed(data, self._lines)
                while lines:
                    line = lines.pop(0)
                    self.sync()
                    reply = self.protocol.handle_line(line)
                    self._after_request()
                    if reply:
                        port.write(reply)
            except Exception:  # the link restarts; therapy never sees this
                # Recovery allocates nothing: it may be running because the heap is exhausted.
                del self._lines[:]
                self.assembler.reset()
                try:
                    port.write(self._link_reset)
                except Exception:
                    pass
                await asyncio.sleep_ms(10)

    async def button_loop(self):
        flag = self.board.button.pressed_flag
        while True:
            await flag.wait()
            self.sync()
            self.commands.patient_request("button")
            self.changed()


async def main(app):
    app.board.motor.enable(False)
    app.boot()
    app.save()
    tasks = [asyncio.create_task(app.control_loop()), asyncio.create_task(app.link_loop()),
             asyncio.create_task(app.supervisor.run(app))]
    if app.board.button is not None:
        tasks.append(asyncio.create_task(app.button_loop()))
    for coro in app.board.tasks(app):
        tasks.append(asyncio.create_task(coro))
    app.tasks = tasks
    app._heap_mark()  # a real figure from the start: the minute's samples follow
    gc.collect()
    app.boot_mem = app.heap_used = gc.mem_alloc()
    app.heap_total = app.boot_mem + gc.mem_free()
    await asyncio.gather(*tasks)


def run(board, heap_lock_tick=False):
    buf = getattr(micropython, "alloc_emergency_exception_buf", None)
    if buf:  # the Pico has it; the unix port does not need it
        buf(100)
    app = App(board, heap_lock_tick=heap_lock_tick)
    try:
        asyncio.run(main(app))
    except KeyboardInterrupt:
        # A person interrupted the firmware (mpremote, Thonny): they have the REPL now, so the
        # watchdog must not reset the board under them. Any other exception keeps it running:
        # the board resets and therapy resumes.
        board.watchdog.release()
        raise
    finally:
        # Ctrl-C, a crash, a reset or the bench stopping: motor disabled, state saved.
        board.shutdown()
        try:
            app.save()
        except Exception:
            pass
    return app
