"""PNG plots for the lab: trumpet and start-up curves, a program's 24 h dose profile, programmed
against delivered per hour, and the reservoir projection. Each function takes data and an output
path and returns the path. matplotlib with the Agg backend (no display needed).

Research and education prototype: never for human use.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from .accuracy import FlowPoint, TrumpetPoint  # noqa: E402
from .errors import UsageError  # noqa: E402

DPI = 100
SIZE = (8.0, 4.5)  # inches: 800 x 450 px
FOOTER = "Bench emulator for research and education only; never for human use."


def _save(fig: Any, out: str | Path) -> Path:
    p = Path(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))  # room for the footer under the axis label
    fig.text(0.99, 0.01, FOOTER, ha="right", va="bottom", fontsize=7, color="grey")
    fig.savefig(p, dpi=DPI, format="png")
    plt.close(fig)
    return p


def _finish(fig: Any, ax: Any, title: str, out: str | Path) -> Path:
    """The line plots' common end: title, a light grid, the legend, saved with the footer."""
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, out)


def trumpet_curve(points: Sequence[TrumpetPoint], overall_error_pct: float, out: str | Path,
                  title: str = "Trumpet curve (IEC 60601-2-24)") -> Path:
    if not points:
        raise UsageError("trumpet curve needs at least one window")
    fig, ax = plt.subplots(figsize=SIZE)
    w = [p.window_min for p in points]
    ax.plot(w, [p.max_error_pct for p in points], "o-", color="tab:red", label="maximum error")
    ax.plot(w, [p.min_error_pct for p in points], "o-", color="tab:blue", label="minimum error")
    ax.axhline(overall_error_pct, color="black", linestyle="--", label=f"overall error {overall_error_pct:+.2f} %")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xlabel("observation window (min)")
    ax.set_ylabel("flow error (%)")
    ax.set_xticks(w)
    return _finish(fig, ax, title, out)


def startup_curve(points: Sequence[FlowPoint], rate_ml_h: float, out: str | Path,
                  title: str = "Start-up curve: flow per 30 s interval") -> Path:
    if not points:
        raise UsageError("start-up curve needs at least one flow point")
    fig, ax = plt.subplots(figsize=SIZE)
    ax.step([p.t_s / 60 for p in points], [p.flow_ml_h * 1000 for p in points], where="post",
            color="tab:blue", linewidth=0.6, alpha=0.6, label="flow per 30 s interval")
    k = 10  # a 5 min running mean makes the trend readable through step quantisation
    if len(points) >= k:
        mean = [sum(p.flow_ml_h for p in points[i - k + 1:i + 1]) / k * 1000 for i in range(k - 1, len(points))]
        ax.plot([p.t_s / 60 for p in points[k - 1:]], mean, color="tab:orange", linewidth=2,
                label="5 min running mean")
    ax.axhline(rate_ml_h * 1000, color="black", linestyle="--", label=f"programmed {rate_ml_h * 1000:.3g} µL/h")
    ax.set_xlabel("time since start (min)")
    ax.set_ylabel("flow (µL/h)")
    return _finish(fig, ax, title, out)


def _minutes(hhmm: str) -> int:
    try:
        h, m = hhmm.split(":")
        v = int(h) * 60 + int(m)
    except (ValueError, AttributeError):
        raise UsageError(f"time {hhmm!r} is not HH:MM") from None
    if not 0 <= v < 1440:
        raise UsageError(f"time {hhmm!r} is outside the day")
    return v


def hourly_dose_ug(program: dict[str, Any]) -> list[float]:
    """µg delivered in each hour of the day by a program dict (docs/programs.md): basal steps
    plus periodic boluses, spread over their duration. Patient boluses are on demand: not shown."""
    mode = program.get("mode")
    per_min = [0.0] * 1440
    if mode == "continuous":
        rate = program.get("rate_ug_per_day")
        if not isinstance(rate, (int, float)) or rate < 0:
            raise UsageError("a continuous program needs rate_ug_per_day >= 0")
        per_min = [max(float(rate), float(program.get("min_rate_ug_per_day") or 0)) / 1440] * 1440
    elif mode == "flex":
        steps = program.get("steps") or []
        if not steps:
            raise UsageError("a flex program needs at least one step")
        starts = [(_minutes(s["start"]), float(s["rate_ug_per_day"])) for s in steps]
        if starts[0][0] != 0 or any(b[0] <= a[0] for a, b in zip(starts, starts[1:])):
            raise UsageError("flex steps must start at 00:00 and be in time order")
        floor = float(program.get("min_rate_ug_per_day") or 0)
        for i, (st, rate) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else 1440
            for m in range(st, end):
                per_min[m] = max(rate, floor) / 1440
    elif mode != "stopped":
        raise UsageError(f"unknown program mode {mode!r} (continuous, flex or stopped)")
    for b in program.get("periodic_boluses") or []:
        st, dur = _minutes(b["time"]), int(b["duration_min"])
        if dur <= 0:
            raise UsageError("a periodic bolus needs duration_min > 0")
        for k in range(dur):
            per_min[(st + k) % 1440] += float(b["dose_ug"]) / dur
    return [sum(per_min[h * 60:(h + 1) * 60]) for h in range(24)]


