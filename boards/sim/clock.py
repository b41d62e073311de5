# The virtual bench's clock. Three modes:
#   lockstep     virtual time moves only in advance(); every wake-up inside the advanced span
#                happens in order, and advance() returns once the firmware is idle again.
#   speed N      virtual time runs N times faster than the host's clock (N = 1: real time).
# ticks() wraps at 2**30 like the Pico's time.ticks_ms(), so the firmware's wrap handling is
# exercised on every long run.
import asyncio
import time

_PERIOD = 1 << 30
_HALF = 1 << 29
_DAY_MS = 86_400_000
# Speed mode: a wake later than this in virtual time means the bench is falling behind (at x3600
# one ms of the host's timer jitter is already 3.6 s of virtual time).
LATE_MS = 60_000


class Sleeper:
    def __init__(self, clock):
        self.clock = clock
        self.flag = asyncio.Event()
        self.deadline = None  # virtual ms, while waiting
        self.waiting = False

    def kick(self):
        self.flag.set()


class SimClock:
    def __init__(self, lockstep=True, speed=1, start_ms=0):
        self.lockstep = lockstep
        self.speed = speed
        self._v = start_ms  # virtual ms since the bench was created (a unix-port int)
        self._real0 = time.time_ns() // 1_000_000
        self._v0 = start_ms
        self._sleepers = []
        self._wall_base = None  # (virtual ms at set, day, ms of day)
        self.hang = False
        self.late_wakes = 0  # speed mode: wakes later than LATE_MS (the bench did not keep up)
        self.max_late_ms = 0

    # ---- what the firmware sees ----
    def now_ms(self):
        if self.lockstep:
            return self._v
        real = time.time_ns() // 1_000_000
        return self._v0 + (real - self._real0) * self.speed

    def ticks(self):
        return self.now_ms() % _PERIOD

    @staticmethod
    def diff(a, b):
        return ((a - b + _HALF) % _PERIOD) - _HALF

    def Sleeper(self):
        s = Sleeper(self)
        self._sleepers.append(s)
        return s

    async def wait(self, ms, sleeper):
        if ms < 0:
            ms = 0
        if self.hang and sleeper is self._sleepers[0]:
            # Fault injection: the first task (the firmware's control loop) hangs until the
            # fault is cleared (kick_all) or the watchdog resets the firmware.
            sleeper.waiting = True
            sleeper.deadline = None
            while self.hang:  # swallow every kick, so the bench still sees the firmware as idle
                sleeper.flag.clear()
                await sleeper.flag.wait()
            sleeper.waiting = False
            return
        if self.lockstep:
            sleeper.deadline = self._v + ms
            sleeper.waiting = True
            await sleeper.flag.wait()
            sleeper.flag.clear()
            sleeper.waiting = False
            sleeper.deadline = None
            return
        due = self.now_ms() + ms
        real = ms // self.speed
        if real > 0 and not sleeper.flag.is_set():
            try:
                await asyncio.wait_for_ms(sleeper.flag.wait(), real)
            except asyncio.TimeoutError:
                late = self.now_ms() - due
                if late > self.max_late_ms:
                    self.max_late_ms = late
                if late > LATE_MS:
                    self.late_wakes += 1
        else:
            await asyncio.sleep_ms(0)
        sleeper.flag.clear()

    def kick_all(self):
        """Wake every sleeper (the hang fault cleared: the control loop looks again)."""
        for s in self._sleepers:
            s.kick()

    def wall(self):
        if self._wall_base is None:
            return None
        v, day, ms = self._wall_base
        t = ms + (self.now_ms() - v)
        return day + t // _DAY_MS, t % _DAY_MS

    def set_wall(self, day, ms):
        self._wall_base = (self.now_ms(), day, ms)

    # ---- what the bench's control channel does ----
    def lose_wall(self):
        """The clock_loss fault: the wall clock is forgotten, as after a dead backup cell."""
        self._wall_base = None

    def forget_sleepers(self):
        """A firmware reset: its tasks and their timers are gone; new ones will register."""
        self._sleepers = []

    async def settle(self):
        """Yield until every sleeper is waiting again with its flag down (the firmware is idle),
        seen twice with a turn between: a task woken by something other than its sleeper (the
        stall flag set by the motor's task) runs in the turn after the one that woke it, and it
        must run at this instant, not whenever the next sleeper wakes."""
        quiet = 0
        for _ in range(100_000):
            await asyncio.sleep_ms(0)
            busy = False
            for s in self._sleepers:
                if not s.waiting or s.flag.is_set():
                    busy = True
                    break
            if busy:
                quiet = 0
            else:
                quiet += 1
                if quiet == 2:
                    return
        raise RuntimeError("firmware did not go idle")

    async def advance(self, ms, stop=None):
        """Lockstep: move virtual time ms forward, waking each sleeper at its deadline in order.
        `stop`, if given, is called after each wake once the firmware is idle again; when it
        returns true, time stops there (the event it looks for has just happened)."""
        if not self.lockstep:
            raise ValueError("advance needs a lockstep bench")
        await self.settle()
        target = self._v + ms
        while True:
            if stop is not None and stop():
                return self._v
            due = None
            for s in self._sleepers:
                if s.waiting and s.deadline is not None and (due is None or s.deadline < due):
                    due = s.deadline
            if due is None or due > target:
                self._v = target
                break
            if due > self._v:
                self._v = due
            for s in self._sleepers:
                if s.waiting and s.deadline is not None and s.deadline <= self._v:
                    s.flag.set()
            await self.settle()
        # Let the firmware look at the final instant too (status reflects it exactly).
        for s in self._sleepers:
            s.flag.set()
        await self.settle()
        return self._v
