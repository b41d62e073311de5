"""The firmware on a real Pico build: the official MicroPython rp2 firmware (PICO_UF2, default
../shared/pico/firmware.uf2) on the project's emulated RP2040 (pico-emu/), driven through
`make flash`, the USB serial port and pumpctl exactly as a student drives a board.

One session flashes a fresh board with `make flash` (twice) and keeps its flash image; each test
then boots its own board from a copy of that image. Everything skips, with one line saying how
to get what is missing, when there is no firmware image or no Node.js 18+.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from pumpctl import pico

from .rig import CAL_PL, UNIQUE_ID, Board, make_flash


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    why = pico.missing()
    if why:
        skip = pytest.mark.skip(reason=why)
        for item in items:
            if "tests/pico" in str(item.fspath).replace(os.sep, "/"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def pico_home(tmp_path_factory: pytest.TempPathFactory):
    """One keystore (PUMPCTL_HOME) for the session's boards: the keys `make flash` provisions."""
    home = tmp_path_factory.mktemp("pico-home")
    old = os.environ.get("PUMPCTL_HOME")
    os.environ["PUMPCTL_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("PUMPCTL_HOME", None)
    else:
        os.environ["PUMPCTL_HOME"] = old


@pytest.fixture(scope="session")
def golden(pico_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A fresh emulated Pico flashed with `make flash` twice, calibrated, then stopped: its flash
    image is what every other Pico test boots from. Returns what happened on the way."""
    d = tmp_path_factory.mktemp("pico-golden")
    info = pico.start(d / "board", fresh=True, unique_id=UNIQUE_ID)
    board = Board(info)
    facts: dict[str, Any] = {"dir": d / "board"}
    try:
        facts["first"], facts["first_s"], facts["first_out"] = make_flash(info.port, pico_home)
        facts["second"], facts["second_s"], facts["second_out"] = make_flash(info.port, pico_home)
        board.wait_firmware()
        facts["identify"] = board.request("identify")
        board.request("calibrate", {"pl_per_step": CAL_PL, "day": 9800})
    finally:
        board.stop()
    return facts


@pytest.fixture
def board(golden: dict[str, Any], tmp_path: Path):
    """A board booted from the flashed image, its clock set, the battery healthy. Stopped after."""
    d = tmp_path / "board"
    d.mkdir()
    for name in ("flash.img", "flash.img.uid"):
        src = golden["dir"] / name
        if src.exists():
            shutil.copyfile(src, d / name)
    b = Board(pico.start(d, unique_id=UNIQUE_ID))
    try:
        pico.set_battery(b.info, 3700)
        b.boot_s = b.wait_firmware()  # type: ignore[attr-defined]
        b.time_sync()
        yield b
    finally:
        b.stop()
