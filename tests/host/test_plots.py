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


# ---- axes in the pump's wall-clock time (issue 17) ---------------------------------------------
def _labels(fig, ax) -> list[str]:
    fig.canvas.draw()
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()]


def test_history_axis_is_the_pumps_dates_and_times_without_an_offset() -> None:
    # 2026-12-03 07:00 .. 2026-12-04 07:00 of the pump's clock (hours since 2000-01-01)
    h0 = 9833 * 24 + 7
    rows = [{"hour": h0 + k, "programmed_ug": 4.0 if k < 11 else 16.0, "delivered_ug": 4.0} for k in range(24)]
    fig, ax = plots.history_figure(rows)
    labels = _labels(fig, ax)
    assert ax.xaxis.get_offset_text().get_text() == ""  # the old axis: "+2.36e5"
    assert len(labels) >= 4 and all(t.startswith(("2026-12-03 ", "2026-12-04 ")) for t in labels), labels
    assert "2026-12-03 18:00" in labels  # the evening step can be found
    assert "pump's clock" in ax.get_xlabel() and "2026-12-03 07:00" in ax.get_xlabel()
    assert "µg" in ax.get_ylabel()
    lo, hi = ax.get_xlim()
    assert plots.mdates.num2date(lo).replace(tzinfo=None) == dt.datetime(2026, 12, 3, 7)
    assert plots.mdates.num2date(hi).replace(tzinfo=None) == dt.datetime(2026, 12, 4, 7)
    plots.plt.close(fig)


def test_a_week_of_history_is_labelled_with_dates() -> None:
    h0 = 9833 * 24
    rows = [{"hour": h0 + k, "programmed_ug": 4.0, "delivered_ug": 4.0} for k in range(7 * 24)]
    fig, ax = plots.history_figure(rows)
    labels = _labels(fig, ax)
    assert labels and all(len(t) == 10 and t.startswith("2026-12-") for t in labels), labels
    plots.plt.close(fig)


def test_pump_datetime_reads_the_status_wall() -> None:
    assert plots.pump_datetime([9833, 3_600_000]) == dt.datetime(2026, 12, 3, 1, 0)
    assert plots.pump_datetime(None) is None
    assert plots.hour_datetime(9833 * 24 + 18) == dt.datetime(2026, 12, 3, 18)


def test_reservoir_starts_at_the_pumps_clock() -> None:
    start = dt.datetime(2026, 1, 25, 9, 0)
    fig, ax = plots.reservoir_figure(20_000, 250, start)
    lo, _ = ax.get_xlim()
    assert plots.mdates.num2date(lo).replace(tzinfo=None) <= start
    assert start - plots.mdates.num2date(lo).replace(tzinfo=None) < dt.timedelta(days=5)
    labels = _labels(fig, ax)
    assert labels and all("2026-01-20" <= t <= "2026-04-30" for t in labels), labels  # not this computer's dates
    assert "2026-01-25 09:00" in ax.get_xlabel()
    assert ax.get_ylabel() == "reservoir (mL)"
    plots.plt.close(fig)


def test_a_refill_date_far_away_does_not_squeeze_the_drawdown() -> None:
    start = dt.datetime(2026, 1, 25)
    fig, ax = plots.reservoir_figure(20_000, 250, start, refill=dt.datetime(2030, 1, 1))
    lo, hi = ax.get_xlim()
    assert hi - lo < 100  # the 80 days of drawdown fill the axis (the old one spanned four years)
    texts = [t.get_text() for t in ax.texts]
    assert any("refill 2030-01-01" in t and "days after empty" in t for t in texts), texts
    assert any("off the chart" in t.get_text() for t in ax.get_legend().get_texts())
    plots.plt.close(fig)
    # a refill date inside the drawdown is drawn where it is
    fig, ax = plots.reservoir_figure(20_000, 250, start, refill=dt.datetime(2026, 3, 1))
    assert len(ax.texts) == 0 and any("refill 2026-03-01" == t.get_text() for t in ax.get_legend().get_texts())
    plots.plt.close(fig)
    # and one before the pump's today is named at the left edge
    fig, ax = plots.reservoir_figure(20_000, 250, start, refill=dt.datetime(2025, 1, 1))
    assert any("before the pump's today" in t.get_text() for t in ax.texts)
    plots.plt.close(fig)


def test_bolus_usage_plot(tmp_path: Path) -> None:
    rows = [{"date": [2026, 12, 3], "attempts": 3, "delivered": 1, "lockout": 2, "limit": 0},
            {"date": [2026, 12, 4], "attempts": 3, "delivered": 2, "lockout": 0, "limit": 1}]
    fig, ax = plots.bolus_usage_figure(rows)
    assert _labels(fig, ax) == ["2026-12-03", "2026-12-04"]
    assert "count" in ax.get_ylabel() and "pump's clock" in ax.get_xlabel()
    plots.plt.close(fig)
    sane(plots.bolus_usage(rows, tmp_path / "u.png"))
    with pytest.raises(UsageError):
        plots.bolus_usage([{"date": None, "attempts": 1}], tmp_path / "bad.png")
