# Supervisor: the hardware watchdog is fed only while every task has checked in recently, so a
# hung task (or a hung loop) ends in a reset rather than a pump that silently stops dosing.
import asyncio

# The board says how often to feed (the RP2040's longest watchdog period is 8.3 s; the virtual
# bench uses a longer virtual period so lockstep days stay fast). The link task waits on the
# host, so only the control task, which the supervisor wakes before each check, is held to
# account.


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
