"""The heap rig's launcher (CPython): compile, run on one port or both, read the result.

    python tests/heap/rig.py [--port 32|64|both] [--heap BYTES] [--json]

32: MicroPython's 32-bit WebAssembly port under Node, objects the size of a Pico's (the
    package is pinned in the repository's package.json; `make` installs it with npm ci).
64: the unix port (`micropython -X heapsize=N`), where running out of heap raises
    MemoryError exactly as on a board.
See tests/heap/README.md for what is measured and why.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

from pumpctl.bench import BenchError, compile_sources

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import micropython_cmd  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BUILD = ROOT / "build"
WASM_PKG = "@micropython/micropython-webassembly-pyscript"
WASM_VERSION = "1.29.0-6"  # MicroPython 1.29, as the unix port in requirements.txt
# The first estimate of what a Pico leaves Python was 190 KB; the official rp2 image measured
# 245 888 B (RP2_HEAP below). Since issues 16 and 17 the firmware's estimated peak (184 KB) no
# longer fits 190 KB with the margin; it is held to 208 KB, which leaves the measured heap more
# than 37 KB beyond the margin. tests/pico/test_boot.py checks the real image's free heap.
PICO_HEAP = 208 * 1024
# What the official MicroPython v1.28.0 rp2 image really gives Python on a Pico, as the emulated
# Pico reports it (status heap_total; docs/benchmarks.md). The Pico estimate is held to the
# stricter PICO_HEAP; the whole rig, which carries the sim board and the scripted programmer
# no Pico holds, to this.
RP2_HEAP = 245_888
# The 64-bit port needed 257..267 KB for the scenario until issue 14 split app.py, commands and
# five long modules: about 25 KB more live heap on 64 bits (9 KB at boot on the rp2 port), so it
# now fails at 288 KB and passes at 304 KB (docs/benchmarks.md, 2026-12-02).
# Issues 16 and 17 (the refusals ring and its budget, the bolus usage, 4 KB frames, the measured
# delivery check, messages in the user's units) added about 15 KB live heap at boot on the rp2
# port (156 -> 171 KB) and about 30 KB on 64 bits: the scenario no longer fits 312 KB.
HEAP64 = 344 * 1024


class RigError(RuntimeError):
    pass


def compile_lib(out: Path = BUILD / "heap-mpy") -> Path:
    """Firmware, sim board, Pico board and the rig, compiled to .mpy as they are flashed."""
    groups = [(ROOT / "firmware", Path(".")), (ROOT / "boards" / "sim", Path("sim")),
              (ROOT / "boards" / "pico", Path("pico")), (ROOT / "tests" / "firmware" / "fakes", Path("fakes"))]
    sources = [(p, base / p.relative_to(d)) for d, base in groups for p in d.rglob("*.py") if p.name != "run.py"]
    sources += [(HERE / n, Path(n)) for n in ("drive.py", "rig_asyncio.py", "pico_modules.py")]
    try:
        return compile_sources(sources, out)
    except BenchError as e:
        raise RigError(str(e)) from None


def ensure_wasm() -> Path:
    """The pinned WebAssembly MicroPython in the project's node_modules (installed by make)."""
    mark = ROOT / "node_modules" / WASM_PKG / "package.json"
    if not shutil.which("node"):
        raise RigError("node is not on PATH: the 32-bit heap measurement runs MicroPython's "
                       "WebAssembly port under Node.js 18+")
    if not mark.exists() or json.loads(mark.read_text()).get("version") != WASM_VERSION:
        raise RigError(f"{WASM_PKG}@{WASM_VERSION} is not installed in {ROOT / 'node_modules'}: "
                       "run `make venv` (it runs npm ci)")
    return mark


def qstr_pools(stdout: str) -> list[tuple[str, int, int]]:
    """(phase, qstr pools, interned names) for each phase line followed by MicroPython's
    "qstr pool: n_pool=P, n_qstr=N, ..." line (drive.py prints one after each phase)."""
    out: list[tuple[str, int, int]] = []
    phase = None
    for line in stdout.splitlines():
        if line.startswith("phase "):
            phase = line[len("phase "):].split(" live ")[0].strip()
        elif line.startswith("qstr pool:") and phase is not None:
            f = dict(kv.strip().split("=") for kv in line[len("qstr pool:"):].split(","))
            out.append((phase, int(f["n_pool"]), int(f["n_qstr"])))
            phase = None
    return out


def _result(r: subprocess.CompletedProcess, what: str) -> dict[str, Any]:
    """The run's RESULT line (with its whole output under "stdout"); a failed exit is not ok."""
    for line in reversed(r.stdout.splitlines()):
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
            break
    else:
        raise RigError(f"{what} printed no RESULT line:\n{(r.stdout + r.stderr)[-2000:]}")
    res["stdout"] = r.stdout
    res["qstr_pools"] = qstr_pools(r.stdout)
    if r.returncode != 0:
        res["ok"] = False
        res["error"] = res.get("error") or r.stderr.strip()[-500:]
    return res


def run32(heap: int = PICO_HEAP, entry: str = "drive", timeout: float = 900) -> dict[str, Any]:
    lib = compile_lib()
    ensure_wasm()
    r = subprocess.run(["node", str(HERE / "run32.mjs"), str(heap), str(lib), entry],
                       capture_output=True, text=True, timeout=timeout)
    return _result(r, "the WebAssembly run")


def run64(heap: int = HEAP64, rig_asyncio: bool = True, timeout: float = 900,
          micropython: Optional[str] = None, entry: str = "drive") -> dict[str, Any]:
    lib = compile_lib()
    mp = micropython or micropython_cmd()[0]
    with tempfile.TemporaryDirectory(prefix="heap64-") as root:
        # The rig's own asyncio (as on the 32-bit run) unless asked for the port's asyncio.
        swap = "import rig_asyncio;sys.modules['asyncio']=rig_asyncio;" if rig_asyncio else ""
        go = (f"rig_asyncio.run({entry}.run({root!r}, lfs=True))" if rig_asyncio
              else f"import asyncio;asyncio.run({entry}.run({root!r}, lfs=True))")
        code = f"import sys;sys.path.insert(0,{str(lib)!r});{swap}import {entry};{go}"
        r = subprocess.run([mp, "-X", f"heapsize={heap}", "-c", code],
                           capture_output=True, text=True, timeout=timeout)
    return _result(r, "the unix-port run")


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", choices=("32", "64", "both"), default="both")
    ap.add_argument("--heap", type=int, help="heap bytes (default: 194560 on 32-bit, 262144 on 64-bit)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    out = {}
    try:
        if a.port in ("32", "both"):
            out["32"] = run32(a.heap or PICO_HEAP)
        if a.port in ("64", "both"):
            out["64"] = run64(a.heap or HEAP64)
    except (RigError, subprocess.TimeoutExpired) as e:
        print(f"heap rig: {e}", file=sys.stderr)
        return 1
    ok = all(r.get("ok") for r in out.values())
    if a.json:
        print(json.dumps({k: {x: y for x, y in v.items() if x != "stdout"} for k, v in out.items()}))
    else:
        for k, r in out.items():
            print(f"--- {k}-bit port ---")
            print(r["stdout"].rstrip())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
