"""Tests of the emulated Pico itself (pico-emu/pico-emu.mjs) on the official MicroPython rp2
firmware: what its control channel reports (PIO edges, PWM, pads, time), what it drives (pins,
ADC, speed, reset), its flash image surviving SIGKILL, and the flash chip's unique ID.

Code runs on the board over the raw REPL (as mpremote exec does). One emulator serves most tests
(module scope); it is killed in teardown, also on failure. Skips, with one line, when there is
no firmware image or no Node.js 18+. Research and education only; never for human use.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMU = ROOT / "pico-emu"
UNIQUE_ID = "0123456789ABCDEF"


from pumpctl import pico, procs  # noqa: E402  (what the emulator needs; one control-socket line)

# The same check and sentence as every Pico test and `pumpctl pico start`.
_WHY = pico.missing()
if _WHY:
    pytest.skip(_WHY, allow_module_level=True)
UF2 = pico.uf2_path()

import serial  # noqa: E402  (pyserial: only needed once we know the emulator can run)



# ---- one emulated board -------------------------------------------------------------------
class Emu:
    """pico-pty.py + pico-emu.mjs in their own session, flash image FILE in directory d."""

    def __init__(self, d: Path, *extra: str) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.d = d
        self.link = d / "tty"
        self.sock = str(d / "ctl.sock")
        self.fs = d / "flash.img"
        self.log = d / "emu.log"
        self.repl: Optional[Repl] = None
        self.cmd = [sys.executable, str(EMU / "pico-pty.py"), "--link", str(self.link), "--log", str(self.log), "--",
                    "--uf2", str(UF2), "--fs", str(self.fs), "--control", self.sock, *extra]
        self.start()

    def start(self) -> None:
        """Start (again, after kill/stop: same flash image and sidecar) and wait until it answers."""
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the emulator exited at start:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                if self.link.exists():
                    self.ctl("time")
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"the emulator did not come up:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def ctl(self, line: str) -> Any:
        """One control command; its reply parsed from JSON (else the text: "ok", `stats`)."""
        buf = procs.ask(self.sock, line.encode("latin1"), 10)
        text = buf.decode().strip()
        assert "\n" not in text, f"{line!r} got more than one line: {text!r}"
        return json.loads(text) if text.startswith("{") else text

    def board(self) -> "Repl":
        if self.repl is None:
            self.repl = Repl(str(self.link))
        return self.repl

    def run(self, code: str, timeout: float = 20) -> str:
        return self.board().exec(code, timeout)

    def pty(self) -> str:
        return os.path.realpath(self.link)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole session (pty wrapper and node): SIGKILL is a power cut."""
        if self.repl:
            self.repl.close()
            self.repl = None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


class Repl:
    """The MicroPython raw REPL on a serial port (what mpremote exec does)."""

    def __init__(self, port: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.pending = b""
            try:
                self.s = serial.Serial(port, 115200, timeout=0.05)
                self.s.write(b"\r\x03\x03")
                time.sleep(0.05)
                self.s.reset_input_buffer()
                self.pending = b""
                self.s.write(b"\x01")
                self._until(b"raw REPL; CTRL-B to exit\r\n>", 3)
                return
            except (OSError, serial.SerialException, TimeoutError):
                try:
                    self.s.close()
                except Exception:
                    pass
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def _until(self, end: bytes, timeout: float) -> bytes:
        """Bytes up to and including `end`; what came after stays for the next call."""
        deadline = time.monotonic() + timeout
        while end not in self.pending:
            c = self.s.read(max(1, min(self.s.in_waiting, 4096)))
            self.pending += c
            if not c and time.monotonic() > deadline:
                raise TimeoutError(f"waiting for {end!r}; got {self.pending[-300:]!r}")
        i = self.pending.index(end) + len(end)
        out, self.pending = self.pending[:i], self.pending[i:]
        return out

    def exec(self, code: str, timeout: float = 20) -> str:
        self.s.write(code.encode() + b"\x04")
        self._until(b"OK", timeout)
        out = self._until(b"\x04", timeout)[:-1]
        err = self._until(b"\x04", timeout)[:-1]
        self._until(b">", timeout)
        if err:
            raise AssertionError(f"the board raised:\n{err.decode(errors='replace')}")
        return out.decode(errors="replace")

    def close(self) -> None:
        try:
            self.s.close()
        except Exception:
            pass


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emu]:
    e = Emu(tmp_path_factory.mktemp("emu"))
    try:
        yield e
    finally:
        e.kill()


