"""The mpremote side of flashing: the one script run on the board (remove stale twins, make the
directories, print each target file's SHA-256), then the chained copy of the files whose hash
differs, then the reset. Pure command builders; flash.py runs them.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from .flash_build import BOARD_PKG, PathLike

HASH_TAG = "=H"                  # marks the hash lines the prepare script prints


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


def sha256_file(path: Path) -> str:
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
