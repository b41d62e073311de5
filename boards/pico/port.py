# The programmer link on the Pico: USB CDC, i.e. the REPL's own stdin/stdout.
# read() waits (asyncio) for at least one byte and returns what is already there, up to
# `bufsize`. write() does not wait for the host: it writes only when poll() says the CDC
# has room (MicroPython reports "writable" when no host has the port open, the bytes then
# go nowhere) and counts what it drops. Residual: a frame longer than the free room in the
# CDC FIFO while a host holds the port but stops reading can still wait up to MicroPython's
# CDC TX timeout (500 ms per chunk) inside sys.stdout.buffer.write. Frames are printable ASCII, so 0x03 (Ctrl-C) from mpremote or Thonny
# still interrupts the interpreter.
import sys
import select
import asyncio


class Port:
    def __init__(self, inp=None, out=None, bufsize=256):
        self._in = inp if inp is not None else sys.stdin.buffer
        self._out = out if out is not None else sys.stdout.buffer
        self._reader = asyncio.StreamReader(self._in)
        self._rpoll = select.poll()
        self._rpoll.register(self._in, select.POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(self._out, select.POLLOUT)
        self._max = bufsize
        self.dropped = 0  # bytes dropped by write(), wraps below 2**30

    async def read(self):
        while True:
            first = await self._reader.read(1)
            if first:
                break
            await asyncio.sleep_ms(50)  # end of stream: host gone; poll again later
        out = bytearray(first)
        while len(out) < self._max and self._rpoll.poll(0):
            b = self._in.read(1)
            if not b:
                break
            out += b
        return bytes(out)

    def write(self, b):
        """Queue bytes to the host; returns how many were written (0 when dropped)."""
        if not self._wpoll.poll(0):
            self.dropped = (self.dropped + len(b)) & 0x3FFFFFFF
            return 0
        try:
            n = self._out.write(b)
        except OSError:
            n = 0
        if n is None:
            n = len(b)
        if n < len(b):
            self.dropped = (self.dropped + len(b) - n) & 0x3FFFFFFF
        return n
