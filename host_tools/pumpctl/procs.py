"""The processes pumpctl starts in the background (a virtual bench, an emulated Pico): is one
still alive, and waiting for one to be gone."""
from __future__ import annotations

import os
import time


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
