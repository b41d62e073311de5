"""`make flash` after the reset, without a board: the USB port going away and coming back (same
path, or a new node with the same serial number, or never), mpremote failing, a second run
copying nothing, and the serial link turning every pyserial/OS failure into one LinkFailed.

A fake world stands in for the hardware: a fake mpremote (the runner flash() calls) keeps a
device file system, a fake pyserial port answers protocol frames like the firmware, and
device paths are real files under tmp_path so os.path.exists sees them come and go."""
from __future__ import annotations

import ast
import errno
import functools
import hashlib
import json
import os
import subprocess
import termios
import threading
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import serial

from pumpctl import flash as fl
from pumpctl import flash_ports
from pumpctl import frames
from pumpctl import link as link_mod
from pumpctl.errors import LinkFailed
from pumpctl.link import Link, LinkLost, PortUnavailable

SERIAL_NUMBER = "E6605838832F1A2B"
VID, PID = 0x2E8A, 0x0005
HUNG_UP = "device reports readiness to read but returned no data (device disconnected or multiple access on port?)"


class FakePort:
    """What serial.tools.list_ports.comports() lists for a USB serial device."""

    def __init__(self, device: str, serial_number: Optional[str] = SERIAL_NUMBER,
                 location: str = "1-2:1.0") -> None:
        self.device = device
        self.serial_number = serial_number
        self.vid, self.pid = VID, PID
        self.location = location


class World:
    """One fake Pico: its file system, its USB node (a file under tmp), its firmware."""

    def __init__(self, tmp: Path, *, usb: bool = True) -> None:
        self.tmp = tmp
        self.node: Optional[Path] = tmp / "ttyACM0"
        self.node.write_text("")
        self.usb = usb
        self.fs: dict[str, bytes] = {}
        self.dirs: set[str] = set()
        self.generation = 0          # bumps at each reset: older connections hang up
        self.up_at = 0.0             # monotonic time the firmware answers from
        self.mode = "firmware"       # after the next boot: firmware | repl | silent
        self.provisioned = False
        self.keys: Optional[dict] = None
        self.calls: list[list[str]] = []
        self.copied: list[str] = []
        # what the next reset does
        self.back_as: Optional[str] = "ttyACM0"   # node name after the reset, None: never back
        self.down_s = 0.3
        self.boot_s = 0.2
        self.fail: Optional[tuple[str, int, str, str]] = None  # (command word, rc, stdout, stderr)
        self.timers: list[threading.Timer] = []

    # ---- list_ports
    def comports(self) -> list[FakePort]:
        if not self.usb or self.node is None or not self.node.exists():
            return []
        return [FakePort(str(self.node))]

    # ---- the board's reset: the node goes, and (maybe) comes back
    def reset(self) -> None:
        self.generation += 1
        self.up_at = float("inf")
        if self.node is not None and self.node.exists():
            self.node.unlink()
        self.node = None

        def back() -> None:
            assert self.back_as is not None
            self.node = self.tmp / self.back_as
            self.node.write_text("")
            self.up_at = time.monotonic() + self.boot_s

        if self.back_as is not None:
            t = threading.Timer(self.down_s, back)
            t.daemon = True
            t.start()
            self.timers.append(t)

    # ---- fake mpremote (the runner)
    def __call__(self, cmd: list[str], **kw: Any) -> "subprocess.CompletedProcess[str]":
        self.calls.append(cmd)
        assert cmd[1:4] == ["-m", "mpremote", "connect"] and kw.get("timeout")
        port, rest = cmd[4], cmd[5:]
        if self.fail and self.fail[0] in rest:
            _, rc, out, err = self.fail
            return subprocess.CompletedProcess(cmd, rc, out, err)
        if not os.path.exists(port):
            return subprocess.CompletedProcess(
                cmd, 1, "", f"mpremote: failed to access {port} (it may be in use by another program)\n")
        out = []
        for sub in " ".join(rest).split(" + ") if rest[0] == "fs" else []:
            _fs, _cp, force, src, dest = sub.split(" ")
            assert (_fs, _cp, force) == ("fs", "cp", "-f") and dest.startswith(":")
            parent = dest[1:].rsplit("/", 1)[0]
            if parent and parent not in self.dirs:
                return subprocess.CompletedProcess(cmd, 1, "", "mpremote: cp: No such file or directory.\n")
            self.fs[dest[1:]] = Path(src).read_bytes()
            self.copied.append(dest[1:])
            out.append(f"cp {src} {dest}")
        if rest[0] == "exec":
            stale, dirs, files = [ast.literal_eval(n.iter) for n in ast.walk(ast.parse(rest[1]))
                                  if isinstance(n, ast.For) and isinstance(n.iter, ast.List)]
            for p in stale:
                self.fs.pop(p, None)
            self.dirs.update(dirs)
            for p in files:
                h = hashlib.sha256(self.fs[p]).hexdigest() if p in self.fs else "-"
                out.append(f"{fl.HASH_TAG} {h} {p}")
        if rest == ["reset"]:
            self.reset()
        return subprocess.CompletedProcess(cmd, 0, "\r\n".join(out) + "\r\n", "")

    # ---- the firmware, answering one frame
    def answer(self, req: dict) -> Optional[bytes]:
        if self.mode == "repl":  # echoes the line, then fails to run it as Python
            return frames.encode(req).rstrip(b"\n") + b"\r\nSyntaxError: invalid syntax\r\n>>> \r\n"
        if self.mode == "silent":
            return None
        d: dict[str, Any]
        if req["c"] == "identify":
            d = {"device_id": "PICO-" + SERIAL_NUMBER, "board": "pico",
                 "auth": {"provisioned": self.provisioned}}
        elif req["c"] == "provision" and self.mode == "refuse-keys":
            return frames.encode({"s": req["s"], "ok": False, "e": {"code": "BAD_ARGS", "msg": "keys must be 64 hex digits"}})
        elif req["c"] == "provision":
            self.provisioned, self.keys, d = True, req["a"]["keys"], {}
        else:
            return frames.encode({"s": req["s"], "ok": False, "e": {"code": "UNKNOWN", "msg": "?"}})
        return frames.encode({"s": req["s"], "ok": True, "d": d})