def _wait(what: str, fn: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last {v!r})")
        time.sleep(0.05)


# ---- time, errors, stats --------------------------------------------------------------------
def test_time_counts_emulated_ns_from_power_on(emu: Emu) -> None:
    a = emu.ctl("time")
    assert a["boots"] == 1 and a["last_reset"] == "power_on", a
    assert a["t_ns"] == a["boot_ns"] > 0, a
    emu.run("import time\ntime.sleep_ms(50)")
    b = emu.ctl("time")
    assert b["t_ns"] - a["t_ns"] >= 50e6, (a, b)


def test_malformed_control_commands_answer_one_json_error_and_the_board_lives(emu: Emu) -> None:
    bad = ["bogus", "pin", "pin 99 1", "pin 2 x", "pin -1 0", "adc 9 1", "adc 0 99999", "adc 0", "edges", "edges x",
           "edges 30", "pwm 30", "pwm", "clear 40", "speed -1", "speed fast", "uart 7 hi", "uart", "time now",
           "levels 3", "reset now", "stats yaml", "\xff\xfe\x01"]
    for line in bad:
        r = emu.ctl(line)
        assert isinstance(r, dict) and isinstance(r.get("error"), str) and r["error"], (line, r)
    assert emu.ctl("pin 16 z") == "ok" and emu.ctl("adc 1 0") == "ok" and emu.ctl("uart 1 hello") == "ok"
    assert emu.run("print(6 * 7)").strip() == "42"


def test_stats_text_and_json(emu: Emu) -> None:
    assert emu.ctl("stats").startswith("emulated ")
    st = emu.ctl("stats json")
    for k in ("t_ns", "emulated_s", "wall_s", "busy_cycles", "effective_mhz", "erases", "programs", "reboots",
              "bytes_in", "bytes_out", "fs_writes", "fs_write_ms"):
        assert k in st, (k, st)
    assert st["busy_cycles"] > 0 and st["effective_mhz"] > 0 and st["bytes_out"] > 0, st


# ---- pins -----------------------------------------------------------------------------------
PULSES = """
import rp2, machine, time
@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def wide():         # SM at 2 kHz: high 2 cycles (1 ms), period 5 cycles (2.5 ms): 400 pulses/s
    pull(block)         .side(0)
    mov(x, osr)         .side(0)
    label("loop")
    nop()               .side(1) [1]
    jmp(x_dec, "loop")  .side(0) [2]
@rp2.asm_pio(sideset_init=rp2.PIO.OUT_LOW)
def narrow():       # one PIO cycle high, one low
    pull(block)         .side(0)
    mov(x, osr)         .side(0)
    label("loop")
    nop()               .side(1)
    jmp(x_dec, "loop")  .side(0)
def pulses(prog, freq, n, wait_ms):
    sm = rp2.StateMachine(0, prog, freq=freq, sideset_base=machine.Pin(2))
    sm.active(1)
    sm.put(n - 1)
    time.sleep_ms(wait_ms)
    sm.active(0)
    rp2.PIO(0).remove_program()
"""


def test_pio_side_set_pulses_on_gp2_are_all_counted(emu: Emu) -> None:
    emu.run(PULSES)
    emu.ctl("speed 0")  # the CPU sleeps meanwhile: emulated time as fast as it goes
    try:
        assert emu.ctl("clear 2") == {"ok": True}
        emu.run("pulses(wide, 2000, 1000, 2600)")
        e = emu.ctl("edges 2")
        assert (e["pin"], e["level"], e["rising"], e["falling"]) == (2, 0, 1000, 1000), {k: e[k] for k in e if k != "recent"}
        rec = e["recent"]
        assert len(rec) == 512 and [lv for _, lv in rec] == [1, 0] * 256
        rises = [t for t, lv in rec if lv == 1]
        widths = [b[0] - a[0] for a, b in zip(rec, rec[1:]) if a[1] == 1]
        assert all(abs((b - a) - 2_500_000) < 1000 for a, b in zip(rises, rises[1:])), "2.5 ms period"
        assert all(abs(w - 1_000_000) < 1000 for w in widths), "1 ms wide"
        # One PIO cycle at 125 MHz (8 ns): the narrowest pulse there is, counted all the same.
        emu.ctl("clear 2")
        emu.run("pulses(narrow, 125_000_000, 1000, 5)")
        e = emu.ctl("edges 2")
        assert (e["rising"], e["falling"]) == (1000, 1000)
        assert all(b[0] - a[0] == 8 for a, b in zip(e["recent"], e["recent"][1:])), "8 ns apart"
    finally:
        emu.ctl("speed 1")


