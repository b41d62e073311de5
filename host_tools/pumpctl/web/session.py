"""The one pump the web app talks to, behind a lock: an api.Pump (clinician's key), the bench's
control channel when it is a virtual bench, the emulated Pico's pins when it is one. Every
request the app makes goes through `run` (or `as_patient`), one at a time, as the CLI would make
it; nothing else in the app holds the port.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from .. import api, benchctl, pico_pins
from ..errors import BenchError, PumpctlError

T = TypeVar("T")
BUSY_WAIT_S = 0.5  # a status poll waits this long for a long request (an advance) before it shows the last one


class PumpSession:
    """Opens the pump as `pumpctl` would (`--port`, else the virtual bench in `bench_dir`)."""

    def __init__(self, port: Optional[str] = None, bench_dir: Optional[str | Path] = None, timeout: float = 5.0,
                 pico: Optional[pico_pins.PicoInfo] = None) -> None:
        self.port = port
        self.bench_dir = bench_dir
        self.timeout = timeout
        self.pico = pico
        self.lock = threading.RLock()
        self.pump = api.connect(port=port, bench_dir=bench_dir, timeout=timeout)
        self.device_id = self._device_id()
        self.last_status: Optional[dict[str, Any]] = None
        self.checked: dict[str, Any] = {}  # program digest -> the comparison the person was shown

    def _device_id(self) -> str:
        if self.pump.bench is not None:
            return str(self.pump.bench.d.get("device_id", "SIM-0001"))
        return str(self.pump.identify().get("device_id", ""))

    def where(self) -> str:
        """Which pump this is, in words (the page header)."""
        b = self.pump.bench
        if b is not None:
            return f"the virtual bench {self.device_id} in {b.dir} ({b.d.get('mode', '?')})"
        if self.pico is not None:
            return f"the emulated Pico {self.device_id} on {self.port}"
        return f"the board {self.device_id} on {self.port}"

    @property
    def is_bench(self) -> bool:
        return self.pump.bench is not None

    def bench(self) -> benchctl.Bench:
        if self.pump.bench is None:
            raise BenchError("this pump is a real board, not a virtual bench: no bench control")
        return benchctl.Bench(self.pump.bench)

    def run(self, fn: Callable[[api.Pump], T]) -> T:
        """`fn(pump)` alone on the link (signed with the clinician's key)."""
        with self.lock:
            return fn(self.pump)

    @contextmanager
    def as_patient(self) -> Iterator[api.Pump]:
        """The pump, its requests signed with the patient's key (the patient view), then back."""
        with self.lock:
            link = self.pump.link
            if not link.enable_auth(self.device_id, "patient"):
                raise PumpctlError(f"no keys for {self.device_id} in this computer's keystore: the patient view "
                                   "signs with the patient's key (`pumpctl provision`)", "KEYSTORE")
            try:
                yield self.pump
            finally:
                link.enable_auth(self.device_id, "clinician")

    def try_run(self, fn: Callable[[api.Pump], T], wait_s: float = BUSY_WAIT_S) -> Optional[T]:
        """`fn(pump)` if the link is free within `wait_s`, else None (a long request runs)."""
        if not self.lock.acquire(timeout=wait_s):
            return None
        try:
            return fn(self.pump)
        finally:
            self.lock.release()

    def power_cycle(self, down_ms: int) -> dict[str, Any]:
        """Cut the bench's power and open the pump again on its new port."""
        with self.lock:
            b = self.bench()
            self.pump.close()
            b.power_cycle(down_ms)
            deadline = time.monotonic() + 20
            while True:
                try:
                    self.pump = api.connect(bench_dir=b.dir, timeout=self.timeout)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            return {"port": b.info.port, "down_ms": down_ms}

    def close(self) -> None:
        with self.lock:
            self.pump.close()
