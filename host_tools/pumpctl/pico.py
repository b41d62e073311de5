"""The emulated Pico: the official MicroPython rp2 firmware on an emulated RP2040 (rp2040js,
pico-emu/), its USB serial port on a pseudo-terminal, as a real board's /dev/ttyACM0.

`make flash PORT=<port>` flashes it exactly as a real board and every `pumpctl --port <port>`
command talks to it. Its control channel drives the pins a bench would touch (the bolus button,
the battery on ADC0) and reports what the pins did (STEP edges, EN/DIR, LEDs, buzzer PWM), in
emulated time. Its flash lives in a file that survives stop/start and power cuts, as a board
keeps its flash when unplugged.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from . import paths, procs
from .render import DISCLAIMER  # noqa: F401  (cli_pico prints it)
from .pico_pins import (PicoError, PicoInfo, battery_raw, board_pins, button, control, pins,  # noqa: F401
                        set_battery)

UF2_HELP = ("download the official MicroPython v1.28.0 firmware for RPI_PICO "
            "(https://micropython.org/download/RPI_PICO/) and set PICO_UF2 to the .uf2 file, "
            "or pass --uf2 FILE")
NODE_MIN = 18


# ---- what it needs ---------------------------------------------------------------------------
def emu_dir() -> Path:
    return paths.repo_root() / "pico-emu"


def uf2_path() -> Optional[Path]:
    """The firmware image: PICO_UF2, else ../shared/pico/firmware.uf2 beside the repository."""
    env = os.environ.get("PICO_UF2")
    if env:
        return Path(env)
    p = paths.repo_root().parent / "shared" / "pico" / "firmware.uf2"
    return p if p.exists() else None


def node_version(node: str = "node") -> Optional[tuple[int, ...]]:
    exe = shutil.which(node)
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
        return tuple(int(x) for x in out.lstrip("v").split(".")[:3])
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None


def missing() -> Optional[str]:
    """Why the emulated Pico cannot run here (one sentence), or None when it can."""
    uf2 = uf2_path()
    if uf2 is None or not uf2.exists():
        where = f" ({uf2} does not exist)" if uf2 else ""
        return f"no MicroPython firmware image for the emulated Pico{where}: {UF2_HELP}"
    v = node_version()
    if v is None:
        return "Node.js is not installed: the emulated Pico needs Node.js 18 or newer (https://nodejs.org)"
    if v[0] < NODE_MIN:
        return f"Node.js {'.'.join(map(str, v))} is too old: the emulated Pico needs Node.js 18 or newer"
    if not (paths.repo_root() / "node_modules" / "rp2040js" / "package.json").exists():
        return "rp2040js is not installed in the project: run `make venv` (it runs `npm ci`)"
    return None


def default_dir() -> Path:
    return paths.state_home() / "pico"


def _current_file() -> Path:
    return paths.state_home() / "current-pico"


def find(pico_dir: Optional[Path] = None) -> PicoInfo:
    """The running emulated Pico (the one started last, unless a directory is given)."""
    if pico_dir is None:
        ptr = _current_file()
        if not ptr.exists():
            raise PicoError("no emulated Pico is running: start one with `pumpctl pico start`")
        pico_dir = Path(ptr.read_text().strip())
    f = Path(pico_dir) / "pico.json"
    if not f.exists():
        raise PicoError(f"no emulated Pico in {pico_dir}: start one with `pumpctl pico start`")
    info = PicoInfo(json.loads(f.read_text()))
    if not procs.alive(info.pid):
        raise PicoError(f"the emulated Pico in {pico_dir} is not running any more "
                        f"(see {pico_dir}/pico.log); start it again")
    return info


# ---- start, stop, power ------------------------------------------------------------------------
def start(pico_dir: Optional[Path] = None, fresh: bool = False, idle_speed: float = 1.0,
          uf2: Optional[Path] = None, unique_id: Optional[str] = None, timeout: float = 30.0,
          hold_button: bool = False, battery_mv: Optional[int] = 3700) -> PicoInfo:
    """Start an emulated Pico. Its flash lives in pico_dir/flash.img and survives stop/start
    (a board keeps its flash); `fresh` erases it first (a new board with only MicroPython).
    battery_mv: what ADC0 shows through the board's divider (None: nothing wired, it reads 0,
    and the firmware sees a flat battery)."""
    why = missing() if uf2 is None else None
    if why:
        raise PicoError(why)
    uf2 = Path(uf2) if uf2 else uf2_path()
    assert uf2 is not None
    if not uf2.exists():
        raise PicoError(f"the firmware image {uf2} does not exist: {UF2_HELP}")
    if not idle_speed >= 0:
        raise PicoError(f"speed must be 0 (as fast as possible) or more, got {idle_speed}")
    d = Path(pico_dir) if pico_dir else default_dir()
    control_path = procs.claim_dir(d, "pico.json", PicoError, "an emulated Pico")
    flash = d / "flash.img"
    if fresh:
        for f in (flash, d / "flash.img.uid"):
            if f.exists():
                f.unlink()
    link = d / "ttyACM0"
    log_path = d / "pico.log"
    for f in (link, d / "events.txt"):
        if f.is_symlink() or f.exists():
            f.unlink()
    emu = emu_dir()
    cmd = [sys.executable, str(emu / "pico-pty.py"), "--link", str(link), "--log", str(log_path), "--",
           "--uf2", str(uf2), "--fs", str(flash), "--control", control_path, "--idle-speed", f"{idle_speed:g}"]
    if unique_id:
        cmd += ["--unique-id", unique_id]
    log = open(log_path, "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=str(emu),
                            start_new_session=True, close_fds=True)
    log.close()
    info = PicoInfo({"dir": str(d), "port": str(link), "control": control_path, "pid": proc.pid,
                     "flash": str(flash), "uf2": str(uf2), "started": time.time(), "cmd": cmd,
                     "options": {"idle_speed": idle_speed, "unique_id": unique_id, "battery_mv": battery_mv}})
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise PicoError(f"the emulated Pico exited at start (code {proc.returncode}):\n{tail}")
        try:
            if link.exists():
                control(info, "time", timeout=2)
                break
        except PicoError:
            pass
        if time.monotonic() > deadline:
            _kill(proc.pid, signal.SIGKILL)
            raise PicoError(f"the emulated Pico did not come up within {timeout:.0f} s (see {log_path})")
        time.sleep(0.05)
    if battery_mv is not None:
        set_battery(info, battery_mv)  # before the firmware's first reading, a minute after boot
    if hold_button:
        button(info, "hold")
        reset(info)  # boot again with the button down: main.py leaves the REPL free
    (d / "pico.json").write_text(json.dumps(info.d, indent=2))
    paths.state_home().mkdir(parents=True, exist_ok=True)
    _current_file().write_text(str(d))
    return info


def _kill(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the pty wrapper leads its own session: node goes with it
    except ProcessLookupError:
        pass





def stop(info: PicoInfo, timeout: float = 15.0) -> None:
    """Stop the emulator cleanly (it writes its flash image back)."""
    _kill(info.pid, signal.SIGTERM)
    if not procs.wait_gone(info.pid, timeout):
        _kill(info.pid, signal.SIGKILL)
        procs.wait_gone(info.pid, 5)
    _forget(info)


def _forget(info: PicoInfo) -> None:
    try:
        (info.dir / "pico.json").unlink()
    except FileNotFoundError:
        pass
    ptr = _current_file()
    if ptr.exists() and ptr.read_text().strip() == str(info.dir):
        ptr.unlink()


def power_cut(info: PicoInfo, down_s: float = 0.0) -> PicoInfo:
    """Pull the plug (kill -9: nothing gets a chance to save; the flash file holds exactly what
    the chip's flash held), wait down_s seconds, and plug it in again."""
    _kill(info.pid, signal.SIGKILL)
    procs.wait_gone(info.pid, 10)
    _forget(info)
    if down_s > 0:
        time.sleep(down_s)
    opts = info.d.get("options", {})
    return start(info.dir, fresh=False, idle_speed=opts.get("idle_speed", 1.0),
                 uf2=Path(info.d["uf2"]), unique_id=opts.get("unique_id"), battery_mv=opts.get("battery_mv"))


def status(info: PicoInfo) -> dict[str, Any]:
    t = control(info, "time")
    st = control(info, "stats json")
    port = os.path.realpath(info.port)
    return {"running": True, "dir": str(info.dir), "port": info.port, "pty": port, "pid": info.pid,
            "control": info.control, "flash": str(info.flash), "uf2": info.d.get("uf2"),
            "emulated_s": t["t_ns"] / 1e9, "boots": t["boots"], "last_reset": t["last_reset"],
            "stats": st}


def set_speed(info: PicoInfo, factor: float) -> dict[str, Any]:
    """How fast idle time may run (x real time; 0 = as fast as it can). Kept across a
    power cycle, as the emulator's setting rather than the board's."""
    if not factor >= 0:
        raise PicoError(f"speed must be 0 (as fast as it can) or more, got {factor}")
    reply = control(info, f"speed {factor:g}")
    info.d.setdefault("options", {})["idle_speed"] = factor
    (info.dir / "pico.json").write_text(json.dumps(info.d, indent=2))
    return reply


def wait(info: PicoInfo, ms: int, progress: Optional[Any] = None, poll_s: float = 0.2,
         until: Optional[Any] = None, until_every_s: float = 1.0) -> float:
    """Wait until `ms` of the emulated Pico's own time have passed (it may run slower or faster
    than the wall clock); returns the wall seconds it took. progress(done_ms) is called as it goes.
    until(), if given, is asked every `until_every_s` of wall time (it may ask the firmware over
    USB, which wakes the chip, so not at every poll); the wait ends early once it says True."""
    t0 = control(info, "time")["t_ns"]
    w0 = time.monotonic()
    asked = w0
    while True:
        done = (control(info, "time")["t_ns"] - t0) // 1_000_000
        if progress is not None:
            progress(min(done, ms))
        if done >= ms:
            return time.monotonic() - w0
        if until is not None and time.monotonic() - asked >= until_every_s:
            asked = time.monotonic()
            if until():
                return asked - w0
        time.sleep(poll_s)



def reset(info: PicoInfo, timeout: float = 10.0) -> str:
    """Press RUN: the chip resets (flash kept) and its USB port goes away and comes back as a
    new pty behind the same link. Returns the port once it is back."""
    old = os.path.realpath(info.port)
    control(info, "reset")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = os.path.realpath(info.port)
        if now != old and os.path.exists(now):
            return info.port
        time.sleep(0.05)
    raise PicoError(f"the emulated Pico's USB port {info.port} did not come back within {timeout:.0f} s")


def wait_firmware(info: PicoInfo, pico_s: float = 30.0, wall_cap: float = 600.0,
                  progress: Optional[Any] = None) -> float:
    """Wait until the pump firmware answers `identify` on the board's USB port; returns the wall
    seconds it took. The budget is `pico_s` of the Pico's own time: on a loaded machine the
    emulator runs several times slower (a boot once took 60 s of wall clock for 2.5 s of the
    chip's), and what a boot costs is the chip's matter, not the machine's. `wall_cap` only
    stops a wait on an emulator that makes no progress at all. progress(pico_ms) as it goes."""
    from .errors import PumpctlError
    from .link import Link
    t0 = time.monotonic()
    e0: Optional[int] = None
    last: Any = None
    while time.monotonic() - t0 < wall_cap:
        try:
            now = control(info, "time")["t_ns"]
            e0 = now if e0 is None else e0
        except PicoError as e:
            last = f"its control socket: {e}"
            now = e0 or 0
        if e0 is not None and now - e0 > pico_s * 1e9:
            break
        if progress is not None and e0 is not None:
            progress((now - e0) // 1_000_000)
        try:
            with Link(info.port, timeout=3, retries=0) as link:
                link.request("identify")
                return time.monotonic() - t0
        except PumpctlError as e:
            last = e
            time.sleep(0.2)
    raise PicoError(f"the pump firmware did not answer on {info.port} within {pico_s:.0f} s of the Pico's own time "
                    f"({time.monotonic() - t0:.0f} s of yours): {last}. Is it flashed (make flash PORT={info.port})? "
                    f"The emulator's log is {info.dir / 'pico.log'}")