def test_sio_output_shows_in_levels_and_edges(emu: Emu) -> None:
    emu.ctl("clear 14")
    emu.run("from machine import Pin\np14 = Pin(14, Pin.OUT, value=0)\np14.value(1)")
    lv = emu.ctl("levels")
    assert sorted(lv["pins"], key=int) == [str(n) for n in range(30)]
    assert lv["pins"]["14"] == {"func": "sio", "oe": True, "out": 1, "in": 1}, lv["pins"]["14"]
    e = emu.ctl("edges 14")
    assert (e["level"], e["rising"], e["falling"]) == (1, 1, 0) and e["recent"][-1][1] == 1
    assert e["recent"][-1][0] <= lv["t_ns"]
    emu.run("p14.value(0)")
    assert emu.ctl("edges 14")["falling"] == 1


def test_pin_driven_over_control_is_read_by_the_firmware(emu: Emu) -> None:
    emu.run("from machine import Pin\nb = Pin(16, Pin.IN, Pin.PULL_UP)")
    emu.ctl("clear 16")
    assert emu.run("print(b.value())").strip() == "1"  # the pull-up
    assert emu.ctl("pin 16 0") == "ok"
    assert emu.run("print(b.value())").strip() == "0"
    assert emu.ctl("levels")["pins"]["16"] == {"func": "sio", "oe": False, "out": 0, "in": 0}
    assert emu.ctl("pin 16 z") == "ok"
    assert emu.run("print(b.value())").strip() == "1"
    e = emu.ctl("edges 16")
    assert (e["falling"], e["rising"]) == (1, 1), e


def test_adc_raw_value_is_read_by_adc26(emu: Emu) -> None:
    assert emu.ctl("adc 0 1234") == "ok"
    v = int(emu.run("from machine import ADC\nprint(ADC(26).read_u16())"))
    assert v >> 4 == 1234, v
    assert emu.ctl("adc 0 0") == "ok"


def test_pwm_buzzer_frequency_duty_and_history(emu: Emu) -> None:
    emu.ctl("clear")
    emu.run("from machine import PWM, Pin\nimport time\nbz = PWM(Pin(15))\nbz.freq(2000)\nbz.duty_u16(32768)\n"
            "time.sleep_ms(20)")
    p = emu.ctl("pwm 15")
    assert (p["pin"], p["slice"], p["channel"], p["enabled"], p["sounding"]) == (15, 7, "B", True, True), p
    assert abs(p["freq_hz"] - 2000) < 0.1 and abs(p["duty"] - 0.5) < 0.001, p
    assert p["freq_hz"] == pytest.approx(125e6 / (p["div"] * (p["top"] + 1)))
    assert p["cc"] == round(0.5 * (p["top"] + 1)), p
    t_on, f_on, d_on = p["history"][-1]
    assert f_on == 2000.0 and abs(d_on - 0.5) < 0.001, p["history"]
    # The pad really toggles at 2 kHz, 50 %.
    rec = emu.ctl("edges 15")["recent"]
    rises = [t for t, lv in rec if lv == 1]
    assert len(rises) > 20 and all(abs((b - a) - 500_000) < 100 for a, b in zip(rises, rises[1:])), rises[:5]
    assert all(abs((b[0] - a[0]) - 250_000) < 100 for a, b in zip(rec, rec[1:]))
    emu.run("bz.duty_u16(0)")
    q = emu.ctl("pwm 15")
    assert q["sounding"] is False and q["duty"] == 0 and q["enabled"] is True, q
    t_off, f_off, d_off = q["history"][-1]
    assert (f_off, d_off) == (2000.0, 0) and t_off > t_on, q["history"]
    assert q["history"][:-1] == p["history"]
    emu.run("bz.deinit()")
    assert emu.ctl("pwm 15")["sounding"] is False
    assert emu.ctl("clear 15") == {"ok": True} and emu.ctl("pwm 15")["history"] == []


