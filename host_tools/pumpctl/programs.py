"""Program files (TOML, docs/programs.md) and the old/new comparison shown before writing."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Optional

from . import frames
from .errors import UsageError


def check_values(d: dict[str, Any], where: str = "program") -> None:
    """Refuse (UsageError naming the field) any value the pump cannot take as JSON: a TOML date,
    datetime or time, inf or nan. Ranges and units are the pump's to judge (program_check)."""
    why = frames.bad_value(d)
    if why:
        raise UsageError(f"{where}: {why}; give numbers in the units of docs/programs.md "
                         "(times of day as quoted \"HH:MM\" text)")


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read program file {p}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"program file {p} is not UTF-8 text (byte {e.start + 1} is 0x{raw[e.start]:02x}): "
                         "save it as UTF-8 TOML") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"program file {p} is not valid TOML: {e}") from None
    check_values(d, f"program file {p}")
    return d


def continuous(rate: int, conc: int, drug: str) -> dict[str, Any]:
    return {"drug": drug, "concentration_ug_per_ml": conc, "mode": "continuous", "rate_ug_per_day": rate}


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def basal_steps(p: dict[str, Any]) -> list[tuple[int, int]]:
    """(start minute, µg/day) steps of a program dict as the device reports it."""
    if p.get("mode") == "stopped":
        return [(0, 0)]
    if p.get("mode") == "continuous":
        return [(0, int(p["rate_ug_per_day"]))]
    return [(_minutes(s["start"]), int(s["rate_ug_per_day"])) for s in p.get("steps", [])]


def daily_total_ug(p: dict[str, Any]) -> float:
    steps = basal_steps(p)
    total = 0.0
    for i, (start, rate) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else 1440
        total += rate * (end - start) / 1440
    total += sum(b["dose_ug"] for b in p.get("periodic_boluses", []) or [])
    return total


def summary(p: Optional[dict[str, Any]], reservoir_ul: int, low_ul: int = 2000) -> dict[str, Any]:
    if not p:
        return {"program": "none"}
    conc = p["concentration_ug_per_ml"]
    daily = daily_total_ug(p)
    steps = basal_steps(p)
    hourly = [r / 24 for _, r in steps]
    ul_per_day = daily / conc * 1000 if conc else 0
    days_low = (reservoir_ul - low_ul) / ul_per_day if ul_per_day > 0 else None
    return {
        "drug": p["drug"],
        "concentration_ug_per_ml": conc,
        "mode": p["mode"],
        "ug_per_hour_min": min(hourly),
        "ug_per_hour_max": max(hourly),
        "daily_total_ug": daily,
        "daily_volume_ul": ul_per_day,
        "days_to_low_reservoir": days_low,
    }


def comparison_rows(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    def fmt(s: dict[str, Any], key: str) -> str:
        v = s.get(key)
        if v is None:
            return "-"
        if key == "ug_per_hour":
            lo, hi = s.get("ug_per_hour_min"), s.get("ug_per_hour_max")
            if lo is None:
                return "-"
            return f"{lo:.2f}" if abs(hi - lo) < 1e-9 else f"{lo:.2f} to {hi:.2f}"
        if isinstance(v, float):
            return f"{v:.1f}"
        return str(v)

    for s in (old, new):
        if "ug_per_hour_min" in s:
            s["ug_per_hour"] = True
    rows = [("drug", "drug"), ("concentration (µg/mL)", "concentration_ug_per_ml"), ("mode", "mode"),
            ("dose per hour (µg/h)", "ug_per_hour"), ("daily total (µg/day)", "daily_total_ug"),
            ("volume per day (µL)", "daily_volume_ul"), ("days to low reservoir", "days_to_low_reservoir")]
    return [(label, fmt(old, k), fmt(new, k)) for label, k in rows]
