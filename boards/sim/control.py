# The bench's control channel: JSON lines on a unix socket, for time and faults. A real board
# has no such channel, so nothing here is reachable from the programmer port.
import asyncio
import json
import socket
import struct
import sys


class ControlServer:
    def __init__(self, path, board):
        self.path = path
        self.board = board
        self.app = None
        self.stopping = False
        self.sock = None

    def _listen(self):
        try:
            import os
            os.remove(self.path)
        except OSError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(struct.pack("H108s", socket.AF_UNIX, self.path.encode()))
        s.listen(4)
        s.setblocking(False)
        return s

    async def serve(self, app):
        self.app = app
        s = self._listen()
        self.sock = s
        while True:
            await _readable(s)
            try:
                c, _ = s.accept()
            except OSError:
                await asyncio.sleep_ms(5)
                continue
            c.setblocking(False)
            asyncio.create_task(self._client(c))

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    async def _client(self, c):
        r = asyncio.StreamReader(c)
        w = asyncio.StreamWriter(c, {})
        try:
            while True:
                line = await r.readline()
                if not line:
                    break
                try:
                    req = json.loads(line)
                    reply = await self.handle(req)
                except Exception as e:
                    reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, e)}
                w.write(json.dumps(reply).encode() + b"\n")
                await w.drain()
                if self.stopping:
                    break
        finally:
            c.close()
        if self.stopping:
            raise SystemExit(0)

    async def handle(self, req):
        cmd = req.get("cmd")
        b = self.board
        if cmd == "ping":
            return {"ok": True, "mode": b.mode()}
        if cmd == "advance":
            ms = req.get("ms")
            if type(ms) is not int or ms < 0:
                return {"ok": False, "error": "advance needs ms >= 0"}
            await b.clock.advance(ms)
            return {"ok": True, "clock": b.clock_info()}
        if cmd == "show":
            self.app.sync()
            d = b.bench.truth()
            d["scale_ug"] = b.scale.read_ug()
            d["ok"] = True
            d["clock"] = b.clock_info()
            d["mode"] = b.mode()
            d["motor"] = b.motor.info()
            d["buzzer_hz"] = b.buzzer.hz
            d["leds"] = {"red": b.leds.red, "yellow": b.leds.yellow}
            d["port_dropped_bytes"] = b.port.dropped
            fl = getattr(b, "flash", None)
            if fl is not None:
                d["flash"] = {"bytes_written": fl.stats.bytes_written, "blocks_erased": fl.stats.blocks_erased,
                              "max_block_erases": max(fl.stats.erase_counts)}
            return d
        if cmd == "fault":
            return self.fault(req)
        if cmd == "stop":
            self.stopping = True
            return {"ok": True}
        if cmd == "buzzer":
            since = req.get("since_ms", 0)
            return {"ok": True, "edges": [list(e) for e in b.buzzer.timeline if e[0] >= since][-500:]}
        return {"ok": False, "error": "unknown control command %r" % (cmd,)}

    def fault(self, req):
        """Everything the bench can fake. A real board has no such channel."""
        b = self.board
        f = req.get("fault")
        on = bool(req.get("on", True))
        if f == "block_outlet":
            b.bench.set_time(b.clock.now_ms())
            b.bench.block(on)
            return {"ok": True, "pressure_kpa": b.bench.pressure_kpa(), "released_nl": b.bench.released_pl // 1000}
        if f == "battery":
            mv = req.get("mv")
            if type(mv) is not int or not 0 <= mv <= 5000:
                return {"ok": False, "error": "battery fault needs mv 0..5000"}
            b.bench.set_battery_mv(mv)
            return {"ok": True, "battery_mv": mv}
        if f == "reservoir_empty":
            b.bench.reservoir_pl = 0
            return {"ok": True}
        if f == "clock_loss":
            b.clock.lose_wall()
            return {"ok": True}
        if f == "hang":
            b.clock.hang = True
            return {"ok": True, "note": "the control task hangs; the watchdog will reset the firmware"}
        return {"ok": False, "error": "unknown fault %r (block_outlet, battery, reservoir_empty, clock_loss, hang)" % (f,)}


def _readable(s):
    # MicroPython's asyncio has no public wait for a listening socket; its own start_server
    # waits through the IO queue exactly like this.
    yield asyncio.core._io_queue.queue_read(s)