class FakeSerial:
    """pyserial's Serial for the World's node: hangs up after a reset, answers frames once the
    firmware is up (requests sent while it boots wait in the buffer, as on a real board)."""
    world: World

    def __init__(self, port: str, *a: Any, **kw: Any) -> None:
        if not os.path.exists(port):
            raise serial.SerialException(errno.ENOENT, f"could not open port {port}: No such file or directory")
        self.gen = self.world.generation
        self.rx = b""
        self.pending: list[bytes] = []

    def _check(self) -> None:
        if self.gen != self.world.generation:
            raise serial.SerialException(HUNG_UP)

    def _serve(self) -> None:
        if time.monotonic() >= self.world.up_at:
            for line in self.pending:
                req = frames.parse(line.rstrip(b"\n"))
                if req is not None:
                    self.rx += self.world.answer(req) or b""
            self.pending = []

    @property
    def in_waiting(self) -> int:
        self._check()
        self._serve()
        return len(self.rx)

    def read(self, n: int = 1) -> bytes:
        self._check()
        self._serve()
        if not self.rx:
            time.sleep(0.01)
            return b""
        out, self.rx = self.rx[:n], self.rx[n:]
        return out

    def write(self, data: bytes) -> int:
        self._check()
        self.pending.append(data)
        return len(data)

    def flush(self) -> None:
        self._check()

    def reset_input_buffer(self) -> None:
        self._check()

    def close(self) -> None:
        pass


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    w = World(tmp_path)
    FakeSerial.world = w
    monkeypatch.setattr(link_mod.serial, "Serial", FakeSerial)
    monkeypatch.setattr(flash_ports, "comports", w.comports)
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))
    yield w
    for t in w.timers:
        t.cancel()


def _tree(tmp: Path) -> tuple[Path, Path]:
    fw = tmp / "fw"
    (fw / "core").mkdir(parents=True, exist_ok=True)
    (fw / "main.py").write_text("print('main')\n")
    (fw / "app.py").write_text("X = 1\n")
    (fw / "core" / "engine.py").write_text("def f():\n    return 2\n")
    bd = tmp / "bd"
    bd.mkdir(exist_ok=True)
    (bd / "__init__.py").write_text("")
    (bd / "pins.py").write_text("STEP = 2\n")
    return fw, bd


def _flash(world: World, tmp: Path, **kw: Any) -> fl.FlashResult:
    fw, bd = _tree(tmp)
    return fl.flash(str(tmp / "ttyACM0"), fw, bd, build_dir=tmp / "build", runner=world,
                    python="py", ports=world.comports, **kw)


