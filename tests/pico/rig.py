"""Helpers for the Pico tests: one emulated board as the tests see it, polling, make flash."""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import api, pico  # noqa: E402
from pumpctl.errors import PumpctlError  # noqa: E402
from pumpctl.link import Link  # noqa: E402

UNIQUE_ID = "E6605838832F1A2B"   # the emulated flash chip's id: device PICO-E6605838832F1A2B
DEVICE = "PICO-" + UNIQUE_ID
CAL_PL = 31250                   # the board's nominal 31.25 nL per step, stored as its calibration
SOAK = bool(os.environ.get("PICO_SOAK"))  # `make pico-soak`: the long campaigns


class Board:
    """One emulated Pico with the pump firmware, as the tests see it."""

    def __init__(self, info: pico.PicoInfo) -> None:
        self.info = info
        self.boot_s = 0.0  # wall seconds from starting the emulator to the first answer

    @property
    def port(self) -> str:
        return self.info.port

    def ctl(self, line: str) -> Any:
        return pico.control(self.info, line)

    def edges(self, gpio: int) -> dict[str, Any]:
        return self.ctl(f"edges {gpio}")

    def level(self, gpio: int) -> int:
        p = self.ctl("levels")["pins"][str(gpio)]
        return p["out"] if p["oe"] else p["in"]

    def t_ns(self) -> int:
        return self.ctl("time")["t_ns"]

    def speed(self, x: float) -> None:
        pico.set_speed(self.info, x)

    @contextlib.contextmanager
    def flat_out(self, then: float) -> Iterator[None]:
        """Emulated time as fast as it goes (speed 0) while waiting, then speed `then`: for a
        test whose figures are all read in the Pico's own time, so the pace changes none."""
        self.speed(0)
        try:
            yield
        finally:
            self.speed(then)

    def pump(self, role: str = "clinician", timeout: float = 20.0) -> api.Pump:
        return api.connect(port=self.port, timeout=timeout, role=role)

    def request(self, cmd: str, args: Optional[dict] = None, role: str = "clinician") -> dict[str, Any]:
        with self.pump(role) as p:
            return p.link.request(cmd, args)

    def wait_firmware(self, pico_s: float = 30.0, wall_cap: float = 600.0) -> float:
        """Wait until the pump firmware answers identify (pico.wait_firmware: a budget in the
        Pico's own time); returns the wall seconds it took."""
        try:
            return pico.wait_firmware(self.info, pico_s, wall_cap)
        except pico.PicoError as e:
            raise AssertionError(str(e)) from None

    def time_sync(self, at: Optional[dt.datetime] = None) -> dict[str, Any]:
        with self.pump() as p:
            return p.time_sync(at)

    def log(self) -> list[dict[str, Any]]:
        """The whole event log, paged as pumpctl does."""
        out: list[dict[str, Any]] = []
        since = 0
        with self.pump() as p:
            while True:
                page = p.link.request("log", {"since": since})
                recs = page.get("records", [])
                out += recs
                if not recs or page.get("last_seq", 0) <= recs[-1]["seq"]:
                    return out
                since = recs[-1]["seq"]

    def repl(self, send: bytes, timeout: float = 15.0) -> bytes:
        """Write `send` to the USB port and read until MicroPython's `>>> ` prompt (or the
        timeout); returns what was read."""
        import serial
        with serial.Serial(self.port, 115200, timeout=0.2) as s:
            s.write(send)
            seen = b""
            deadline = time.monotonic() + timeout
            while b">>> " not in seen and time.monotonic() < deadline:
                seen += s.read(256)
        return seen

    def power_cut(self, down_s: float = 0.0) -> "Board":
        self.info = pico.power_cut(self.info, down_s)
        return self

    def stop(self) -> None:
        try:
            pico.stop(self.info)
        except Exception:
            pass


def wait_until(what: str, fn: Callable[[], Any], timeout: float, every: float = 0.5) -> Any:
    """Poll fn() until it returns something true; its value, or an assertion naming `what`."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s (last: {last!r})")


def make_flash(port: str, home: Path, *extra: str) -> tuple[dict[str, Any], float, str]:
    """`make flash PORT=...` as a student runs it; returns its JSON report, the wall seconds, the output."""
    env = dict(os.environ, PUMPCTL_HOME=str(home))
    t0 = time.monotonic()
    r = subprocess.run(["make", "-s", "--no-print-directory", "flash", f"PORT={port}", "FLASH_ARGS=--json", *extra],
                       cwd=str(ROOT), capture_output=True, text=True, env=env, timeout=600)
    took = time.monotonic() - t0
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"make flash failed ({r.returncode}):\n{out}"
    line = [x for x in r.stdout.splitlines() if x.startswith("{")]
    assert line, f"make flash printed no JSON report:\n{out}"
    return json.loads(line[-1]), took, out


