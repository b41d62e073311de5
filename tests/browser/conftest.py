"""Browser fixtures: one lockstep virtual bench, one `pumpctl ui` app (in this process, on a
free 127.0.0.1 port) and one headless Chromium per module, driven through Playwright. Debian's
Chromium (`apt-get install chromium`) at /usr/bin/chromium, or the one CHROMIUM names; without
it every test here skips with one line saying so. Playwright's wheel carries its own driver:
nothing is downloaded (no `playwright install`)."""
from __future__ import annotations

import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

SHOTS = ROOT / "build" / "ui-screenshots"
NO_CHROMIUM = "no Chromium for the browser tests: apt-get install chromium (or set CHROMIUM=/path/to/chromium)"
START = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)  # the lab guide's first morning


def chromium_path() -> str | None:
    want = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    found = shutil.which(want) if not os.path.isabs(want) else (want if os.access(want, os.X_OK) else None)
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip(NO_CHROMIUM)
    return path


@pytest.fixture(scope="module")
def ui(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A lockstep bench with its clock at START, and the app on it (web.app.Server)."""
    from pumpctl import api
    from pumpctl import bench as benchmod
    from pumpctl.web.app import Server
    from pumpctl.web.session import PumpSession
    tmp = tmp_path_factory.mktemp("browser")
    old_home = os.environ.get("PUMPCTL_HOME")
    os.environ["PUMPCTL_HOME"] = str(tmp / "home")
    info = benchmod.start(tmp / "bench", lockstep=True, fresh=True)
    server = None
    try:
        with api.connect(bench_dir=info.dir) as pump:
            pump.time_sync(START)
        session = PumpSession(bench_dir=info.dir)
        server = Server(session, 0).start()
        yield server
    finally:
        if server is not None:
            server.stop()
            server.session.close()
        benchmod.stop(info)
        if old_home is None:
            os.environ.pop("PUMPCTL_HOME", None)
        else:
            os.environ["PUMPCTL_HOME"] = old_home


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def page(browser: Any, ui: Any) -> Iterator[Any]:
    """A clinician's tab, opened at the launch address (the token becomes its cookie)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    pg.goto(ui.url("clinician"))
    yield pg
    ctx.close()


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
