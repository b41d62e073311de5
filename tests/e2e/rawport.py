"""Raw bytes to a pump's serial port, for tests that must bypass pumpctl's framing."""
from __future__ import annotations

import time

import serial


def raw(port: str, data: bytes, wait: float = 0.5) -> list[bytes]:
    """Write `data` and collect the frame lines (`$...`) that come back within `wait` s."""
    with serial.Serial(port, 115200, timeout=0.05) as s:
        s.reset_input_buffer()
        s.write(data)
        s.flush()
        buf = b""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            buf += s.read(4096)
    return [line for line in buf.split(b"\n") if line.startswith(b"$")]
