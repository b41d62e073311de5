"""What the pages show, as words in the user's units: the pump's replies (api.Pump) turned into
the short texts the status page and the patient view fill in. Rendering only: nothing here
talks to a pump.

Research and education prototype: never for human use.
"""
from __future__ import annotations

from typing import Any, Optional

from .. import render
from ..report import day_text, wall_text

PRIORITY_RANK = {"high": 3, "medium": 2, "low": 1}


def sounding(alarms: list[dict[str, Any]]) -> Optional[str]:
    """The priority the pump annunciates: the most urgent alarm not acknowledged (active, or
    latched after its cause went), as core/annunciation.py's AlarmManager.highest() picks it."""
    best: Optional[str] = None
    for a in alarms:
        if a.get("state") == "acknowledged":
            continue
        p = str(a.get("priority"))
        if PRIORITY_RANK.get(p, 0) > PRIORITY_RANK.get(best or "", 0):
            best = p
    return best


def status_words(st: dict[str, Any], audio_paused_ms: int = 0) -> dict[str, Any]:
    """The status page's fields, each one line."""
    running = st.get("state") == "running"
    rate = int(st.get("rate_ug_per_day") or 0)
    conc = st.get("concentration_ug_per_ml") or 0
    f = st.get("forecast") or {}
    refill_day = st.get("refill_day") if isinstance(st.get("refill_day"), int) else f.get("low_day")
    bolus = st.get("bolus")
    alarms = st.get("alarms") or []
    return {
        "state": "RUNNING" if running else f"STOPPED ({st.get('stop_reason') or 'stopped'})",
        "running": running,
        "drug": f"{st['drug']} at {conc} µg/mL ({st.get('mode')})" if st.get("drug") else "no drug programmed",
        "rate": f"{rate} µg/day ({rate / 24:.2f} µg/h)" if running else "0 µg/day (stopped)",
        "reservoir": f"{st.get('reservoir_ul', 0)} µL left of {st.get('reservoir_model_ml', '?')} mL",
        "low_reservoir": (f"{day_text(f.get('low_day'))} (at {st.get('low_reservoir_ul', '?')} µL, in "
                          f"{f.get('days_to_low')} days)") if f else "no forecast (no program)",
        "refill_by": (day_text(refill_day) or "-") + (" (set at the last refill)" if isinstance(st.get("refill_day"), int)
                                                      else " (the low-reservoir date)") if f else "-",
        "delivered": f"{st.get('delivered_ul', 0)} µL ({st.get('delivered_ug', 0)} µg, {st.get('delivered_steps', 0)} steps)",
        "dose_24h": f"{st.get('dose_24h_ug', 0)} µg in the last 24 h (maximum {st.get('max_24h_ug', 0)} µg)",
        "battery": render.battery_text(st).removeprefix("Battery: "),
        "clock": (wall_text(st.get("wall"), seconds=True) + " UTC (the pump's clock)") if st.get("wall")
        else "not set (flex profiles and dates need it: set the clock)",
        "bolus": (f"a {bolus.get('kind')} bolus is running: {bolus.get('left_ug')} µg left" if bolus else "none running"),
        "alarms": [{"code": a.get("code"), "priority": a.get("priority"), "state": a.get("state"),
                    "since": wall_text(a.get("since_wall"), seconds=True) if a.get("since_wall") else
                    f"uptime {a.get('since')} s"} for a in alarms],
        "sounding": sounding(alarms),
        "audio_paused_ms": int(audio_paused_ms or 0),
        "uptime_s": st.get("uptime_s"),
    }


def log_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ..report import describe
    return [{"seq": r.get("seq"), "when": wall_text(r.get("wall"), seconds=True) if r.get("wall")
             else f"uptime {r.get('uptime', '?')} s", "type": r.get("type"), "what": describe(r)} for r in records]
