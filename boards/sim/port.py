# The programmer port of the virtual bench: the pseudo-terminal the launcher handed us as
# stdin/stdout (non-blocking), the same streams a Pico's USB CDC REPL port uses.
import asyncio
import sys


class PtyPort:
    def __init__(self, rx=None, tx=None):
        self._rx = rx or sys.stdin.buffer
        self._tx = tx or sys.stdout.buffer
        self._reader = asyncio.StreamReader(self._rx)
        self.dropped = 0

    async def read(self):
        while True:
            data = await self._reader.read(256)
            if data:
                return data
            await asyncio.sleep_ms(20)  # EOF on a pty nobody holds: keep waiting

    def write(self, data):
        # A host that stopped reading must never stall the firmware: drop what does not fit.
        try:
            n = self._tx.write(data)
        except OSError:
            n = 0
        if n is None:
            n = 0
        if n < len(data):
            self.dropped += len(data) - n
