"""pumpctl.flash without hardware: the build image, its loading on real MicroPython, and the
mpremote command sequence (with a recording runner instead of a board)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pumpctl import flash as fl

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from support import micropython_cmd  # noqa: E402


def _tree(tmp: Path) -> tuple[Path, Path]:
    fw = tmp / "fw"
    (fw / "core").mkdir(parents=True)
    (fw / "main.py").write_text("print('main')\n")
    (fw / "app.py").write_text("X = 1\n")
    (fw / "core" / "__init__.py").write_text("")
    (fw / "core" / "engine.py").write_text("def f():\n    return 2\n")
    bd = tmp / "bd"
    bd.mkdir()
    (bd / "__init__.py").write_text("")
    (bd / "pins.py").write_text("STEP = 2\n")
    (bd / "diagram.json").write_text("{}")
    return fw, bd


def test_build_layout(tmp_path: Path) -> None:
    fw, bd = _tree(tmp_path)
    out = tmp_path / "out"
    files = fl.build(out, fw, bd)
    assert files == ["/app.mpy", "/core/__init__.mpy", "/core/engine.mpy", "/main.py",
                     "/pico/__init__.mpy", "/pico/pins.mpy"]
    assert (out / "main.py").read_text() == "print('main')\n", "main.py stays source"
    head = (out / "pico" / "pins.mpy").read_bytes()[:2]
    assert head == b"M\x06", head  # .mpy format version 6 (MicroPython >= 1.19)
    assert not (out / "pico" / "diagram.json").exists()


def test_build_twice_is_identical_and_drops_stale_files(tmp_path: Path) -> None:
    fw, bd = _tree(tmp_path)
    out = tmp_path / "out"
    fl.build(out, fw, bd)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (fw / "core" / "engine.py").unlink()
    fl.build(out, fw, bd)
    fl.build(out, fw, bd)
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("core/engine.mpy") not in second
    del first[Path("core/engine.mpy")]
    assert first == second


def test_build_refuses_foreign_directory_and_bad_source(tmp_path: Path) -> None:
    fw, bd = _tree(tmp_path)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("keep me")
    with pytest.raises(fl.FlashError, match="refusing"):
        fl.build(foreign, fw, bd)
    assert (foreign / "thesis.txt").exists()
    (fw / "broken.py").write_text("def f(:\n")
    with pytest.raises(fl.FlashError, match="broken.py"):
        fl.build(tmp_path / "out", fw, bd)
    with pytest.raises(fl.FlashError, match="does not exist"):
        fl.build(tmp_path / "out2", tmp_path / "nope", bd)


def test_real_tree_builds_and_loads_on_micropython(tmp_path: Path) -> None:
    out = tmp_path / "img"
    files = fl.build(out)
    assert "/pico/board.mpy" in files and "/pico/stepper.mpy" in files
    assert "/app.mpy" in files
    # The compiled modules load on the real interpreter (same .mpy format as the Pico's).
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import pico.pins, pico.clock\n"
            "print(pico.clock.__file__, pico.pins.STEP)\n" % str(out))
    proc = subprocess.run(micropython_cmd() + ["-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "clock.mpy" in proc.stdout and proc.stdout.strip().endswith(" 2")


class Recorder:
    """Stands in for subprocess.run: records each mpremote call, answers the prepare step with
    the hashes in `board` (device path -> sha256 hex), fails the call numbered `fail_at`."""

    def __init__(self, fail_at: int | None = None, board: dict[str, str] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_at = fail_at
        self.board = board or {}

    def __call__(self, cmd, **kw):
        self.calls.append(cmd)
        rc = 1 if self.fail_at is not None and len(self.calls) - 1 == self.fail_at else 0
        out = ""
        if "exec" in cmd and fl.HASH_TAG in cmd[-1]:
            out = "".join(f"{fl.HASH_TAG} {h} {p}\n" for p, h in self.board.items())
        return subprocess.CompletedProcess(cmd, rc, out, "could not enter raw repl" if rc else "")


def test_flash_runs_mpremote_in_order_with_provisioning(tmp_path: Path) -> None:
    fw, bd = _tree(tmp_path)
    rec = Recorder()
    order: list[str] = []
    prov = lambda port: order.append("provision " + port) or rec.calls.append(["PROVISION"])
    files = fl.flash("/dev/ttyACM7", fw, bd, prov, build_dir=tmp_path / "b", runner=rec,
                     python="py", ports=lambda: [])
    assert "/main.py" in files
    assert files.copied == list(files) and files.up_to_date == []
    prepare, copy, prov_mark, reset = rec.calls
    assert prepare[:6] == ["py", "-m", "mpremote", "connect", "/dev/ttyACM7", "exec"]
    script = prepare[6]
    compile(script, "prepare", "exec")  # the script is valid Python
    # stale twins: an old .py next to a shipped .mpy, an old main.mpy next to main.py
    assert "'/app.py'" in script and "'/pico/pins.py'" in script
    assert "'/main.mpy'" in script and "'/main.py'" in script  # main.py: hashed, not removed
    assert "['/core', '/pico']" in script  # directories made, parents first
    assert copy[:5] == ["py", "-m", "mpremote", "connect", "/dev/ttyACM7"]
    pairs = [c for c in " ".join(copy[5:]).split(" + ")]
    assert len(pairs) == len(files)
    for f, pair in zip(files, pairs):
        assert pair == f"fs cp -f {tmp_path / 'b' / f.lstrip('/')} :{f}"
    assert prov_mark == ["PROVISION"] and order == ["provision /dev/ttyACM7"]
    assert reset[5:] == ["reset"]
    # Twice is harmless: the board now holds the same hashes, so nothing is copied.
    built = {f: fl.sha256_file(tmp_path / "b" / f.lstrip("/")) for f in files}
    rec2 = Recorder(board=built)
    again = fl.flash("/dev/ttyACM7", fw, bd, None, build_dir=tmp_path / "b", runner=rec2,
                     python="py", ports=lambda: [])
    assert rec2.calls == [prepare, reset]
    assert again.copied == [] and again.up_to_date == list(files)
    assert again.summary() == f"Copied 0 files to /dev/ttyACM7, {len(files)} already up to date; reset the board."
    # One changed file: only that one is copied.
    built["/core/engine.mpy"] = "0" * 64
    rec3 = Recorder(board=built)
    third = fl.flash("/dev/ttyACM7", fw, bd, None, build_dir=tmp_path / "b", runner=rec3,
                     python="py", ports=lambda: [])
    assert third.copied == ["/core/engine.mpy"] and len(rec3.calls) == 3
    assert rec3.calls[1][5:] == ["fs", "cp", "-f", str(tmp_path / "b" / "core" / "engine.mpy"),
                                 ":/core/engine.mpy"]


def test_flash_stops_at_first_failure(tmp_path: Path) -> None:
    fw, bd = _tree(tmp_path)
    rec = Recorder(fail_at=1)
    provisioned: list[str] = []
    with pytest.raises(fl.FlashError, match="copying files.*raw repl"):
        fl.flash("/dev/ttyACM0", fw, bd, provisioned.append, build_dir=tmp_path / "b",
                 runner=rec, ports=lambda: [])
    assert len(rec.calls) == 2 and provisioned == [], "no provisioning or reset after a failure"
    with pytest.raises(fl.FlashError, match="no serial port"):
        fl.flash("  ", fw, bd, build_dir=tmp_path / "b", runner=rec)


def test_prepare_script_runs_on_micropython(tmp_path: Path) -> None:
    """The script flash() runs on the board, on the real interpreter against a scratch tree:
    stale twins go, directories appear, each file's SHA-256 (or '-') is printed."""
    d = tmp_path / "dev"
    d.mkdir()
    (d / "app.mpy").write_bytes(b"hello")
    (d / "app.py").write_text("stale")
    (d / "big.mpy").write_bytes(bytes(range(256)) * 9)  # several 512-byte chunks
    files = [str(d / "app.mpy"), str(d / "big.mpy"), str(d / "core" / "x.mpy")]
    script = fl.prepare_script(files, stale=[str(d / "app.py"), str(d / "gone.py")],
                               dirs=[str(d / "core"), str(d / "core" / "sub")])
    proc = subprocess.run(micropython_cmd() + ["-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import hashlib
    assert fl.parse_hashes(proc.stdout) == {
        str(d / "app.mpy"): hashlib.sha256(b"hello").hexdigest(),
        str(d / "big.mpy"): hashlib.sha256(bytes(range(256)) * 9).hexdigest()}
    assert f"{fl.HASH_TAG} - {d / 'core' / 'x.mpy'}" in proc.stdout
    assert not (d / "app.py").exists() and (d / "core" / "sub").is_dir()
