# The pump application: wiring and loops around the board it is handed, on asyncio. Tasks: the
# control loop (time, dose, motor batches, alarms, annunciation, saving), the link loop (frames
# from the programmer: it may fail in any way without touching therapy, and restarts), the
# supervisor (watchdog), the stall watch and the button. Boot is services/startup.py; conditions
# services/housekeeping.py; the motor's batches services/motor_batch.py.
#
# The control loop wakes only when something is due (docs/architecture.md): the end of a motor
# batch, a profile boundary, a bolus's end, an alarm pattern edge, the end of an audio pause, and
# the quarter-hour check of measured conditions, history and saving. A stall wakes it at once.
import asyncio
import micropython

from version import BANNER
from core.pump import Pump, RUNNING
from core.alarms import AlarmManager
from core.annunciation import Annunciator
from core.records import CalibrationRecord, RefillPlan
from core.flow import FlowWatch
from core.usage import BolusUsage
from services import link, persist, startup, housekeeping
from services.heapwatch import HeapWatch
from services.protocol import Protocol
from services.commands import Commands, CommandContext
from services.supervisor import Supervisor
from services.journal import Journal
from services.motor_batch import MotorBatch
from services.refusals import RefusalLog

_CHECK_MS = 900_000  # measured conditions, history and saves: on the pump's quarter hours
# Refused patient requests are counted in the bolus usage (core/usage.py), part of the saved
# state; a flood of them saves it at most this often (docs/persistence.md: the loss bound).
_USAGE_SAVE_MS = 60_000


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
        self.heap = HeapWatch()
        self.calibration = CalibrationRecord(board.calibrated_at_build)
        self.refill = RefillPlan()
        self.stores = startup.Stores()  # log, history, state, keys: opened by boot()
        self.outage = startup.Outage(self.pump, self.clock, self._log)
        self.tasks = []
        self._out = None
        self.unsound = False  # the self-test found the saved state unusable
        self.restored = False  # boot() has restored the saved state (or found none)
        self._save_due = persist.SAVE_EVERY_MS
        self._check = _CHECK_MS
        self.batch = MotorBatch(board.motor)
        self.flow = FlowWatch()  # measured delivery, where the board has a scale (housekeeping.flow)
        self.usage = BolusUsage()
        self.refusals = RefusalLog(self.clock, self.refusal_event)
        # The clinician's refused requests go to the event log, budgeted the same way: a buggy
        # script with the key cannot flush the therapy records out with its refusals either.
        self.refused = RefusalLog(self.clock, self._log)
        self._saved_at = None  # ticks of the last state save
        self._usage_since = None  # ticks the usage counts first differed from the saved state
        self.commands = Commands(CommandContext(
            self.pump, self.alarms, self.clock, board.motor, board.device_id, board.name, self.stores,
            self.calibration, self.refill, self.heap, self.annunciator, event=self._log,
            changed=self.changed, sync=self.sync, annunciate=self.annunciate, clock_set=self.clock_set,
            batch=self.batch, refusals=self.refusals, refused=self.refused, usage=self.usage,
            usage_noted=self.usage_noted, measure=self.measure,
            battery=board.battery_mv))
        self.protocol = Protocol(self.commands.table(), authorise=self.commands.authorise,
                                 report=self.commands.report, reads=Commands.READS,
                                 short_of_memory=self.commands.short_of_memory)
        self.supervisor = Supervisor(board, ("control", "link"))
        self.journal = Journal(board.nvram) if board.nvram is not None else None

    def boot(self):
        """Self-test, restore, log the reset cause, resume therapy (services/startup.py)."""
        self.unsound = startup.boot(self)
        # The first check on the pump's next quarter hour, as every later one: an hour's history
        # record then closes on the hour after a reboot too (not up to 15 min into the next).
        self._check = self._to_quarter()

    def _to_quarter(self):
        """ms from the pump's clock now to its next quarter hour (1..15 min), where checks fall."""
        return _CHECK_MS - self.pump.ms % _CHECK_MS

    # ---- events, saving ------------------------------------------------------------------
    def event(self, kind, data=None):
        """Append to the event log (wall time and uptime); returns the sequence number."""
        log = self.stores.log
        if log is None:
            return 0
        w = self.clock.wall()
        wall = (w[0], w[1]) if w else None
        try:
            return log.append(kind, data, wall, self.pump.up_s)
        except ValueError:
            # A record too big or of a shape the log refuses: keep the fact, drop the detail.
            try:
                return log.append(kind, {"truncated": True}, wall, self.pump.up_s)
            except Exception:
                pass
        except Exception:
            pass
        self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)  # the flash refused a write
        return 0

    def refusal_event(self, kind, data=None):
        """Append to the refusals' ring (services/refusals.py decides what is written): what
        anyone without the clinician's key was refused never takes a place in the event log."""
        ring = self.stores.refusals
        if ring is None:
            return 0
        w = self.clock.wall()
        try:
            return ring.append(kind, data, (w[0], w[1]) if w else None, self.pump.up_s)
        except Exception:
            # Losing a refusal record is not worth an alarm that a flood could then raise at
            # will; the counts in identify and the usage report still hold.
            return 0

    def usage_noted(self, delivered):
        """A patient request was counted in the bolus usage: save now when it was delivered
        or when no save came in the last _USAGE_SAVE_MS, else within that (a flood of refused
        requests saves the state at most once a minute)."""
        now = self.clock.ticks()
        if delivered or self._saved_at is None or self.clock.diff(now, self._saved_at) >= _USAGE_SAVE_MS:
            self.changed()
            return
        if self._usage_since is None:
            self._usage_since = now
        self.changed(save=False)

    def _log(self, kind, data=None):
        # Commands and Outage log through here, so App.event is looked up at each record: whatever
        # replaces it (a test's list of events) sees their records too.
        return self.event(kind, data)

    def save(self):
        store = self.stores.state
        if store is None or self.unsound or not self.restored:
            # Never overwrite a state the self-test could not use, nor one not yet restored: a
            # Ctrl-C during boot (mpremote right after a reset) once saved a blank state over it.
            return
        self.journal_write()  # journal and state agree at every save
        try:
            store.save(persist.snapshot(self))
        except Exception:
            self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)
        self._save_due = persist.SAVE_EVERY_MS
        self._saved_at = self.clock.ticks()
        self._usage_since = None

    def changed(self, save=True):
        """A command changed the schedule or the state: save, and wake the control loop."""
        if self.pump.state != RUNNING and self.board.motor.left():
            self.motor_abort()  # a stop stops the head now, not when the control loop next runs
        if save:
            self.save()
        self.sleeper.kick()

    def clock_set(self, day, ms):
        """The wall clock was just set: hourly accounting starts again at the new time (an hour
        record never spans a clock change), an outage boot could not measure is logged, and the
        next check comes on the new clock's quarter hour if that is sooner (never later: a
        script setting the clock every few minutes must not hold the checks off)."""
        if self.stores.hours is not None:
            self.stores.hours.hour = None
        self.outage.settle(day, ms)
        q = self._to_quarter()
        if q < self._check:
            self._check = q

    # ---- time and therapy -------------------------------------------------------------------
    def sync(self):
        """Account for the time since the last call: dose, motor, alarm timers, lights."""
        now = self.clock.ticks()
        dt = self.clock.diff(now, self._last)
        if dt < 0:
            dt = 0
        self._last = now
        lock = self.heap_lock_tick  # tests prove the tick allocates nothing
        if lock:
            micropython.heap_lock()
        try:
            steps = self.pump.tick(dt)
            self.alarms.tick(dt)
            self.annunciator.advance(dt)
        finally:
            if lock:
                micropython.heap_unlock()
        self.batch.counted(steps, dt)
        if steps:
            self.journal_write(steps)  # what was counted survives a power cut (store's policy)
        flags = self.pump.take_flags()
        if flags:
            self.apply_flags(flags)
        self._save_due -= dt
        self._check -= dt
        if self._check <= 0:
            # Back on the pump's quarter-hour grid, whatever made this wake late.
            self._check = self._to_quarter()
            self.housekeeping()
        # Pins first: a log or state write to flash takes tens of ms on a Pico, and an alarm's
        # first pulse must not wait for it.
        self.annunciate()
        if self._save_due <= 0 or (self._usage_since is not None
                                   and self.clock.diff(now, self._usage_since) >= _USAGE_SAVE_MS):
            self.save()
        self.refusals.poll()
        self.refused.poll()
        for e in self.alarms.drain_events():
            self.event("alarm", e)

    def plan(self):
        """At a control-loop wake: the motor's next batch (services/motor_batch.py)."""
        self.batch.plan(self.pump)

    def motor_abort(self):
        """Stop the motor at once (occlusion, an internal error); what it had left is taken back."""
        self.batch.abort()

    def journal_write(self, moved=-1, heartbeat=False):
        """Write the step journal: always at a save and at the quarter-hour check (moved < 0),
        after the tick counted `moved` steps only when the store's write policy says it is due.
        The check's heartbeat is skipped when this same wake already wrote a record (the tick
        counted steps and the store took them): it would write the same counters again."""
        j = self.journal
        if j is None or self.unsound:
            return
        if moved >= 0 and not j.due(moved, self.clock):
            return
        if heartbeat and j.pending == 0 and j.at == self.clock.ticks():
            return
        try:
            j.write(self.pump, self.clock.wall(), self.clock)
        except Exception:
            self.alarms.raise_alarm("MEMORY_ERROR", self.pump.up_s)

    def apply_flags(self, flags):
        """Raise and log what the pump's flags mean (services/housekeeping.py)."""
        housekeeping.apply_flags(self, flags)

    def measure(self):
        """The battery read now (a command that depends on it, like resume, must not act on a
        reading up to a quarter hour old)."""
        housekeeping.battery_now(self)

    def housekeeping(self):
        """Every quarter hour: conditions that are measured rather than counted, and history."""
        housekeeping.check(self)

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
        """ms until something is due: the batch's end, the pump's own events, a pattern edge,
        an audio pause's end, the quarter-hour check (saves ride on it)."""
        w = self.pump.next_wake_ms()
        b = self.batch.left_ms
        if 0 < b < w:
            w = b
        n = self.annunciator.ms_to_next_change()
        if n is not None and 0 <= n < w:
            w = n
        p = self.alarms.pause_remaining_ms()
        if 0 < p < w:
            w = p
        if 0 < self._check < w:
            w = self._check
        for r in (self.refusals, self.refused):
            f = r.ms_to_flush()
            if 0 <= f < w:
                w = f if f > 0 else 1
        if self._usage_since is not None:
            u = _USAGE_SAVE_MS - self.clock.diff(self.clock.ticks(), self._usage_since)
            u = u if u > 0 else 1
            if u < w:
                w = u
        return w

    # ---- the loops ------------------------------------------------------------------------------
    async def control_loop(self):
        sup = self.supervisor
        batch = self.batch
        while True:
            try:
                self.sync()
                self.plan()
            except Exception as e:  # fail safe: a fault in the tick stops the motor, loudly
                try:
                    self.pump.stop("internal error")
                    self.board.motor.enable(False)
                    self.batch.left_ms = 0
                    self.alarms.raise_alarm("SELF_TEST_FAILED", self.pump.up_s)
                    self.event("internal_error", {"where": "control", "error": repr(e)[:60]})
                except Exception:
                    pass  # the heap may be what failed: the loop must go on regardless
            batch.wakes += 1
            w = self.next_wake()
            sup.expect(w)
            await self.clock.wait(w, self.sleeper)

    async def stall_loop(self):
        """The driver's stall line changed (DIAG, the bench's pressure): an occlusion now, not
        at the batch's end. The quarter-hour check looks too, should a flag ever be missed."""
        flag = self.board.motor.stall_flag
        while True:
            await flag.wait()
            try:
                self.sync()
                housekeeping.stall(self)
            except Exception:
                pass  # the quarter-hour check looks again; this task must not die

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
                    self.heap.after_request()
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
            self.commands.patient_request("button")  # it saves and wakes the control loop


