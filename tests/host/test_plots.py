"""pumpctl.plots writes real PNG files of a readable size from each kind of data."""
from __future__ import annotations

import datetime as dt
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import accuracy, plots, programs  # noqa: E402
from pumpctl.errors import UsageError  # noqa: E402

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_size(p: Path) -> tuple[int, int]:
    data = p.read_bytes()
    assert data[:8] == PNG_SIG, "not a PNG"
    assert data[12:16] == b"IHDR"
    w, h = struct.unpack(">II", data[16:24])
    assert len(data) > 5000, "suspiciously small PNG"
    return w, h


def sane(p: Path) -> None:
    w, h = png_size(p)
    assert 400 <= w <= 2000 and 300 <= h <= 1500, (w, h)


def _result() -> accuracy.AccuracyResult:
    rho = 0.998203
    s = [(30.0 * k, 30.0 * k / 3600 * (1.0 + (0.2 if k % 4 == 0 else 0.0)) * 1000 * rho) for k in range(241)]
    return accuracy.analyse(s, 1.0, rho)


def test_trumpet_and_startup(tmp_path: Path) -> None:
    r = _result()
    p = plots.trumpet_curve(r.trumpet, r.overall_error_pct, tmp_path / "t" / "trumpet.png")
    assert p == tmp_path / "t" / "trumpet.png"
    sane(p)
    sane(plots.startup_curve(r.startup, r.rate_ml_h, tmp_path / "startup.png"))


def test_dose_profile_from_example_programs(tmp_path: Path) -> None:
    for name in ("continuous", "flex-evening", "water-demo"):
        prog = programs.load(ROOT / "examples/programs" / f"{name}.toml")
        sane(plots.dose_profile(prog, tmp_path / f"{name}.png"))


def test_hourly_dose_matches_daily_total() -> None:
    prog = programs.load(ROOT / "examples/programs/flex-evening.toml")
    hours = plots.hourly_dose_ug(prog)
    assert len(hours) == 24
    assert sum(hours) == pytest.approx(100 * 18 / 24 + 400 * 4 / 24 + 200 * 2 / 24 + 25)
    assert hours[8] == pytest.approx(100 / 24 + 25)  # the morning periodic bolus
    assert hours[19] == pytest.approx(400 / 24)
    cont = plots.hourly_dose_ug({"mode": "continuous", "rate_ug_per_day": 480})
    assert cont == pytest.approx([20.0] * 24)


def test_bad_programs_refused(tmp_path: Path) -> None:
    for bad in ({"mode": "warp"}, {"mode": "flex", "steps": []},
                {"mode": "flex", "steps": [{"start": "01:00", "rate_ug_per_day": 5}]},
                {"mode": "continuous", "rate_ug_per_day": -1},
                {"mode": "flex", "steps": [{"start": "25:00", "rate_ug_per_day": 5}]}):
        with pytest.raises(UsageError):
            plots.dose_profile(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_history(tmp_path: Path) -> None:
    rows = [{"hour": h, "programmed_ug": 20.0, "delivered_ug": 20.0 + (h % 3 - 1)} for h in range(24)]
    sane(plots.history(rows, tmp_path / "hist.png"))
    with pytest.raises(UsageError):
        plots.history([{"hour": 0}], tmp_path / "bad.png")
    with pytest.raises(UsageError):
        plots.history([], tmp_path / "bad.png")


def test_reservoir_projection(tmp_path: Path) -> None:
    start = dt.datetime(2026, 1, 1)
    sane(plots.reservoir_projection(20_000, 250, tmp_path / "r.png", start=start))
    sane(plots.reservoir_projection(20_000, 250, tmp_path / "r2.png", start=start,
                                    refill=dt.datetime(2026, 3, 1)))
    sane(plots.reservoir_projection(20_000, 0, tmp_path / "r3.png", start=start))
    with pytest.raises(UsageError):
        plots.reservoir_projection(-1, 250, tmp_path / "bad.png")
