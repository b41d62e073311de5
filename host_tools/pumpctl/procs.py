"""The processes pumpctl starts in the background (a virtual bench, an emulated Pico): what
each leaves in its folder's JSON file, is one still alive, waiting for one to be gone, and one
line asked and answered on its control socket."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any


class ProcInfo:
    """What a started process's JSON file says: its folder, serial port, control socket, pid."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.dir = Path(d["dir"])
        self.port: str = d["port"]
        self.control: str = d["control"]
        self.pid: int = d["pid"]


def ask(control_path: str, line: bytes, timeout: float) -> bytes:
    """Send one line on a unix control socket and read the one-line answer (b"" if the other
    side closed without one). Raises OSError (socket.timeout included) for the caller to name."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(control_path)
        s.sendall(line + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
        return buf
    finally:
        s.close()


def alive(pid: int) -> bool:
    """True while the process runs; a zombie child of ours counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def wait_gone(pid: int, timeout: float, poll_s: float = 0.05) -> bool:
    """Wait up to timeout seconds for the process to end; False if it is still running."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True
