"""The serial link to a pump (a Pico's USB CDC port or the virtual bench's pseudo-terminal)."""
from __future__ import annotations

import os
import time
from typing import Any, Optional

import serial  # type: ignore[import-untyped]  # pyserial ships no type stubs

try:  # termios (POSIX) raises its own error type from tcdrain/tcflush on a hung-up tty
    import termios
    _TTY_ERRORS: tuple[type[BaseException], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # pragma: no cover - Windows
    _TTY_ERRORS = (serial.SerialException, OSError)

from . import frames
from .errors import DeviceError, LinkFailed, LinkLost, NoReply, PortUnavailable, PumpctlError, RequestTooLarge

# Commands anyone may send without a MAC (the device's table is firmware/services/auth_roles.py;
# this copy only decides what the host signs: the device decides what it accepts).
UNSIGNED = frozenset({"hello", "identify", "status", "alarms", "drugs"})


__all__ = ["Link", "LinkFailed", "LinkLost", "NoReply", "PortUnavailable", "RequestTooLarge", "UNSIGNED"]


class Link:
    def __init__(self, port: str, timeout: float = 5.0, retries: int = 2) -> None:
        self.port_path = port
        self.timeout = timeout
        self.retries = retries
        try:
            self.ser = serial.Serial(port, 115200, timeout=0.05, write_timeout=2)
        except (serial.SerialException, OSError) as e:
            raise PortUnavailable(f"cannot open {port}: {e}") from None
        try:
            self.ser.reset_input_buffer()  # stale replies for an earlier host
        except _TTY_ERRORS as e:
            self.close()
            raise self._lost(e, "connecting") from None
        self._buf = b""
        # Sequence numbers start somewhere new each session so a stale reply never matches.
        self.seq = int.from_bytes(os.urandom(3), "big") + 1
        self.noise: list[bytes] = []
        self.signer: Optional[Any] = None  # callable(request dict) -> (body bytes, mac hex)
        self.role = "clinician"

    def enable_auth(self, device_id: str, role: str = "clinician", home: Optional[str] = None) -> bool:
        """Sign therapy and settings commands with this device's key from the keystore."""
        from .keystore import Keystore, KeystoreError
        from .signing import SigningError, build_auth_fields, sign_body
        ks = Keystore(home) if home else Keystore()
        if not ks.exists(device_id):
            return False
        try:
            key = ks.load(device_id).key_bytes(role)
        except KeystoreError as e:
            raise PumpctlError(str(e), "KEYSTORE") from None
        self.role = role

        def signer(obj: dict) -> tuple[bytes, str]:
            body = frames.body_bytes(obj)  # inf/nan refused before a counter is spent
            try:
                n = ks.next_counter(device_id, role)
                obj.update(build_auth_fields(role, n, device_id))
            except (KeystoreError, SigningError) as e:
                # e.g. the counter reached 2**30-1: one sentence (re-provision), never a traceback
                raise PumpctlError(str(e), "KEYSTORE") from None
            body = frames.body_bytes(obj)
            return body, sign_body(body, key)

        self.signer = signer
        return True

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _lost(self, e: BaseException, doing: str) -> LinkLost:
        """One sentence for a pyserial/OS failure on the open port (never a traceback)."""
        if isinstance(e, serial.SerialTimeoutException):
            return LinkLost(f"the pump on {self.port_path} stopped taking data while {doing} "
                            "(write timed out: is it stuck or being reset?)")
        return LinkLost(f"the pump on {self.port_path} went away while {doing} (it was reset or unplugged)")

    def _read_some(self) -> bytes:
        try:
            # Block for the first byte only (up to the serial timeout), then take what is there.
            return self.ser.read(max(1, self.ser.in_waiting))
        except _TTY_ERRORS as e:
            raise self._lost(e, "reading from it") from None

    def _send(self, frame: bytes) -> None:
        try:
            self.ser.write(frame)
            self.ser.flush()
        except _TTY_ERRORS as e:
            raise self._lost(e, "sending to it") from None

    def _next_seq(self) -> int:
        self.seq = (self.seq % ((1 << 30) - 1)) + 1
        return self.seq

    def _readline(self, deadline: float) -> Optional[bytes]:
        while time.monotonic() < deadline:
            i = self._buf.find(b"\n")
            if i >= 0:
                line, self._buf = self._buf[:i], self._buf[i + 1:]
                # A frame starts at its last '$' (a '$' never appears inside a body: it goes as
                # \u0024), so noise or a torn reply before it is dropped, as the pump does.
                d = line.rfind(b"$")
                return line[d:] if d > 0 else line
            if len(self._buf) > 2 * frames.MAX_FRAME:
                d = self._buf.rfind(b"$")
                self._buf = self._buf[d:] if d >= 0 else b""  # a jam without newline: keep the last frame start
            chunk = self._read_some()
            if chunk:
                self._buf += chunk
        return None

    def request(self, cmd: str, args: Optional[dict] = None, signed: Optional[bool] = None) -> dict:
        """Send a command and return the reply's data; raise DeviceError on a refusal.
        Commands outside UNSIGNED are signed when auth is enabled (enable_auth)."""
        if signed is None:
            signed = cmd not in UNSIGNED
        seq = self._next_seq()
        obj: dict[str, Any] = {"s": seq, "c": cmd}
        if args:
            obj["a"] = args
        mac = None
        if self.signer is not None and signed:
            body, mac = self.signer(obj)
        else:
            body = frames.body_bytes(obj)
        frame = frames.encode_body(body, mac)
        if len(frame) > frames.MAX_FRAME:
            raise RequestTooLarge(f"request too large for one frame ({len(frame)} bytes)")
        unread: Optional[dict] = None  # the last "could not read a request" error seen
        for attempt in range(self.retries + 1):
            # The same bytes on a retry: the device answers a repeat from its reply cache.
            self._send(frame)
            deadline = time.monotonic() + self.timeout
            while True:
                line = self._readline(deadline)
                if line is None:
                    break
                try:
                    reply = frames.parse(line)
                except frames.FrameError:
                    continue  # corrupted reply: wait for the retry
                if reply is None or "ok" not in reply:
                    # Not a frame, or our own request echoed back (a REPL or a terminal echoes
                    # what it is sent): noise, never mistaken for the pump's answer.
                    self.noise.append(line)
                    continue
                e = reply.get("e") or {}
                if reply.get("s") is None and not reply.get("ok"):
                    # The pump could not read a request (BAD_JSON, BAD_CRC, TOO_LONG...): ours,
                    # or another writer's garbage on the same line. Send ours again at once;
                    # if every try meets only this, it is the pump's answer (not "no reply").
                    unread = e
                    break
                if reply.get("s") != seq:
                    continue
                if reply.get("ok"):
                    d = reply.get("d") or {}
                    if reply.get("cached") is True and isinstance(d, dict):
                        d = dict(d, cached=True)  # answered from the pump's retry cache
                    return d
                raise DeviceError(e.get("msg", "refused"), e.get("code", "ERROR"))
        if unread is not None:
            raise DeviceError(f"the pump could not read the request: {unread.get('msg', 'refused')}",
                              str(unread.get("code", "ERROR")))
        raise NoReply(f"no reply from the pump on {self.port_path} to {cmd!r} after {self.retries + 1} tries")