def _main(world: World, tmp: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """main() as `make flash` runs it, on the fake world and a small firmware tree."""
    fw, bd = _tree(tmp)
    monkeypatch.setattr(fl, "flash", functools.partial(fl.flash, firmware_dir=fw, board_dir=bd,
                                                       build_dir=tmp / "build", runner=world, python="py",
                                                       ports=world.comports))
    return fl.main([str(tmp / "ttyACM0"), *args])


# ---- the port after the reset ---------------------------------------------------------------------
def test_port_vanishes_and_comes_back_under_the_same_path(world: World, tmp_path: Path) -> None:
    said: list[str] = []
    res = _flash(world, tmp_path, progress=said.append)
    assert world.node is None, "the reset took the node away"
    t0 = time.monotonic()
    boot = fl.after_reset(res.port, 5, identity=res.identity, node_before=res.node_before,
                          progress=said.append, started=res.reset_s)
    assert time.monotonic() - t0 < 3
    assert boot.port == res.port and boot.device_id == "PICO-" + SERIAL_NUMBER
    assert boot.message == f"PICO-{SERIAL_NUMBER} provisioned; keys saved in your keystore"
    assert world.provisioned and world.keys
    assert any("Waiting for the board" in s for s in said) and any("is back on" in s for s in said)
    # Once more: the board holds keys the keystore has, so provisioning changes nothing.
    keys = dict(world.keys)
    res2 = _flash(world, tmp_path)
    boot2 = fl.after_reset(res2.port, 5, identity=res2.identity, node_before=res2.node_before)
    assert boot2.message == f"PICO-{SERIAL_NUMBER} is already provisioned; its keys are in your keystore"
    assert world.keys == keys


def test_a_symlink_that_follows_a_new_pty(world: World, tmp_path: Path) -> None:
    """The emulator's --link: the path stays a symlink, re-made to point at a new pty."""
    link = tmp_path / "tty"
    world.usb = False
    os.symlink(world.node, link)
    res = fl.flash(str(link), *_tree(tmp_path), build_dir=tmp_path / "build", runner=_LinkRunner(world, link),
                   python="py", ports=world.comports)
    assert res.identity is None, "a pty has no USB identity"
    boot = fl.after_reset(str(link), 5, node_before=res.node_before, started=res.reset_s)
    assert boot.port == str(link) and os.path.realpath(link) == str(tmp_path / "pts2")


class _LinkRunner:
    """The emulator's reset: a new pty (pts2) and the symlink re-made to it, right away."""

    def __init__(self, world: World, link: Path) -> None:
        self.world, self.link = world, link

    def __call__(self, cmd: list[str], **kw: Any) -> "subprocess.CompletedProcess[str]":
        if cmd[5:] != ["reset"]:
            return self.world(cmd, **kw)
        self.world.back_as = "pts2"
        self.world.down_s = 0.05
        self.world.reset()
        time.sleep(0.1)
        self.link.unlink()
        os.symlink(self.world.tmp / "pts2", self.link)
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_port_comes_back_as_a_new_node_with_the_same_serial_number(world: World, tmp_path: Path) -> None:
    world.back_as = "ttyACM1"
    res = _flash(world, tmp_path)
    assert res.identity == {"device": str(tmp_path / "ttyACM0"), "serial_number": SERIAL_NUMBER,
                            "vid": VID, "pid": PID, "location": "1-2:1.0"}
    said: list[str] = []
    boot = fl.after_reset(res.port, 5, identity=res.identity, node_before=res.node_before,
                          progress=said.append)
    assert boot.port == str(tmp_path / "ttyACM1")
    assert "provisioned" in boot.message and world.provisioned
    assert any("back as " + str(tmp_path / "ttyACM1") in s and SERIAL_NUMBER in s for s in said), said


def test_another_board_on_a_new_node_is_not_taken_for_this_one(world: World, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    world.back_as = "ttyACM1"
    res = _flash(world, tmp_path)
    other = lambda: [FakePort(str(tmp_path / "ttyACM1"), serial_number="0000000000000000")]
    with pytest.raises(fl.FlashError, match="did not come back after the reset within 0.6 s"):
        fl.after_reset(res.port, 0.6, identity=res.identity, node_before=res.node_before, ports=other)
    assert not world.provisioned


def test_board_never_comes_back(world: World, tmp_path: Path) -> None:
    world.back_as = None
    res = _flash(world, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(fl.FlashError) as e:
        fl.after_reset(res.port, 0.8, identity=res.identity, node_before=res.node_before)
    took = time.monotonic() - t0
    assert took < 2.5, took
    msg = str(e.value)
    assert msg.startswith(f"the board on {res.port} (USB 2e8a:0005, serial number {SERIAL_NUMBER}) "
                          "did not come back after the reset within 0.8 s: check the USB cable"), msg
    assert "BOOTSEL" in msg and "\n" not in msg


def test_firmware_refusing_the_keys_is_one_sentence(world: World, tmp_path: Path) -> None:
    world.mode = "refuse-keys"
    res = _flash(world, tmp_path)
    with pytest.raises(fl.FlashError, match=r"^the firmware on \S+ refused the new keys: keys must be 64 hex "
                                            r"digits \[BAD_ARGS\]$"):
        fl.after_reset(res.port, 5, identity=res.identity, node_before=res.node_before)
    assert not world.provisioned


def test_board_comes_back_then_goes_away_again(world: World, tmp_path: Path) -> None:
    world.mode = "silent"
    res = _flash(world, tmp_path)
    def unplug() -> None:
        world.back_as = None
        world.reset()
    t = threading.Timer(0.6, unplug)
    t.start()
    world.timers.append(t)
    with pytest.raises(fl.FlashError, match=f"the board came back on {res.port} after the reset but went "
                                            "away again within 1.2 s"):
        fl.after_reset(res.port, 1.2, identity=res.identity, node_before=res.node_before)


@pytest.mark.parametrize("mode, hint", [("repl", "MicroPython REPL"), ("silent", "printed nothing")])
def test_board_answers_but_no_firmware_replies(world: World, tmp_path: Path, mode: str, hint: str) -> None:
    world.mode = mode
    res = _flash(world, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(fl.FlashError) as e:
        fl.after_reset(res.port, 1.0, identity=res.identity, node_before=res.node_before)
    assert time.monotonic() - t0 < 3
    msg = str(e.value)
    assert msg.startswith(f"the board on {res.port} answered after the reset but no pump firmware "
                          "replied within 1 s:"), msg
    assert hint in msg and f"mpremote connect {res.port} repl" in msg


def test_main_text_and_json(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(world, tmp_path, monkeypatch, "--timeout", "5") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == f"Copied 5 files to {tmp_path / 'ttyACM0'}; reset the board.", out
    assert lines[1].startswith("The board came back and its firmware answered ")
    assert lines[2] == f"PICO-{SERIAL_NUMBER} provisioned; keys saved in your keystore."
    assert "Waiting for the board" in err and "Traceback" not in out + err
    # The second run copies nothing and keeps the keys.
    assert _main(world, tmp_path, monkeypatch, "--json", "--timeout", "5") == 0
    out, err = capsys.readouterr()
    rep = json.loads(out)
    assert err == "", "--json: no progress text"
    assert rep["port"] == rep["port_after_reset"] == str(tmp_path / "ttyACM0")
    assert rep["copied"] == 0 and rep["up_to_date"] == len(rep["files"]) == 5
    assert rep["provisioned"] == f"PICO-{SERIAL_NUMBER} is already provisioned; its keys are in your keystore"


def test_main_board_never_comes_back_is_one_sentence(world: World, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    world.back_as = None
    t0 = time.monotonic()
    assert _main(world, tmp_path, monkeypatch, "--timeout", "0.5") == 1
    assert time.monotonic() - t0 < 5
    out, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last.startswith("flash: the board on ") and "did not come back after the reset within 0.5 s" in last
    assert "Traceback" not in out + err
    assert _main(world, tmp_path, monkeypatch, "--timeout", "0.5", "--json") == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["code"] == "FLASH" and err == ""


# ---- a second run copies nothing -------------------------------------------------------------------
def test_second_run_copies_nothing(world: World, tmp_path: Path) -> None:
    def flash_and_boot() -> fl.FlashResult:
        res = _flash(world, tmp_path)
        fl.after_reset(res.port, 5, identity=res.identity, node_before=res.node_before)
        return res

    first = flash_and_boot()
    assert first.copied == list(first) and first.up_to_date == []
    assert sorted(world.copied) == list(first)
    world.calls.clear()
    world.copied.clear()
    second = flash_and_boot()
    assert second.copied == [] and second.up_to_date == list(first)
    assert world.copied == []
    assert [c[5] for c in world.calls] == ["exec", "reset"], "no copy command at all"
    assert "os.remove" in world.calls[0][6], "the stale-file cleanup still runs"
    # A stale .py twin left on the board is removed, and a changed file is the only one copied.
    world.fs["/core/engine.py"] = b"old source"
    world.fs["/app.mpy"] = b"corrupt"
    third = flash_and_boot()
    assert third.copied == ["/app.mpy"] and "/core/engine.py" not in world.fs


# ---- mpremote failing -------------------------------------------------------------------------------
TRACEBACK = ("Traceback (most recent call last):\n  File \"mpremote/main.py\", line 1, in main\n"
             "mpremote.transport.TransportError: could not enter raw repl\n")


@pytest.mark.parametrize("fail, expect", [
    (("exec", 1, "", "mpremote: failed to access /dev/x (it may be in use by another program)\n"),
     "checking the files on the board on {port} failed (mpremote exit 1): failed to access /dev/x "
     "(it may be in use by another program); the port is in use by another program"),
    (("exec", 1, "", TRACEBACK),
     "checking the files on the board on {port} failed (mpremote exit 1): TransportError: could not enter "
     "raw repl; the device does not answer as MicroPython"),
    (("exec", 1, "Traceback (most recent call last):\r\n  File \"<stdin>\", line 9\r\nOSError: [Errno 28] ENOSPC\r\n", ""),
     "checking the files on the board on {port} failed (mpremote exit 1): OSError: [Errno 28] ENOSPC"),
    (("fs", 1, "cp x :/app.mpy\n", "mpremote: cp: Errno 28 No space left on device.\n"),
     "copying files on {port} failed (mpremote exit 1): cp: Errno 28 No space left on device."),
    (("exec", 1, "", "/usr/bin/python: No module named mpremote\n"),
     "checking the files on the board on {port} failed (mpremote exit 1): /usr/bin/python: No module named "
     "mpremote; mpremote is not installed"),
])
def test_mpremote_failure_is_one_sentence(world: World, tmp_path: Path, fail: tuple, expect: str) -> None:
    world.fail = fail
    with pytest.raises(fl.FlashError) as e:
        _flash(world, tmp_path)
    assert str(e.value).startswith(expect.format(port=tmp_path / "ttyACM0")), str(e.value)
    assert "\n" not in str(e.value)


def test_no_such_port(world: World, tmp_path: Path) -> None:
    world.node.unlink()
    with pytest.raises(fl.FlashError) as e:
        _flash(world, tmp_path)
    assert f"there is no serial port {tmp_path / 'ttyACM0'}: is the board plugged in" in str(e.value)


def test_mpremote_timing_out(world: World, tmp_path: Path) -> None:
    def slow(cmd: list[str], **kw: Any) -> Any:
        raise subprocess.TimeoutExpired(cmd, kw["timeout"], output=b"cp a :b\n", stderr=b"")
    fw, bd = _tree(tmp_path)
    with pytest.raises(fl.FlashError) as e:
        fl.flash("/dev/ttyACM3", fw, bd, build_dir=tmp_path / "b", runner=slow, timeout=7, ports=lambda: [])
    assert str(e.value).startswith("checking the files on the board on /dev/ttyACM3 failed: mpremote did not "
                                   "finish within 7 s and was stopped (last output: cp a :b)"), str(e.value)


def test_reset_that_loses_the_port_midway_is_fine(world: World, tmp_path: Path) -> None:
    """mpremote may notice the board resetting before it said goodbye: that is the point."""
    world.fail = ("reset", 1, "", "mpremote: Error with transport:\n[Errno 5] Input/output error\n")
    res = _flash(world, tmp_path)
    assert res.copied


def test_main_mpremote_failure_and_interrupt(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    world.fail = ("exec", 1, "", TRACEBACK)
    assert _main(world, tmp_path, monkeypatch) == 1
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1].startswith("flash: checking the files on the board on ")
    assert "Traceback" not in out + err

    def interrupted(cmd: list[str], **kw: Any) -> Any:
        raise KeyboardInterrupt
    world.fail = None
    monkeypatch.setattr(World, "__call__", lambda self, cmd, **kw: interrupted(cmd))
    assert fl.main([str(tmp_path / "ttyACM0")]) == 130
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1].startswith("flash: interrupted")
    assert "Traceback" not in out + err


# ---- the link: every pyserial/OS failure is one LinkFailed ------------------------------------------
class BrokenSerial:
    """A port whose `what` operation fails with `exc`."""
    what = "read"
    exc: BaseException = serial.SerialException(HUNG_UP)

    def __init__(self, *a: Any, **kw: Any) -> None:
        self.replies = b""

    def _maybe(self, op: str) -> None:
        if op == self.what:
            raise self.exc

    def reset_input_buffer(self) -> None:
        self._maybe("reset_input_buffer")

    @property
    def in_waiting(self) -> int:
        self._maybe("in_waiting")
        return 0

    def read(self, n: int = 1) -> bytes:
        self._maybe("read")
        time.sleep(0.01)
        return b""

    def write(self, data: bytes) -> int:
        self._maybe("write")
        return len(data)

    def flush(self) -> None:
        self._maybe("flush")

    def close(self) -> None:
        pass


@pytest.mark.parametrize("what, exc, words", [
    ("read", serial.SerialException(HUNG_UP), "went away while reading from it (it was reset or unplugged)"),
    ("read", OSError(errno.EIO, "Input/output error"), "went away while reading from it"),
    ("in_waiting", OSError(errno.EIO, "Input/output error"), "went away while reading from it"),
    ("write", serial.SerialException("write failed: [Errno 5] Input/output error"), "went away while sending to it"),
    ("write", serial.SerialTimeoutException("Write timeout"), "stopped taking data while sending to it"),
    ("flush", termios.error(5, "Input/output error"), "went away while sending to it"),
    ("reset_input_buffer", termios.error(5, "Input/output error"), "went away while connecting"),
])
def test_link_turns_serial_failures_into_link_errors(monkeypatch: pytest.MonkeyPatch, what: str,
                                                     exc: BaseException, words: str) -> None:
    monkeypatch.setattr(BrokenSerial, "what", what)
    monkeypatch.setattr(BrokenSerial, "exc", exc)
    monkeypatch.setattr(link_mod.serial, "Serial", BrokenSerial)
    with pytest.raises(LinkFailed) as e:
        with Link("/dev/ttyACM0", timeout=0.3, retries=1) as lk:
            lk.request("identify")
    assert isinstance(e.value, LinkLost) and e.value.code == "LINK"
    assert e.value.message == f"the pump on /dev/ttyACM0 {words}" or \
        e.value.message.startswith(f"the pump on /dev/ttyACM0 {words}"), e.value.message
    assert e.value.__suppress_context__, "no chained pyserial traceback"


def test_link_open_and_silence_are_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PortUnavailable, match="cannot open " + str(tmp_path / "nope")):
        Link(str(tmp_path / "nope"))
    monkeypatch.setattr(BrokenSerial, "what", "nothing")
    monkeypatch.setattr(link_mod.serial, "Serial", BrokenSerial)
    t0 = time.monotonic()
    with pytest.raises(LinkFailed, match="no reply from the pump on /dev/ttyACM0 to 'identify' after 2 tries") as e:
        Link("/dev/ttyACM0", timeout=0.2, retries=1).request("identify")
    assert not isinstance(e.value, LinkLost) and time.monotonic() - t0 < 1.5


def test_link_request_still_works_and_a_reset_hangs_it_up(world: World) -> None:
    with Link(str(world.node), timeout=1, retries=0) as lk:
        assert lk.request("identify")["device_id"] == "PICO-" + SERIAL_NUMBER
        world.back_as = None
        world.reset()  # the board goes: the open link hangs up
        with pytest.raises(LinkLost, match="went away while"):
            lk.request("identify")
    with pytest.raises(PortUnavailable, match="cannot open"):
        Link(str(world.tmp / "ttyACM0"))


def test_link_takes_an_echo_of_its_request_for_noise_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A REPL (or a terminal) echoes the frame it is sent: that is not the pump refusing it."""
    class Echo(BrokenSerial):
        what = "nothing"

        def write(self, data: bytes) -> int:
            self.replies += data.rstrip(b"\n") + b"\r\n>>> \r\n"
            return len(data)

        @property
        def in_waiting(self) -> int:
            return len(self.replies)

        def read(self, n: int = 1) -> bytes:
            out, self.replies = self.replies[:n], self.replies[n:]
            if not out:
                time.sleep(0.01)
            return out

    monkeypatch.setattr(link_mod.serial, "Serial", Echo)
    lk = Link("/dev/ttyACM0", timeout=0.2, retries=0)
    with pytest.raises(LinkFailed, match="no reply"):
        lk.request("identify")
    assert any(n.startswith(b"$") for n in lk.noise) and any(b">>>" in n for n in lk.noise)
