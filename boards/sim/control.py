# The bench's control channel: JSON lines on a unix socket, for time and faults. A real board
# has no such channel, so nothing here is reachable from the programmer port.
import asyncio
import json
import socket
import struct
import sys

# `advance` with "until": the events the bench can stop at (pumpctl bench advance --until).
UNTIL = ("low-reservoir", "empty", "refill-due", "next-alarm", "bolus-end")
NOMINAL_BATTERY_MV = 3600  # a fresh cell, as the bench starts (sim/physics.py)
_UNTIL_CODE = {"low-reservoir": "RESERVOIR_LOW", "empty": "RESERVOIR_EMPTY", "refill-due": "REFILL_DUE"}


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
            if "until" in req:
                return await self.advance_until(ms, req)
            await b.clock.advance(ms)
            return {"ok": True, "clock": b.clock_info()}
        if cmd == "show":
            self.app.sync()
            b.motor.release()  # the pulses due by now have reached the physics
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
        if cmd == "press":
            return await self.press()
        if cmd == "fill":
            return self.fill(req)
        if cmd == "physics":
            b.motor.release()
            w = b.clock.wall()
            return {"ok": True, "state": b.bench.physical_state(), "wall": list(w) if w else None}
        if cmd == "stop":
            self.stopping = True
            return {"ok": True}
        if cmd == "buzzer":
            since = req.get("since_ms", 0)
            return {"ok": True, "edges": [list(e) for e in b.buzzer.timeline if e[0] >= since][-500:]}
        return {"ok": False, "error": "unknown control command %r" % (cmd,)}

    async def advance_until(self, ms, req):
        """advance, stopping at the first wake after which the event holds. A long advance is
        many requests: the first has no "baseline" and its reply gives one (the alarms listed and
        the bolus running when it began), which every later request sends back. The first
        answers at once if the event already holds (not next-alarm)."""
        ev = req.get("until")
        if ev not in UNTIL:
            return {"ok": False, "error": "until must be one of %s, got %r" % (", ".join(UNTIL), ev)}
        b = self.board
        if not b.clock.lockstep:
            return {"ok": False, "error": "advance needs a lockstep bench (this one runs at %s)" % b.mode()}
        base = req.get("baseline")
        first = base is None
        if first:
            base = {"alarms": _listed(self.app), "bolus": self.app.pump.bolus_kind}
        elif type(base) is not dict or type(base.get("alarms")) is not list:
            return {"ok": False, "error": "baseline must be the one the first reply gave"}
        pred = self._until(ev, base)
        v0 = b.clock.now_ms()
        already = first and (pred() or (ev == "bolus-end" and base["bolus"] is None))
        if not already:
            await b.clock.advance(ms, stop=pred)
        hit = self._hit(ev, base, already) if already or pred() else None
        return {"ok": True, "clock": b.clock_info(), "advanced_ms": b.clock.now_ms() - v0, "hit": hit,
                "alarms": _listed(self.app), "baseline": base}

    def _until(self, ev, base):
        """The predicate for `ev`. It reads self.app at each call: a watchdog reset replaces it."""
        code = _UNTIL_CODE.get(ev)
        if ev == "next-alarm":
            old = base["alarms"]

            def pred():
                a = self.app
                if not a.restored:
                    return False
                for d in a.alarms.active():
                    if d["code"] not in old:
                        return True
                return False
        elif ev == "bolus-end":
            def pred():
                a = self.app
                return base["bolus"] is not None and a.restored and a.pump.bolus_kind is None
        else:
            def pred():
                a = self.app
                if not a.restored:
                    return False
                if a.alarms.state(code) is not None:
                    return True
                p = a.pump
                return ev == "empty" and p.state == "stopped" and p.stop_reason == "reservoir empty"
        return pred

    def _hit(self, ev, base, already):
        b = self.board
        w = b.clock.wall()
        listed = _listed(self.app)
        code = None
        if ev == "bolus-end":
            if base["bolus"] is None:
                detail = "no bolus is running"
            else:
                detail = "the %s bolus ended" % base["bolus"]
        else:
            want = _UNTIL_CODE.get(ev)
            new = [c for c in listed if (c == want if want else c not in base["alarms"])]
            if new:
                code = new[0]
                detail = ("%s was already listed" if already else "%s raised") % " and ".join(new)
            else:
                detail = "the pump %s (reservoir empty)" % ("had already stopped" if already else "stopped")
        return {"event": ev, "virtual_ms": b.clock.now_ms(), "wall": list(w) if w else None,
                "detail": detail, "code": code, "already": already}

    async def press(self):
        """The patient presses the bolus button. The reply waits until the firmware's button
        task has taken the press, and gives the log record it wrote (patient_bolus), if any."""
        b = self.board
        btn = b.button
        app = self.app
        # A delivered bolus is written to the event log, a refused one to the refusals' ring
        # (within its flash budget); both are counted in the bolus usage.
        rings = [r for r in (app.stores.log, getattr(app.stores, "refusals", None)) if r is not None]
        seqs = [r.last_seq() for r in rings]
        usage = getattr(app, "usage", None)
        before = _usage_counts(usage)
        btn.press()
        for _ in range(100):  # the button task runs at the next yield; a few at most
            await asyncio.sleep_ms(0)
            if btn.pressed_flag.taken >= btn.presses:
                break
        else:
            return {"ok": False, "error": "the firmware did not take the button press (is its button task running?)"}
        rec = None
        for ring, seq0 in zip(rings, seqs):
            for r in ring.read(seq0, 20):
                if r["type"] == "patient_bolus":
                    rec = r
        outcome = rec["data"]["outcome"] if rec else _usage_outcome(before, _usage_counts(usage))
        return {"ok": True, "presses": btn.presses, "outcome": outcome, "record": rec}

    def fill(self, req):
        """Water into the bench's reservoir: what was left is withdrawn (as a refill's syringe
        does), then the volume asked for goes in. The pump is not told: `pumpctl refill` is."""
        b = self.board
        nl = req.get("volume_nl")
        cap_nl = b.reservoir_model_ml * 1_000_000
        if type(nl) is not int or not 0 <= nl <= cap_nl:
            return {"ok": False, "error": "fill needs volume_nl 0..%d (the %d mL reservoir)" % (cap_nl, b.reservoir_model_ml)}
        b.motor.release()  # what the head pumped before the fill came from the old water
        withdrawn = b.bench.fill(nl * 1000)
        b.last_fill = {"withdrawn_nl": withdrawn // 1000, "volume_nl": nl, "virtual_ms": b.clock.now_ms()}
        d = {"ok": True, "reservoir_true_nl": b.bench.reservoir_pl // 1000}
        d.update(b.last_fill)
        return d

    def fault(self, req):
        """Everything the bench can fake. A real board has no such channel."""
        b = self.board
        f = req.get("fault")
        on = bool(req.get("on", True))
        b.motor.release()  # what the head pumped before the fault, it pumped as before
        if f == "block_outlet":
            b.bench.set_time(b.clock.now_ms())
            b.bench.block(on)
            b.motor.kick()  # a blocked line: the motor now hands the physics each pulse at its time
            return {"ok": True, "pressure_kpa": b.bench.pressure_kpa(), "released_nl": b.bench.released_pl // 1000}
        if f == "battery":
            if not on:  # a fresh cell
                b.bench.set_battery_mv(NOMINAL_BATTERY_MV)
                return {"ok": True, "battery_mv": NOMINAL_BATTERY_MV}
            mv = req.get("mv")
            if type(mv) is not int or not 0 <= mv <= 5000:
                return {"ok": False, "error": "battery fault needs mv 0..5000"}
            b.bench.set_battery_mv(mv)
            return {"ok": True, "battery_mv": mv}
        if f == "reservoir_empty":
            # The water is set aside, not destroyed: clearing the fault puts it back.
            aside = b.bench.empty_fault(on)
            return {"ok": True, "reservoir_true_nl": b.bench.reservoir_pl // 1000, "set_aside_nl": aside // 1000}
        if f == "clock_loss":
            if on:
                w = b.clock.wall()
                if w is not None:
                    b.lost_wall = (b.clock.now_ms(), w[0], w[1])
                b.clock.lose_wall()
                return {"ok": True, "wall": None}
            lost = getattr(b, "lost_wall", None)
            if lost is not None and b.clock.wall() is None:
                # The backup cell is back and the RTC kept time meanwhile.
                ms = lost[2] + b.clock.now_ms() - lost[0]
                b.clock.set_wall(lost[1] + ms // 86_400_000, ms % 86_400_000)
            b.lost_wall = None
            w = b.clock.wall()
            return {"ok": True, "wall": list(w) if w else None}
        if f == "hang":
            b.clock.hang = bool(on)
            if not on:
                b.clock.kick_all()
                return {"ok": True, "note": "the control task runs again"}
            return {"ok": True, "note": "the control task hangs; the watchdog will reset the firmware"}
        return {"ok": False, "error": "unknown fault %r (block_outlet, battery, reservoir_empty, clock_loss, hang)" % (f,)}


_USAGE_OUTCOMES = ("delivered", "refused_lockout", "refused_limit", "rate_limited", "other")


def _usage_counts(usage):
    """The bolus usage's counts of today's row after `attempts` (core/usage.py), or None."""
    if usage is None or not usage.rows:
        return None
    return list(usage.rows[-1][2:])


def _usage_outcome(before, after):
    """Which outcome a press added to the bolus usage, or None."""
    if after is None:
        return None
    if before is None or len(before) != len(after):
        before = [0] * len(after)
    for k in range(min(len(after), len(_USAGE_OUTCOMES))):
        if after[k] > before[k]:
            return _USAGE_OUTCOMES[k]
    return None


def _listed(app):
    return [d["code"] for d in app.alarms.active()]


def _readable(s):
    # MicroPython's asyncio has no public wait for a listening socket; its own start_server
    # waits through the IO queue exactly like this.
    yield asyncio.core._io_queue.queue_read(s)
