"""IEC 60601-2-24 gravimetric analysis (pumpctl.accuracy) on synthetic data with known error."""
from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import accuracy as acc  # noqa: E402

RHO = 0.998203


def samples(rate_ml_h: float, factor: float = 1.0, minutes: int = 120, pulse: float = 0.0,
            period_s: float = 180.0, dt: float = 30.0, t0: float = 1000.0) -> list[tuple[float, float]]:
    """Mass (mg) of water delivered at rate*factor, optionally with a sinusoidal pulsation."""
    out = []
    n = int(minutes * 60 / dt)
    for k in range(n + 1):
        t = k * dt
        ml = rate_ml_h * factor * t / 3600.0
        if pulse:
            # integral of r*f*pulse*sin(2 pi t / T) dt, zero at t=0
            ml += rate_ml_h * factor * pulse / 3600.0 * period_s / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / period_s))
        out.append((t0 + t, ml * 1000.0 * RHO))
    return out


def test_density_of_water_tanaka():
    assert acc.water_density_g_per_ml(20.0) == pytest.approx(0.9982067, abs=2e-7)
    assert acc.water_density_g_per_ml(4.0) == pytest.approx(0.9999750, abs=2e-7)
    assert acc.water_density_g_per_ml(25.0) == pytest.approx(0.9970470, abs=2e-7)
    assert acc.water_density_g_per_ml(37.0) == pytest.approx(0.99333, abs=5e-6)
    for bad in (-1, 41, float("nan"), "20", None):
        with pytest.raises(acc.AccuracyError):
            acc.water_density_g_per_ml(bad)  # type: ignore[arg-type]


def test_exact_flow_has_zero_error():
    r = acc.analyse(samples(0.5), 0.5, RHO)
    assert r.overall_error_pct == pytest.approx(0.0, abs=1e-9)
    assert r.analysis_start_s == 3600 and r.analysis_end_s == 7200
    assert all(p.flow_ml_h == pytest.approx(0.5) for p in r.flows)


def test_constant_plus_3_percent():
    r = acc.analyse(samples(1.0, 1.03), 1.0, RHO)
    assert r.overall_error_pct == pytest.approx(3.0, abs=1e-9)
    assert r.mean_flow_ml_h == pytest.approx(1.03)
    assert [t.window_min for t in r.trumpet] == [2, 5, 11, 19, 31]
    for t in r.trumpet:
        assert t.max_error_pct == pytest.approx(3.0, abs=1e-9)
        assert t.min_error_pct == pytest.approx(3.0, abs=1e-9)
    # 120 intervals in the hour: 120 - m + 1 windows of m intervals.
    assert [t.windows for t in r.trumpet] == [117, 111, 99, 83, 59]
    assert len(r.startup) == 240


def test_density_matters():
    s = samples(1.0)
    err, _ = acc.overall_error(s, 1.0, 1.0)  # weighed as if 1 g/mL: reads 0.18 % low
    assert err == pytest.approx((RHO - 1.0) * 100, abs=1e-6)


def test_pulsating_flow_trumpet_narrows():
    r = acc.analyse(samples(1.0, 1.0, pulse=0.5, period_s=450.0), 1.0, RHO)
    spreads = [t.max_error_pct - t.min_error_pct for t in r.trumpet]
    assert spreads[0] > 20  # a 2 min window sees much of a 7 min pulse
    assert all(a > b for a, b in zip(spreads, spreads[1:])), spreads
    for t in r.trumpet:
        assert t.min_error_pct < 0 < t.max_error_pct
    assert abs(r.overall_error_pct) < 1e-6  # eight whole 7.5 min pulses cancel over the hour


def test_startup_curve_covers_first_two_hours():
    s = samples(1.0, minutes=180)
    r = acc.analyse(s, 1.0, RHO)
    assert r.startup[-1].t_s == 7200
    assert len(r.startup) == 240
    assert (r.analysis_start_s, r.analysis_end_s) == (7200, 10800)  # the last hour


def test_short_run_uses_second_half():
    r = acc.analyse(samples(1.0, 0.97, minutes=70), 1.0, RHO)
    assert r.analysis_start_s == 35 * 60
    assert r.overall_error_pct == pytest.approx(-3.0)
    with pytest.raises(acc.AccuracyError, match="31 min window does not fit"):
        acc.analyse(samples(1.0, minutes=60), 1.0, RHO)


def test_too_few_samples_refused():
    with pytest.raises(acc.AccuracyError, match="at least 2 samples"):
        acc.flows([(0.0, 0.0)], 1.0, RHO)
    with pytest.raises(acc.AccuracyError, match="before the analysis period ends"):
        acc.overall_error(samples(1.0, minutes=90), 1.0, RHO)


def test_non_monotonic_time_refused():
    s = samples(1.0)
    s[10], s[11] = s[11], s[10]
    with pytest.raises(acc.AccuracyError, match="time must increase: sample 11"):
        acc.analyse(s, 1.0, RHO)


def test_irregular_sampling_refused():
    s = samples(1.0)
    s[50] = (s[50][0] + 20.0, s[50][1])
    with pytest.raises(acc.AccuracyError, match="samples must be every 30 s"):
        acc.analyse(s, 1.0, RHO)


def test_jitter_is_weighed_by_real_intervals():
    s = samples(1.0, 1.02)
    s = [(t + (3.0 if k % 2 else 0.0), m + (1.02 * 3.0 / 3600 * 1000 * RHO if k % 2 else 0.0)) for k, (t, m) in enumerate(s)]
    assert all(p.error_pct == pytest.approx(2.0) for p in acc.flows(s, 1.0, RHO))


@pytest.mark.parametrize("rate,rho", [(0, RHO), (-1, RHO), (float("inf"), RHO), (1.0, 0.5), (1.0, 2.0)])
def test_bad_rate_or_density_refused(rate: float, rho: float) -> None:
    with pytest.raises(acc.AccuracyError):
        acc.analyse(samples(1.0), rate, rho)


def test_bad_sample_values_refused():
    s = samples(1.0)
    s[3] = (s[3][0], float("nan"))
    with pytest.raises(acc.AccuracyError, match="sample 3"):
        acc.flows(s, 1.0, RHO)
    with pytest.raises(acc.AccuracyError, match="sample 0"):
        acc.flows([("x", 1), (30, 2)], 1.0, RHO)  # type: ignore[list-item]


def test_bad_windows_refused():
    with pytest.raises(acc.AccuracyError, match="whole number"):
        acc.trumpet(samples(1.0), 1.0, RHO, windows_min=[0])
    with pytest.raises(acc.AccuracyError, match="does not fit"):
        acc.trumpet(samples(1.0), 1.0, RHO, windows_min=[61])


def test_write_csv(tmp_path: Path) -> None:
    r = acc.analyse(samples(1.0, 1.03), 1.0, RHO)
    paths = acc.write_csv(r, tmp_path / "out")
    rows = list(csv.reader(open(paths["trumpet"])))
    assert rows[0] == ["window_min", "max_error_pct", "min_error_pct", "windows"]
    assert rows[1] == ["2", "3.000", "3.000", "117"]
    st = list(csv.reader(open(paths["startup"])))
    assert len(st) == 241 and st[1][0] == "0.500"
    summ = dict(csv.reader(open(paths["summary"])))
    assert float(summ["overall_error_pct"]) == pytest.approx(3.0)