def dose_profile(program: dict[str, Any], out: str | Path, title: Optional[str] = None) -> Path:
    hours = hourly_dose_ug(program)
    fig, ax = plt.subplots(figsize=SIZE)
    ax.bar(range(24), hours, width=0.9, align="edge", color="tab:green")
    ax.set_xlim(0, 24)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel("hour of day")
    ax.set_ylabel("dose (µg per hour)")
    drug = program.get("drug", "?")
    conc = program.get("concentration_ug_per_ml", "?")
    ax.set_title(title or f"24 h dose profile: {drug} {conc} µg/mL, {program.get('mode')}, "
                          f"{sum(hours):.1f} µg/day")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, out)


PUMP_TIME = "pump's clock (UTC)"
_EPOCH = dt.datetime(2000, 1, 1)  # the pump's day 0 (wallclock.EPOCH_2000), naive UTC for matplotlib


def pump_datetime(wall: Optional[Sequence[int]]) -> Optional[dt.datetime]:
    """The pump's wall clock ([day, ms of day], as status carries it) as a naive UTC datetime,
    or None while the pump's clock is not set."""
    if not wall or len(wall) < 2:
        return None
    return _EPOCH + dt.timedelta(days=int(wall[0]), milliseconds=int(wall[1]))


def hour_datetime(hour: int) -> dt.datetime:
    """The start of a history hour (hours since 2000-01-01 of the pump's clock)."""
    return _EPOCH + dt.timedelta(hours=int(hour))


def _date_axis(ax: Any, span_days: float, days: bool = False) -> None:
    """Dates and times of the pump's clock on the x axis: whole labels, no offset text.
    `days`: one tick per whole day (every few days over a long span), dates only, so no two
    ticks carry the same date."""
    if days:
        loc: Any = mdates.DayLocator(interval=max(1, -(-int(span_days) // 10)))
    else:
        loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    fmt = "%Y-%m-%d %H:%M" if span_days <= 3 and not days else "%Y-%m-%d"
    ax.xaxis.set_major_locator(loc)
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt))
    for tick in ax.get_xticklabels():
        tick.set_rotation(30)
        tick.set_horizontalalignment("right")


def history_figure(rows: Sequence[dict[str, Any]],
                   title: str = "Programmed and delivered dose per hour") -> tuple[Any, Any]:
    """The figure and axes of `history` (for tests and for the report), not saved."""
    if not rows:
        raise UsageError("history plot needs at least one hour")
    try:
        h = [int(r["hour"]) for r in rows]
        prog = [float(r["programmed_ug"]) for r in rows]
        deliv = [float(r["delivered_ug"]) for r in rows]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"each history row needs hour, programmed_ug and delivered_ug: {e}") from None
    t = [hour_datetime(x) for x in h]
    x = [_num(v) for v in t]
    fig, ax = plt.subplots(figsize=SIZE)
    # The programmed line steps at each hour's start and holds through its last hour.
    ax.step(x + [x[-1] + 1 / 24], prog + [prog[-1]], where="post", color="black", label="programmed")
    ax.bar(x, deliv, width=0.8 / 24, align="edge", color="tab:orange", alpha=0.7, label="delivered")
    ax.set_xlim(x[0], x[-1] + 1 / 24)
    _date_axis(ax, len(h) / 24)
    ax.set_xlabel(f"time, {PUMP_TIME}: {t[0]:%Y-%m-%d %H:%M} to {t[-1] + dt.timedelta(hours=1):%Y-%m-%d %H:%M}")
    ax.set_ylabel("dose (µg per hour)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig, ax


def history(rows: Sequence[dict[str, Any]], out: str | Path,
            title: str = "Programmed and delivered dose per hour") -> Path:
    """Programmed (line) and delivered (bars) µg per hour, on the pump's clock."""
    fig, _ = history_figure(rows, title)
    return _save(fig, out)


def bolus_usage_figure(rows: Sequence[dict[str, Any]],
                       title: str = "Patient bolus requests per day") -> tuple[Any, Any]:
    """Stacked bars per day of the pump's clock: delivered, refused by lockout, refused by the
    daily limit, rate-limited, other. Rows as usage.UsageRow.as_dict()."""
    if not rows:
        raise UsageError("the bolus usage plot needs at least one day")
    days = [r for r in rows if r.get("date")]
    if not days:
        raise UsageError("the bolus usage plot needs days of the pump's clock (it was not set)")
    x = [_num(dt.datetime(*r["date"][:3])) for r in days]
    fig, ax = plt.subplots(figsize=SIZE)
    bottom = [0.0] * len(days)
    for key, label, colour in (("delivered", "delivered", "tab:green"), ("lockout", "refused: lockout", "tab:orange"),
                               ("limit", "refused: daily limit", "tab:red"),
                               ("rate_limited", "refused: too many requests", "tab:purple"),
                               ("other", "other", "tab:grey")):
        vals = [float(r.get(key, 0) or 0) for r in days]
        if any(vals):
            ax.bar(x, vals, bottom=bottom, width=0.8, color=colour, label=label)
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_xlim(min(x) - 0.6, max(x) + 0.6)
    ax.set_ylim(0, max(max(bottom) * 1.35, 1))  # headroom for the legend
    _date_axis(ax, max(x) - min(x) + 1, days=True)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"day, {PUMP_TIME}")
    ax.set_ylabel("patient bolus requests (count)")
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    return fig, ax


