# Supervisor: the hardware watchdog is fed only while the control task keeps its own schedule,
# so a hung control loop ends in a reset rather than a pump that silently stops dosing.
#
# Why the control task alone: the tasks share one asyncio loop, so a task that hangs by never
# yielding (a busy loop anywhere, the link's handlers included) starves the supervisor too, and
# the watchdog resets the board. A task that hangs by waiting forever starves nothing: the link
# task waits on the programmer by design, the button task on a press. Only the control task
# must run on time, so it is the one held to account. It sleeps until something is due (minutes
# at a time), so the supervisor does not wake it: before each sleep the control loop says when
# it will be back (expect), and the watchdog is fed while that moment has not passed by more
# than one feed period. The board says how often to feed (the RP2040's longest watchdog period
# is 8.3 s; the virtual bench uses a longer virtual period so lockstep years stay fast).
import asyncio


class Supervisor:
    def __init__(self, board, names):
        self.board = board
        self.names = names
        self.seen = [0] * len(names)
        self.hung = None  # name of a task that stopped checking in (for the reset log)
        self.feeds = 0
        self.due_ms = 0  # how long the control loop said it would sleep at seen[0]

    def check_in(self, i):
        self.seen[i] = self.board.clock.ticks()

    def expect(self, ms):
        """The control loop goes to sleep for `ms`: it is due back at now + ms."""
        c = self.board.clock
        self.seen[0] = c.ticks()
        self.due_ms = ms

    async def run(self, app):
        clock = self.board.clock
        wd = self.board.watchdog
        period = wd.feed_ms
        wd.start(wd.timeout_ms)
        sleeper = clock.Sleeper()
        while True:
            late = clock.diff(clock.ticks(), self.seen[0]) - self.due_ms
            if late > period:
                self.hung = self.names[0]  # no feed: the watchdog will reset the board
            else:
                wd.feed()
                self.feeds += 1
            await clock.wait(period, sleeper)
