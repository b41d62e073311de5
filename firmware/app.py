# The pump application: builds the core and services around the board it is handed and runs
# them on asyncio. Two tasks: the control loop (time, dose, motor, alarms, annunciation) and the
# link loop (frames from the programmer). The link loop can fail in any way without touching
# therapy: its exceptions are caught and the link restarts.
import asyncio
import gc
import micropython

from version import VERSION, BANNER
from core.pump import Pump, PumpError, FLAG_EMPTY, FLAG_LOW, RUNNING
from core import program as programs
from core.druglib import LIBRARY
from core.alarms import AlarmManager
from core.annunciation import Annunciator
from services import link
from services.protocol import Protocol, CommandError, arg

_DAY_MS = 86_400_000


class App:
    def __init__(self, board, heap_lock_tick=False):
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
        self.protocol = Protocol(self._handlers())
        self.boot_mem = 0
        if board.initial_fill_ul:
            self.pump.reservoir.fill(board.initial_fill_ul)

    # ---- time and therapy -------------------------------------------------------------
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
        flags = self.pump.take_flags()
        if flags:
            self._conditions(flags)
        self._annunciate()

    def _conditions(self, flags):
        now = self.pump.up_s
        if flags & FLAG_EMPTY:
            self.alarms.raise_alarm("RESERVOIR_EMPTY", now)
        if flags & FLAG_LOW:
            self.alarms.raise_alarm("RESERVOIR_LOW", now)

    def _annunciate(self):
        a = self.annunciator
        a.update(self.alarms.highest(), self.alarms.audio_paused())
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
        return w

    async def control_loop(self):
        while True:
            self.sync()
            await self.clock.wait(self.next_wake(), self.sleeper)

    def changed(self):
        """Something changed the schedule: wake the control loop to re-plan."""
        self.sleeper.kick()

    # ---- the programmer link ----------------------------------------------------------
    async def link_loop(self):
        port = self.board.port
        port.write(b"\r\n" + BANNER.encode() + b"\r\n")
        while True:
            try:
                data = await port.read()
                lines = self.assembler.feed(data, self._lines)
                while lines:
                    line = lines.pop(0)
                    self.sync()
                    reply = self.protocol.handle_line(line)
                    if reply:
                        port.write(reply)
                    self.changed()
            except Exception as e:  # the link restarts; therapy never sees this
                self._lines = []
                self.assembler = link.LineAssembler()
                try:
                    port.write(link.encode({"s": None, "ok": False, "e": {"code": "LINK_RESET", "msg": "link reset after an internal error"}}))
                except Exception:
                    pass
                await asyncio.sleep_ms(10)

    def _handlers(self):
        return {
            "hello": self.cmd_identify,
            "identify": self.cmd_identify,
            "status": self.cmd_status,
            "program_set": self.cmd_program_set,
            "program_check": self.cmd_program_check,
            "program_show": self.cmd_program_show,
            "stop": self.cmd_stop,
            "resume": self.cmd_resume,
            "time_set": self.cmd_time_set,
            "alarms": self.cmd_alarms,
            "alarms_ack": self.cmd_alarms_ack,
            "alarms_pause": self.cmd_alarms_pause,
            "drugs": self.cmd_drugs,
        }

    def cmd_identify(self, args):
        return {
            "device": "bench-itb-pump",
            "device_id": self.board.device_id,
            "board": self.board.name,
            "firmware_version": VERSION,
            "protocol": 1,
            "banner": BANNER,
        }

    def cmd_status(self, args):
        st = self.pump.status()
        st["alarms"] = self.alarms.active()
        st["firmware_version"] = VERSION
        st["wall"] = [self.pump.day, self.pump.ms] if self.pump.clock_set else None
        gc.collect()
        st["heap_free"] = gc.mem_free()
        st["heap_used"] = gc.mem_alloc()
        return st

    def _parse_program(self, args):
        d = arg(args, "program", dict)
        return programs.parse(d, LIBRARY)

    def cmd_program_check(self, args):
        new = self._parse_program(args)
        old = self.pump.program
        return {"old": old.to_dict() if old else None, "new": new.to_dict()}

    def cmd_program_set(self, args):
        new = self._parse_program(args)
        old = self.pump.program
        self.pump.set_program(new)  # whole or not at all: raises before changing anything
        return {"old": old.to_dict() if old else None, "new": new.to_dict(), "overrides_used": list(new.overrides_used)}

    def cmd_program_show(self, args):
        p = self.pump.program
        return {"program": p.to_dict() if p else None, "state": self.pump.state}

    def cmd_stop(self, args):
        self.pump.stop("stopped by programmer")
        return {"state": self.pump.state}

    def cmd_resume(self, args):
        self.pump.resume()
        return {"state": self.pump.state}

    def cmd_time_set(self, args):
        day = arg(args, "day", int, 0, 1 << 20)
        ms = arg(args, "ms", int, 0, _DAY_MS - 1)
        self.pump.set_wall(day, ms)
        self.clock.set_wall(day, ms)
        return {"wall": [day, ms]}

    def cmd_alarms(self, args):
        return {"active": self.alarms.active(), "history": self.alarms.history(20), "audio_paused_ms": self.alarms.pause_remaining_ms()}

    def cmd_alarms_ack(self, args):
        code = arg(args, "code", str)
        try:
            done = self.alarms.ack(code, self.pump.up_s)
        except ValueError as e:
            raise CommandError("BAD_ARGS", str(e))
        return {"acknowledged": done}

    def cmd_alarms_pause(self, args):
        ms = arg(args, "ms", int, 1, 900_000)
        try:
            self.alarms.pause_audio(ms, self.pump.up_s)
        except ValueError as e:
            raise CommandError("RANGE", str(e))
        return {"audio_paused_ms": ms}

    def cmd_drugs(self, args):
        return {"drugs": LIBRARY.to_list()}


async def _main(app):
    app.board.motor.enable(False)
    t1 = asyncio.create_task(app.control_loop())
    t2 = asyncio.create_task(app.link_loop())
    extra = getattr(app.board, "tasks", None)
    if extra:
        for coro in extra(app):
            asyncio.create_task(coro)
    gc.collect()
    app.boot_mem = gc.mem_alloc()
    await asyncio.gather(t1, t2)


def run(board, heap_lock_tick=False):
    buf = getattr(micropython, "alloc_emergency_exception_buf", None)
    if buf:  # the Pico has it; the unix port does not need it
        buf(100)
    app = App(board, heap_lock_tick=heap_lock_tick)
    try:
        asyncio.run(_main(app))
    finally:
        # Ctrl-C, a crash or the bench stopping: leave the motor disabled.
        board.motor.enable(False)
        board.buzzer.off()
    return app
