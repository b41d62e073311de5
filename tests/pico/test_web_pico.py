"""The web programmer's Pico pins page (`pumpctl ui --pico`) on a live emulated Pico, in Debian's
Chromium: the pin table follows what the RP2040's pads did (STEP edges equal the firmware's
delivered steps once a bolus has run), the bolus button on the page reaches the firmware through
GP16's IRQ, and the battery the page sets is what the firmware's ADC then reads."""
from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from pumpctl import pico

from .conftest import IDLE_SPEED
from .rig import Board, wait_until


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium, as tests/browser takes it; checked before a board is booted."""
    from browser.conftest import NO_CHROMIUM, chromium_path
    path = chromium_path()
    if path is None:
        pytest.skip(NO_CHROMIUM)
    return path


@pytest.fixture
def ui_page(chromium: str, board: Board) -> Iterator[tuple[Any, Board, Any]]:
    """The app on the board's USB port with its emulator's control channel, a clinician's tab on
    its Pico page, and the app's own pump (the port has one client: the test asks through it)."""
    from playwright.sync_api import sync_playwright
    from pumpctl.web.app import Server
    from pumpctl.web.session import PumpSession
    server = Server(PumpSession(port=board.port, pico=board.info), 0).start()
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            try:
                pg = b.new_page()
                pg.set_default_timeout(30_000)
                pg.goto(server.url("clinician"))
                pg.click("nav >> text=Pico pins")
                yield pg, board, server.session
            finally:
                b.close()
    finally:
        server.stop()
        server.session.close()


def _row(pg: Any, name: str) -> list[str]:
    """The pin table's row for `name`: pin, GPIO, level, direction, rising, falling."""
    cells = pg.locator(f"#pins tbody tr:has(th:text-is('{name}')) > *").all_inner_texts()
    return [c.strip() for c in cells]


def test_the_pico_page_shows_the_pins_and_drives_the_button_and_battery(ui_page: tuple[Any, Board, Any]) -> None:
    pg, board, session = ui_page

    def req(cmd: str, args: dict | None = None) -> Any:
        with session.lock:
            return session.pump.link.request(cmd, args)

    from playwright.sync_api import expect
    expect(pg.locator("#pico-time")).to_contain_text("chip time")
    assert _row(pg, "STEP")[:2] == ["STEP", "GP2"], _row(pg, "STEP")
    assert _row(pg, "BUTTON")[3] == "input", _row(pg, "BUTTON")
    assert _row(pg, "EN")[3] == "output", _row(pg, "EN")

    # STEP: a clinician bolus of 10 µL of water (320 steps of 31.25 nL) over a minute, then
    # stop; the page's rising edges on GP2 are then the firmware's delivered steps.
    req("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
    with session.lock:
        session.pump.program_continuous(1000, 1000, "water", confirm=True)
    req("bolus", {"dose_ug": 10, "duration_min": 1})
    with board.flat_out(then=IDLE_SPEED):
        pico.wait(board.info, 70_000)  # the bolus's minute and more, in the Pico's own time
    req("stop")
    pico.wait(board.info, 1_000)  # what was commanded finishes
    delivered = req("status")["delivered_steps"]
    assert delivered >= 320, delivered
    wait_until("the page's STEP count", lambda: _row(pg, "STEP")[4] == str(delivered), 30)

    # The button on the page: one press through GP16, a patient bolus request the firmware
    # answers (stopped, and no patient bolus programmed: refused), and the pin's falling edge in the table.
    falling = int(_row(pg, "BUTTON")[5])
    pg.click("#pico-press")
    expect(pg.locator("#pico-result")).to_contain_text("was pressed")
    wait_until("the press on GP16 in the table", lambda: int(_row(pg, "BUTTON")[5]) > falling, 30)
    with session.lock:
        refused = session.pump.log_page(0, 40, "refusals").get("records", [])
    assert any(r["type"] == "patient_bolus" and r["data"].get("src") == "button" for r in refused), refused

    # The battery: the page sets ADC0, and the firmware reads that voltage through its divider.
    pg.fill("#pico-mv", "3100")
    pg.click("#pico-battery")
    expect(pg.locator("#pico-result")).to_contain_text("3100 mV")
    text = pg.inner_text("#pico-result")
    assert re.search(r"ADC0 now reads \d+ \(3100 mV through the divider\)", text), text
    mv = req("status")["battery_mv"]
    assert abs(mv - 3100) <= 20, mv

    # Bad input on the page: a clear sentence, nothing changed.
    pg.fill("#pico-mv", "-5")
    pg.click("#pico-battery")
    # (wait for the refusal itself: the result still reads the last "... mV" until it comes)
    expect(pg.locator("#pico-result")).to_contain_text("0 mV or more, not -5")
    assert abs(req("status")["battery_mv"] - 3100) <= 20
