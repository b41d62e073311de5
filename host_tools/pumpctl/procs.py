"""The processes pumpctl starts in the background (a virtual bench, an emulated Pico): the
folder one starts in, what each leaves in its folder's JSON file, is one still alive, waiting
for one to be gone, and one line asked and answered on its control socket."""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Callable


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


def claim_dir(d: Path, info_name: str, error: Callable[[str], Exception], what: str) -> str:
    """Make the folder a process starts in (private: the flash image in it holds the device
    keys) and return its control socket's path. Raises error(sentence) when `what` (its name
    for the user, e.g. "a bench") already runs there, as its JSON file info_name says, or when
    the socket's path would be too long for a unix socket (at most 100 bytes here)."""
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    info = d / info_name
    if info.exists():
        pid = ProcInfo(json.loads(info.read_text())).pid
        if alive(pid):
            raise error(f"{what} is already running in {d} (pid {pid}); stop it first")
    control_path = str(d / "control.sock")
    if len(control_path) > 100:
        raise error(f"the folder's path is too long for a unix socket: {d}")
    return control_path
