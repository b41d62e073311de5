"""The firmware on a real Pico build: the official MicroPython rp2 firmware (PICO_UF2, default
../shared/pico/firmware.uf2) on the project's emulated RP2040 (pico-emu/), driven through
`make flash`, the USB serial port and pumpctl exactly as a student drives a board.

One session flashes a fresh board with `make flash` (twice) and keeps its flash image; each test
then boots its own board from a copy of that image. Everything skips, with one line saying how
to get what is missing, when there is no firmware image or no Node.js 18+.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

from pumpctl import pico

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
def pico_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One keystore for the session's boards."""
    return tmp_path_factory.mktemp("pico-home")


@pytest.fixture(autouse=True)
def _pico_home_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "tests/pico" in str(request.node.fspath).replace(os.sep, "/"):
        monkeypatch.setenv("PUMPCTL_HOME", str(request.getfixturevalue("pico_home")))


@pytest.fixture(scope="session")
def golden(pico_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh emulated Pico flashed with `make flash` twice, calibrated, then stopped: its flash
    image is what every other Pico test boots from. Returns what happened on the way."""
    d = tmp_path_factory.mktemp("pico-golden")
    facts: dict[str, Any] = {"dir": d / "board"}
    with _home(pico_home):
        board = Board(pico.start(d / "board", fresh=True, unique_id=UNIQUE_ID))
        try:
            facts["first"], facts["first_s"], facts["first_out"] = make_flash(board.port, pico_home)
            facts["second"], facts["second_s"], facts["second_out"] = make_flash(board.port, pico_home)
            board.wait_firmware()
            facts["identify"] = board.request("identify")
            board.request("calibrate", {"pl_per_step": CAL_PL, "day": 9800})
        finally:
            board.stop()
    return facts


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
