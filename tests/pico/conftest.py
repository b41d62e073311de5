"""The firmware on a real Pico build: the official MicroPython rp2 firmware (PICO_UF2: the RPI_PICO
v1.28.0 .uf2 from micropython.org) on the project's emulated RP2040 (pico-emu/), driven through
`make flash`, the USB serial port and pumpctl exactly as a student drives a board.

One session flashes a fresh board with `make flash` (twice) and keeps its flash image; each test
then boots its own board from a copy of that image. Everything skips, with one line saying how
to get what is missing, when there is no firmware image or no Node.js 18+.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from pumpctl import pico
from pumpctl.errors import PumpctlError

from .rig import CAL_PL, UNIQUE_ID, Board, make_flash

IDLE_SPEED = 20


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    why = pico.missing()
    if why:
        skip = pytest.mark.skip(reason=why)
        for item in items:
            if "tests/pico" in str(item.fspath).replace(os.sep, "/"):
                item.add_marker(skip)


@contextlib.contextmanager
def _home(home: Path) -> Iterator[None]:
    """PUMPCTL_HOME (the keystore `make flash` provisions into) for a fixture's setup."""
    old = os.environ.get("PUMPCTL_HOME")
    os.environ["PUMPCTL_HOME"] = str(home)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PUMPCTL_HOME", None)
        else:
            os.environ["PUMPCTL_HOME"] = old


@pytest.fixture(scope="session")
def pico_shared(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder all pytest-xdist workers of the run share (the flashed board is made once)."""
    if worker_id == "master":
        return tmp_path_factory.mktemp("pico-shared")
    d = tmp_path_factory.getbasetemp().parent / "pico-shared"
    d.mkdir(exist_ok=True)
    return d


@pytest.fixture(scope="session")
def golden(pico_shared: Path) -> dict[str, Any]:
    """A fresh emulated Pico flashed with `make flash` twice, calibrated, then stopped: its flash
    image (and the keystore it was provisioned into) is what every other Pico test boots from.
    Made once per run, under a lock, by whichever worker needs it first. Returns what happened
    on the way."""
    facts_file = pico_shared / "golden.json"
    with open(pico_shared / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if facts_file.exists():
            facts = json.loads(facts_file.read_text())
        else:
            facts = _make_golden(pico_shared)
            facts_file.write_text(json.dumps(facts))
    if "error" in facts:
        pytest.fail(f"flashing the emulated Pico failed: {facts['error']}", pytrace=False)
    facts["dir"] = Path(facts["dir"])
    return facts


def _make_golden(shared: Path) -> dict[str, Any]:
    home = shared / "home"
    facts: dict[str, Any] = {"dir": str(shared / "board"), "home": str(home)}
    with _home(home):
        board = Board(pico.start(shared / "board", fresh=True, unique_id=UNIQUE_ID))
        try:
            facts["first"], facts["first_s"], facts["first_out"] = make_flash(board.port, home)
            facts["second"], facts["second_s"], facts["second_out"] = make_flash(board.port, home)
            board.wait_firmware()
            facts["identify"] = board.request("identify")
            board.request("calibrate", {"pl_per_step": CAL_PL, "day": 9800})
        except (AssertionError, PumpctlError) as e:
            facts["error"] = str(e)[-3000:]
        finally:
            board.stop()
    return facts


@pytest.fixture(scope="session")
def pico_home(golden: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's keystore: a copy of the one the flashed board was provisioned into (each
    worker's copies of the board then count their own signed commands)."""
    home = tmp_path_factory.mktemp("pico-home")
    shutil.copytree(golden["home"], home, dirs_exist_ok=True)
    return home


@pytest.fixture(autouse=True)
def _pico_home_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "tests/pico" in str(request.node.fspath).replace(os.sep, "/") and "golden" in request.fixturenames:
        monkeypatch.setenv("PUMPCTL_HOME", str(request.getfixturevalue("pico_home")))


def boot_board(golden: dict[str, Any], d: Path, home: Path) -> Board:
    """A board booted from the flashed image, its clock set, the battery healthy."""
    d.mkdir(parents=True)
    for name in ("flash.img", "flash.img.uid"):
        src = golden["dir"] / name
        if src.exists():
            shutil.copyfile(src, d / name)
    with _home(home):
        # Idle time runs up to 20 x real time: the firmware's timing is emulated time either way
        # (every figure the tests check is read in emulated ns), only the waiting is shorter.
        b = Board(pico.start(d, unique_id=UNIQUE_ID, battery_mv=3700, idle_speed=IDLE_SPEED))
        try:
            b.boot_s = b.wait_firmware()
            b.time_sync()
        except BaseException:
            b.stop()
            raise
    return b


@pytest.fixture
def board(golden: dict[str, Any], pico_home: Path, tmp_path: Path) -> Iterator[Board]:
    """A board of its own for one test; stopped after."""
    b = boot_board(golden, tmp_path / "board", pico_home)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def module_board(golden: dict[str, Any], pico_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """One board for a module's tests, which run in order as one story; stopped after."""
    b = boot_board(golden, tmp_path_factory.mktemp("pico-module") / "board", pico_home)
    yield b
    b.stop()
