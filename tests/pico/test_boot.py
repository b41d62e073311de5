"""Boot, link, watchdog and memory on the rp2 port: the pump answers over USB CDC, no task dies,
the supervisor feeds the RP2040's own watchdog, a hung control task ends in a watchdog reset
after which the pump comes back with reset cause `watchdog`; then the heap over a programmer's
visit (tests/pico/scenario.py), measured by the firmware after each request. `make bench`
prints the same figures (docs/benchmarks.md)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from . import scenario
from .rig import DEVICE, ROOT, Board, wait_until

# Runs on the board through mpremote: the pump firmware as main.py runs it, except that the
# control task checks in a few times and then hangs for good (the rest of asyncio keeps going,
# so only the supervisor can notice).
HANG = """
from pico.board import PicoBoard
board = PicoBoard()  # before the app, as main.py does
import gc
gc.collect()
import asyncio, app
async def hung(self):
    for _ in range(3):
        self.sync()
        self.supervisor.check_in(0)
        await asyncio.sleep_ms(100)
    await asyncio.Event().wait()
app.App.control_loop = hung
app.run(board)
"""


def _alarms(st: dict) -> list[str]:
    return [a["code"] for a in st["alarms"]]


def test_identify_and_status_answer_and_no_task_dies(module_board: Board) -> None:
    board = module_board
    with board.pump() as p:
        ident = p.identify()
        st = p.status()
    assert ident["board"] == "pico" and ident["device_id"] == DEVICE
    assert st["calibrated"] is True and st["selftest"] == []
    assert st["wall"] is not None and _alarms(st) == [], st["alarms"]
    up0, t0 = st["uptime_s"], board.t_ns()
    # Longer than the 8 s watchdog period: the board is not reset, so the supervisor feeds it.
    wait_until("12 s of emulated time", lambda: board.t_ns() - t0 > 12e9, 60)
    with board.pump() as p:
        st2 = p.status()
    assert board.ctl("time")["boots"] == 1, "no reset: the real watchdog is fed"
    assert st2["uptime_s"] >= up0 + 12
    kinds = [r["type"] for r in board.log()]
    assert "internal_error" not in kinds, kinds


@pytest.mark.safety("SR-014")
def test_a_hung_control_task_ends_in_a_watchdog_reset_and_therapy_comes_back(module_board: Board) -> None:
    board = module_board
    with board.pump() as p:
        p.link.request("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
        p.program_continuous(1000, 1000, "water", confirm=True)
    # mpremote interrupts the pump (Ctrl-C) and starts it again with the control task hung.
    r = subprocess.run([sys.executable, "-m", "mpremote", "connect", board.port, "exec", "--no-follow", HANG],
                       capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    t = wait_until("the watchdog reset", lambda: (lambda x: x if x["boots"] >= 2 else None)(board.ctl("time")), 90)
    assert t["last_reset"] == "timer", t
    board.wait_firmware()
    assert board.level(4) == 1, "EN released after the reset"
    with board.pump() as p:
        st = p.status()
    assert "WATCHDOG_RESET" in _alarms(st), st["alarms"]
    assert st["state"] == "running" and st["rate_ug_per_day"] == 1000, "therapy resumed at the programmed rate"
    boots = [r for r in board.log() if r["type"] == "power_on"]
    assert boots[-1]["data"]["cause"] == "watchdog" and boots[-1]["data"]["selftest"] == []
    # The watchdog fires within its 8 s after the last feed: it is the RP2040's own.
    assert board.ctl("time")["boots"] == 2


# Margin the live heap must leave at its worst moment (a request just answered, its reply still
# held): a log page or a frame being built needs a few KB in one piece, and a fragmented heap
# refuses requests well before it is full (tests/heap/README.md: 15-40 KB on the 64-bit port).
MIN_FREE = 40 * 1024


def test_a_programmers_visit_fits_the_picos_heap(module_board: Board) -> None:
    board = module_board
    board.time_sync()  # the watchdog reset before lost the clock (a Pico has no RTC)
    res = scenario.run(board)
    out = ROOT / "build" / "pico-memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    for bad in ("MEMORY_ERROR", "MEMORY_CRITICAL", "SELF_TEST_FAILED"):
        assert bad not in res["alarms"], res
    assert res["state"] == "running", res
    assert res["log_records"] > 10, res  # (history: the visit is shorter than an hour, 0 rows)
    assert res["peak_free"] >= MIN_FREE, res
    kinds = [r["type"] for r in board.log()]
    assert "internal_error" not in kinds, kinds
