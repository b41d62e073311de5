# Supervisor: the hardware watchdog is fed only while the control task keeps running, so a hung
# control loop ends in a reset rather than a pump that silently stops dosing.
#
# Why the control task alone: the tasks share one asyncio loop, so a task that hangs by never
# yielding (a busy loop anywhere, the link's handlers included) starves the supervisor too, and
# the watchdog resets the board. A task that hangs by waiting forever starves nothing: the link
# task waits on the programmer by design, the button task on a press. Only the control task
# must run on time, so it is the one held to account: the supervisor wakes it before each check
# and feeds the watchdog only if it ran. The board says how often to feed (the RP2040's longest
# watchdog period is 8.3 s; the virtual bench uses a longer virtual period so lockstep days
# stay fast).
import asyncio


class Supervisor:
    def __init__(self, board, names):
        self.board = board
        self.names = names
        self.seen = [0] * len(names)
        self.hung = None  # name of a task that stopped checking in (for the reset log)
        self.feeds = 0

    def check_in(self, i):
        self.seen[i] = self.board.clock.ticks()

    async def run(self, app):
        clock = self.board.clock
        wd = self.board.watchdog
        period = wd.feed_ms
        wd.start(wd.timeout_ms)
        sleeper = clock.Sleeper()
        while True:
            # Wake the control loop, give it a turn, then see whether it ran.
            app.sleeper.kick()
            await clock.wait(0, sleeper)
            if clock.diff(clock.ticks(), self.seen[0]) > period:
                self.hung = self.names[0]  # no feed: the watchdog will reset the board
            else:
                wd.feed()
                self.feeds += 1
            await clock.wait(period, sleeper)
