"""The board's USB identity, and finding it again after a reset (a real Pico re-enumerates,
maybe on a new node; the emulator opens a new pty behind the same symlink).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence

PortLister = Callable[[], Sequence[Any]]    # serial.tools.list_ports.comports or a fake


def comports() -> list[Any]:
    try:
        from serial.tools import list_ports  # type: ignore[import-untyped]
        return list(list_ports.comports())
    except Exception:  # pragma: no cover - a platform where listing ports fails
        return []


def _same_node(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except (OSError, ValueError):
        return a == b


def usb_identity(port: str, ports: Optional[PortLister] = None) -> Optional[dict[str, Any]]:
    """The board's USB identity when `port` is a real USB serial device: {device, serial_number,
    vid, pid, location}, from serial.tools.list_ports. None for a pty (the emulator) or a port
    the system does not list."""
    try:
        listed = list((ports or comports)())
    except Exception:
        return None
    for p in listed:
        dev = getattr(p, "device", None)
        if not dev or not (dev == port or _same_node(dev, port)):
            continue
        vid, pid = getattr(p, "vid", None), getattr(p, "pid", None)
        if vid is None or pid is None:
            return None
        return {"device": dev, "serial_number": getattr(p, "serial_number", None) or None,
                "vid": vid, "pid": pid, "location": getattr(p, "location", None) or None}
    return None


def vidpid(identity: dict[str, Any]) -> str:
    return f"{identity['vid']:04x}:{identity['pid']:04x}"


def find_port(port: str, identity: Optional[dict[str, Any]] = None,
              ports: Optional[PortLister] = None) -> Optional[str]:
    """Where the board is now: `port` itself when it is there (a /dev/ttyACM0 that came back, a
    symlink following a new pty, a COM port listed again), else the USB serial port with the
    same VID:PID and serial number (or, for a board without one, the same USB location), else
    None."""
    if os.path.exists(port):
        return port
    try:
        listed = list((ports or comports)())
    except Exception:
        listed = []
    if any(getattr(p, "device", None) == port for p in listed):
        return port
    if not identity:
        return None
    for p in listed:
        if getattr(p, "vid", None) != identity["vid"] or getattr(p, "pid", None) != identity["pid"]:
            continue
        if identity.get("serial_number"):
            if getattr(p, "serial_number", None) == identity["serial_number"]:
                return p.device
        elif identity.get("location") and getattr(p, "location", None) == identity["location"]:
            return p.device
    return None


def node_of(port: str) -> Optional[tuple[Any, ...]]:
    """What the port path leads to right now (None when it is absent or not a file)."""
    try:
        st = os.stat(port)
        lst = os.lstat(port)  # a symlink re-made to follow a new pty is a new inode
    except (OSError, ValueError):
        return None
    return (os.path.realpath(port), st.st_rdev, st.st_ino, lst.st_ino, lst.st_ctime_ns)
