"""Gravimetric accuracy analysis after IEC 60601-2-24 (infusion pumps), pure functions.

The method: weigh the outlet every S = 30 s; the flow in each interval is
    Q_i = 60 * (W_i - W_(i-1)) / (S * d)        [mL/h; W in g, S in min, d in g/mL]
The start-up curve is Q_i over the first 2 h. In the analysis period (the second hour of a 2 h
test, T1..T2) the overall error is
    A = 100 * (Q - r) / r,  Q = 60 * (W_T2 - W_T1) / (T * d)
and for each observation window of P = 2, 5, 11, 19, 31 min (m = P / S intervals) the trumpet
curve's points are the largest and smallest mean percentage error over every window of m
consecutive intervals that lies inside the analysis period:
    E_p(max) = max_j  (100 / m) * sum_{i=j}^{j+m-1} (Q_i - r) / r      (and min likewise).

Here samples are (t_s, mass_mg) pairs; the interval length is taken from the timestamps, so a
real-time run with a little jitter is weighed correctly, but every interval must be within
20 % of the nominal S. Research and education prototype: never for human use.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

SAMPLE_S = 30.0
WINDOWS_MIN: tuple[int, ...] = (2, 5, 11, 19, 31)
STARTUP_S = 7200.0
JITTER = 0.2


class AccuracyError(ValueError):
    """The data cannot be analysed as given; the message says why."""


def water_density_g_per_ml(temp_c: float) -> float:
    """Density of air-free pure water (SMOW) at 101.325 kPa, g/mL, from Tanaka, Girard, Davis,
    Peuto and Bignell, "Recommended table for the density of water between 0 C and 40 C based on
    recent experimental reports", Metrologia 38 (2001) 301-309, eq. 1 (valid 0 to 40 C):
        rho = a5 * (1 - (t + a1)^2 (t + a2) / (a3 (t + a4)))
    """
    if not isinstance(temp_c, (int, float)) or isinstance(temp_c, bool) or math.isnan(temp_c):
        raise AccuracyError(f"temperature must be a number in °C, got {temp_c!r}")
    if not 0.0 <= temp_c <= 40.0:
        raise AccuracyError(f"water density formula is valid from 0 to 40 °C, got {temp_c} °C")
    a1, a2, a3, a4, a5 = -3.983035, 301.797, 522528.9, 69.34881, 999.974950
    t = float(temp_c)
    rho_kg_m3 = a5 * (1.0 - (t + a1) ** 2 * (t + a2) / (a3 * (t + a4)))
    return rho_kg_m3 / 1000.0


@dataclass(frozen=True)
class FlowPoint:
    t_s: float          # end of the interval, s from the first sample
    flow_ml_h: float
    error_pct: float


@dataclass(frozen=True)
class TrumpetPoint:
    window_min: int
    max_error_pct: float
    min_error_pct: float
    windows: int        # how many windows of this length fit the analysis period


@dataclass
class AccuracyResult:
    rate_ml_h: float
    density_g_ml: float
    sample_s: float
    analysis_start_s: float
    analysis_end_s: float
    flows: list[FlowPoint]
    startup: list[FlowPoint]
    overall_error_pct: float
    mean_flow_ml_h: float
    trumpet: list[TrumpetPoint] = field(default_factory=list)


def _check(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
           sample_s: float) -> list[tuple[float, float]]:
    if not isinstance(rate_ml_h, (int, float)) or isinstance(rate_ml_h, bool) or not rate_ml_h > 0 \
            or math.isinf(rate_ml_h):
        raise AccuracyError(f"programmed rate must be a positive number of mL/h, got {rate_ml_h!r}")
    if not isinstance(density, (int, float)) or not 0.9 <= density <= 1.1:
        raise AccuracyError(f"water density must be about 1 g/mL (0.9 to 1.1), got {density!r}")
    if not sample_s > 0:
        raise AccuracyError(f"sample interval must be positive, got {sample_s!r}")
    out: list[tuple[float, float]] = []
    for n, s in enumerate(samples):
        try:
            t, m = float(s[0]), float(s[1])
        except (TypeError, ValueError, IndexError):
            raise AccuracyError(f"sample {n} is not a (t_s, mass_mg) pair of numbers: {s!r}") from None
        if math.isnan(t) or math.isnan(m) or math.isinf(t) or math.isinf(m):
            raise AccuracyError(f"sample {n} has a non-finite value: {s!r}")
        out.append((t, m))
    if len(out) < 2:
        raise AccuracyError(f"need at least 2 samples, got {len(out)}")
    for n in range(1, len(out)):
        if out[n][0] <= out[n - 1][0]:
            raise AccuracyError(f"time must increase: sample {n} at {out[n][0]:g} s is not after {out[n - 1][0]:g} s")
    for n in range(1, len(out)):
        dt = out[n][0] - out[n - 1][0]
        if abs(dt - sample_s) > JITTER * sample_s:
            raise AccuracyError(f"sample {n} comes {dt:g} s after the previous one; samples must be every "
                                f"{sample_s:g} s (within {JITTER * 100:.0f} %)")
    return out


def flows(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
          sample_s: float = SAMPLE_S) -> list[FlowPoint]:
    """Q_i for every interval between consecutive samples, with its error against the rate."""
    s = _check(samples, rate_ml_h, density, sample_s)
    t0 = s[0][0]
    pts = []
    for (ta, ma), (tb, mb) in zip(s, s[1:]):
        # mg -> mL: mg / 1000 / d; per second -> per hour: x 3600
        q = (mb - ma) / 1000.0 / density / (tb - ta) * 3600.0
        pts.append(FlowPoint(tb - t0, q, 100.0 * (q - rate_ml_h) / rate_ml_h))
    return pts


def startup_curve(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
                  sample_s: float = SAMPLE_S, duration_s: float = STARTUP_S) -> list[FlowPoint]:
    """The flows of the first `duration_s` (2 h) of the test."""
    return [p for p in flows(samples, rate_ml_h, density, sample_s) if p.t_s <= duration_s + 1e-9]


def _analysis_index(s: list[tuple[float, float]], start_s: float, end_s: float) -> tuple[int, int]:
    t0 = s[0][0]
    if not end_s > start_s >= 0:
        raise AccuracyError(f"analysis period must have 0 <= start < end, got {start_s} to {end_s} s")
    tol = 1e-6
    ia = next((i for i, p in enumerate(s) if p[0] - t0 >= start_s - tol), None)
    ib = max((i for i, p in enumerate(s) if p[0] - t0 <= end_s + tol), default=None)
    if ia is None or ib is None or s[-1][0] - t0 < end_s - JITTER * SAMPLE_S:
        raise AccuracyError(f"the samples end at {s[-1][0] - t0:g} s, before the analysis period ends at {end_s:g} s")
    if ib <= ia:
        raise AccuracyError("no whole interval lies in the analysis period")
    return ia, ib


def overall_error(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
                  start_s: float = 3600.0, end_s: float = 7200.0,
                  sample_s: float = SAMPLE_S) -> tuple[float, float]:
    """(error %, mean flow mL/h) over the analysis period [start_s, end_s] from the first sample."""
    s = _check(samples, rate_ml_h, density, sample_s)
    ia, ib = _analysis_index(s, start_s, end_s)
    (ta, ma), (tb, mb) = s[ia], s[ib]
    q = (mb - ma) / 1000.0 / density / (tb - ta) * 3600.0
    return 100.0 * (q - rate_ml_h) / rate_ml_h, q


def trumpet(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
            start_s: float = 3600.0, end_s: float = 7200.0, windows_min: Iterable[int] = WINDOWS_MIN,
            sample_s: float = SAMPLE_S) -> list[TrumpetPoint]:
    """Max and min mean percentage error over every window of each length in the analysis period."""
    s = _check(samples, rate_ml_h, density, sample_s)
    ia, ib = _analysis_index(s, start_s, end_s)
    fl = flows(s, rate_ml_h, density, sample_s)
    errs = [fl[i].error_pct for i in range(ia, ib)]  # flows[i] is the interval ending at sample i+1
    out = []
    for p in windows_min:
        if not isinstance(p, int) or p <= 0:
            raise AccuracyError(f"observation window must be a positive whole number of minutes, got {p!r}")
        m_f = p * 60.0 / sample_s
        m = int(round(m_f))
        if abs(m - m_f) > 1e-9:
            raise AccuracyError(f"a {p} min window is not a whole number of {sample_s:g} s intervals")
        if m > len(errs):
            raise AccuracyError(f"a {p} min window does not fit the {len(errs) * sample_s / 60:g} min analysis period")
        acc = sum(errs[:m])
        means = [acc / m]
        for j in range(m, len(errs)):
            acc += errs[j] - errs[j - m]
            means.append(acc / m)
        out.append(TrumpetPoint(p, max(means), min(means), len(means)))
    return out


def analyse(samples: Sequence[tuple[float, float]], rate_ml_h: float, density: float,
            start_s: float | None = None, end_s: float | None = None,
            windows_min: Iterable[int] = WINDOWS_MIN, sample_s: float = SAMPLE_S) -> AccuracyResult:
    """The whole method. By default the analysis period is the last hour of the samples (the
    second hour of a 2 h test); runs shorter than 2 h use their second half (not the standard's
    protocol, and the result says which period it used)."""
    s = _check(samples, rate_ml_h, density, sample_s)
    span = s[-1][0] - s[0][0]
    if end_s is None:
        end_s = span
    if start_s is None:
        start_s = end_s - 3600.0 if end_s >= 7200.0 - 1e-6 else end_s / 2.0
    fl = flows(s, rate_ml_h, density, sample_s)
    err, q = overall_error(s, rate_ml_h, density, start_s, end_s, sample_s)
    tr = trumpet(s, rate_ml_h, density, start_s, end_s, windows_min, sample_s)
    return AccuracyResult(rate_ml_h, density, sample_s, start_s, end_s, fl,
                          [p for p in fl if p.t_s <= STARTUP_S + 1e-9], err, q, tr)


def _z(x: float, places: int = 3) -> float:
    """x, with a value that rounds to zero made +0.0: a CSV never says -0.000."""
    return 0.0 if round(x, places) == 0 else x


def write_csv(result: AccuracyResult, out_dir: str | Path) -> dict[str, Path]:
    """startup.csv (t_min, flow_ml_h, error_pct), trumpet.csv (window_min, max, min, windows),
    summary.csv (key, value). Returns the paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"startup": d / "startup.csv", "trumpet": d / "trumpet.csv", "summary": d / "summary.csv"}
    with open(paths["startup"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_min", "flow_ml_h", "error_pct"])
        for p in result.flows:
            w.writerow([f"{p.t_s / 60:.3f}", f"{p.flow_ml_h:.6g}", f"{_z(p.error_pct):.3f}"])
    with open(paths["trumpet"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["window_min", "max_error_pct", "min_error_pct", "windows"])
        for t in result.trumpet:
            w.writerow([t.window_min, f"{_z(t.max_error_pct):.3f}", f"{_z(t.min_error_pct):.3f}", t.windows])
    with open(paths["summary"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["key", "value"])
        for k, v in (("rate_ml_h", result.rate_ml_h), ("density_g_ml", result.density_g_ml),
                     ("sample_s", result.sample_s), ("analysis_start_s", result.analysis_start_s),
                     ("analysis_end_s", result.analysis_end_s), ("mean_flow_ml_h", result.mean_flow_ml_h),
                     ("overall_error_pct", result.overall_error_pct)):
            w.writerow([k, f"{_z(v, 6):.6g}"])
    return paths