async def main(app):
    app.board.motor.enable(False)
    app.boot()
    app.save()
    tasks = [asyncio.create_task(app.control_loop()), asyncio.create_task(app.link_loop()),
             asyncio.create_task(app.supervisor.run(app)), asyncio.create_task(app.stall_loop())]
    if app.board.button is not None:
        tasks.append(asyncio.create_task(app.button_loop()))
    for coro in app.board.tasks(app):
        tasks.append(asyncio.create_task(coro))
    app.tasks = tasks
    app.heap.at_boot()
    await asyncio.gather(*tasks)


def shutdown(app, board):
    """The one way the firmware stops (Ctrl-C, a crash, a reset, the bench stopping): the board
    leaves its hardware safe (motor disabled, buzzer off), then the state is saved. `app` may be
    None when the firmware never got as far as building one."""
    if app is not None:
        try:
            # Count the time since the last wake first: the head has pulsed the batch's steps up
            # to this moment and stops in the next, and the saved state must say so.
            app.sync()
        except BaseException:
            pass
    try:
        board.shutdown()
    finally:
        if app is not None:
            try:
                app.refusals.flush()  # counted refusals are written, not lost with the RAM
                app.refused.flush()
            except Exception:
                pass
            try:
                app.save()
            except Exception:
                pass


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
        shutdown(app, board)
    return app