def bolus_usage(rows: Sequence[dict[str, Any]], out: str | Path,
                title: str = "Patient bolus requests per day") -> Path:
    fig, _ = bolus_usage_figure(rows, title)
    return _save(fig, out)


def _num(t: dt.datetime) -> float:
    return float(mdates.date2num(t))


def reservoir_figure(reservoir_ul: float, ul_per_day: float, start: dt.datetime, low_ul: float = 2000.0,
                     refill: Optional[dt.datetime] = None) -> tuple[Any, Any]:
    """The figure and axes of `reservoir_projection`, not saved."""
    if reservoir_ul < 0 or ul_per_day < 0 or low_ul < 0:
        raise UsageError("reservoir, daily volume and low threshold must not be negative")
    start = start.replace(tzinfo=None) if start.tzinfo is None else \
        start.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if refill is not None and refill.tzinfo is not None:
        refill = refill.astimezone(dt.timezone.utc).replace(tzinfo=None)
    fig, ax = plt.subplots(figsize=SIZE)
    ax.plot([_num(start)], [reservoir_ul / 1000], "o", color="tab:blue")
    if ul_per_day > 0:
        days_empty = reservoir_ul / ul_per_day
        days_low = max(0.0, (reservoir_ul - low_ul) / ul_per_day)
        low_at = start + dt.timedelta(days=days_low)
        end = start + dt.timedelta(days=days_empty)
        ax.plot([_num(start), _num(end)], [reservoir_ul / 1000, 0], color="tab:blue", label="projected volume")
        ax.axvline(_num(low_at), color="tab:orange", linestyle="--", label=f"low reservoir {low_at:%Y-%m-%d}")
        refill = refill or low_at
        title = f"Reservoir projection: {ul_per_day:.1f} µL/day, empty {end:%Y-%m-%d}"
    else:
        end = start + dt.timedelta(days=30)
        ax.plot([_num(start), _num(end)], [reservoir_ul / 1000] * 2, color="tab:blue", label="no delivery programmed")
        title = "Reservoir projection: nothing programmed"
    # The axis spans the drawdown (and a little after): a refill date far away is named at the
    # edge instead of stretching the axis until the drawdown is a sliver.
    span = max((end - start).total_seconds() / 86400, 1.0)
    lo, hi = start - dt.timedelta(days=span * 0.03), end + dt.timedelta(days=span * 0.08)
    if refill is not None:
        if lo <= refill <= hi:
            ax.axvline(_num(refill), color="tab:red", label=f"refill {refill:%Y-%m-%d}")
        else:
            after = refill > hi
            gap = (refill - end).days if after else (start - refill).days
            what = (f"refill {refill:%Y-%m-%d} →\n{gap} days after empty" if after and ul_per_day > 0 else
                    f"refill {refill:%Y-%m-%d} →\noff the chart" if after else
                    f"← refill {refill:%Y-%m-%d}\n{gap} days before the pump's today")
            ax.annotate(what, xy=(1.0 if after else 0.0, 0.55), xycoords="axes fraction",
                        ha="right" if after else "left", va="center", color="tab:red", fontsize=9,
                        bbox={"boxstyle": "round", "fc": "white", "ec": "tab:red"})
            ax.plot([], [], color="tab:red", label=f"refill {refill:%Y-%m-%d} (off the chart)")
    ax.axhline(low_ul / 1000, color="tab:orange", linewidth=0.5)
    ax.set_xlim(_num(lo), _num(hi))
    ax.set_ylabel("reservoir (mL)")
    ax.set_ylim(bottom=0, top=max(reservoir_ul / 1000 * 1.1, low_ul / 1000 * 1.2, 0.1))
    _date_axis(ax, 30.0)
    ax.set_xlabel(f"date, {PUMP_TIME}; starts at the pump's now, {start:%Y-%m-%d %H:%M}")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig, ax


def reservoir_projection(reservoir_ul: float, ul_per_day: float, out: str | Path,
                         start: Optional[dt.datetime] = None, low_ul: float = 2000.0,
                         refill: Optional[dt.datetime] = None) -> Path:
    """Reservoir volume from `start` (give the pump's clock: pump_datetime(status["wall"]);
    this computer's UTC time when None) until empty at `ul_per_day`; marks the low-reservoir
    date and the refill date (given, or the low-reservoir date when not; named at the edge
    when it falls outside the drawdown)."""
    if reservoir_ul < 0 or ul_per_day < 0 or low_ul < 0:
        raise UsageError("reservoir, daily volume and low threshold must not be negative")
    start = start or dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
    fig, _ = reservoir_figure(reservoir_ul, ul_per_day, start, low_ul, refill)
    return _save(fig, out)