def test_speed_changes_idle_pacing_at_run_time(emu: Emu) -> None:
    try:
        assert emu.ctl("speed 0") == {"idle_speed": 0}
        w = time.monotonic()
        emu.run("import time\ntime.sleep_ms(5000)")
        assert time.monotonic() - w < 2.5, "5 s of sleep at speed 0"
        assert emu.ctl("speed 2.5") == {"idle_speed": 2.5}
        a, w = emu.ctl("time")["t_ns"], time.monotonic()
        time.sleep(0.5)
        rate = (emu.ctl("time")["t_ns"] - a) / 1e9 / (time.monotonic() - w)
        assert 1.8 < rate < 2.7, rate
    finally:
        assert emu.ctl("speed 1") == {"idle_speed": 1}
    w = time.monotonic()
    emu.run("time.sleep_ms(400)")
    assert time.monotonic() - w >= 0.38


# ---- identity, reset, power cut -------------------------------------------------------------
def test_unique_id_comes_from_the_uid_sidecar(emu: Emu) -> None:
    uid = (emu.fs.parent / (emu.fs.name + ".uid")).read_text().strip()
    assert re.fullmatch(r"[0-9A-F]{16}", uid), uid
    assert uid != "0" * 16
    assert emu.run("import machine\nprint(machine.unique_id().hex())").strip() == uid.lower()


def test_reset_gives_a_new_pty_and_a_second_boot(emu: Emu) -> None:
    before = emu.ctl("time")
    old = emu.pty()
    emu.board().close()
    emu.repl = None
    assert emu.ctl("reset") == {"ok": True}
    _wait("a new pty behind the link", lambda: emu.pty() != old and os.path.exists(emu.pty()))
    t = emu.ctl("time")
    assert (t["boots"], t["last_reset"]) == (2, "run_pin"), t
    assert t["t_ns"] - t["boot_ns"] >= before["t_ns"], ("t_ns goes on from the first boot", before, t)
    assert emu.run("import machine\nprint(machine.reset_cause() == machine.PWRON_RESET)").strip() == "True"


def _region_digest_on_board(emu: Emu) -> tuple[list[int], str]:
    out = emu.run(
        "import rp2, hashlib\nf = rp2.Flash()\nn = f.ioctl(4, 0)\nbs = f.ioctl(5, 0)\nE = b'\\xff' * bs\n"
        "b = bytearray(bs)\nused = []\nh = hashlib.sha256()\n"
        "for i in range(n):\n    f.readblocks(i, b)\n    if b != E:\n        used.append(i)\n        h.update(b)\n"
        "print(used, h.digest().hex())", timeout=60)
    used, digest = out.strip().rsplit(" ", 1)
    return json.loads(used), digest


def _region_digest_of_file(path: Path, bs: int = 4096) -> tuple[list[int], str]:
    data = path.read_bytes()
    used, h = [], hashlib.sha256()
    for i in range(len(data) // bs):
        blk = data[i * bs:(i + 1) * bs]
        if blk != b"\xff" * bs:
            used.append(i)
            h.update(blk)
    return used, h.hexdigest()


def test_flash_image_is_the_chips_flash_after_sigkill(emu: Emu) -> None:
    payload = os.urandom(3000).hex()
    emu.run(f"with open('cut.txt', 'w') as f:\n    f.write({payload!r})")
    uid = emu.run("import machine\nprint(machine.unique_id().hex())").strip()
    on_board = _region_digest_on_board(emu)
    st = emu.ctl("stats json")
    assert st["fs_writes"] > 0
    emu.kill(signal.SIGKILL)  # a power cut: nothing gets a chance to save
    assert _region_digest_of_file(emu.fs) == on_board, "the image file is not what the chip's flash held"
    # Plug it in again, same image and sidecar: the file and the board's identity are back.
    emu.start()
    assert emu.run("print(open('cut.txt').read() == %r)" % payload).strip() == "True"
    assert emu.run("import machine\nprint(machine.unique_id().hex())").strip() == uid
    assert emu.ctl("time")["boots"] == 1


def test_unique_id_option_overrides_and_makes_no_sidecar(tmp_path: Path) -> None:
    e = Emu(tmp_path / "b", "--unique-id", UNIQUE_ID)
    try:
        assert e.run("import machine\nprint(machine.unique_id().hex())").strip() == UNIQUE_ID.lower()
        assert not (tmp_path / "b" / "flash.img.uid").exists()
        assert e.fs.stat().st_size == 1408 * 1024  # created at start, erased
    finally:
        e.kill()
