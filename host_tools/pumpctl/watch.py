"""`pumpctl watch`: a live terminal view for lab demos. render() is pure (status dict and an
optional bench `show` dict in, text with ANSI colours out); run() polls and redraws.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Optional, TextIO

from .render import since_text

RESET = "\x1b[0m"
BOLD = "\x1b[1m"
RED = "\x1b[1;37;41m"     # high priority: white on red
YELLOW = "\x1b[1;30;43m"  # medium: black on yellow
CYAN = "\x1b[36m"         # low
GREEN = "\x1b[32m"
DIM = "\x1b[2m"
CLEAR = "\x1b[H\x1b[2J"

PRIORITY_COLOUR = {"high": RED, "medium": YELLOW, "low": CYAN}
BAR = 30


def _c(text: str, colour: str, colour_on: bool) -> str:
    return f"{colour}{text}{RESET}" if colour_on else text


def _bar(frac: float) -> str:
    frac = min(1.0, max(0.0, frac))
    n = int(round(frac * BAR))
    return "[" + "#" * n + "." * (BAR - n) + "]"


def render(status: dict[str, Any], show: Optional[dict[str, Any]] = None, colour: bool = True) -> str:
    """One screen of the live view."""
    lines = [_c("bench ITB pump: live view", BOLD, colour) + "  (research and education only; never for human use)"]
    state = str(status.get("state", "?"))
    if state == "running":
        lines.append("state     " + _c("RUNNING", GREEN, colour) +
                     f"  {status.get('drug', '?')} {status.get('rate_ug_per_day', '?')} µg/day"
                     f" at {status.get('concentration_ug_per_ml', '?')} µg/mL ({status.get('mode', '?')})")
        conc = status.get("concentration_ug_per_ml") or 0
        rate = status.get("rate_ug_per_day") or 0
        if conc:
            lines.append(f"rate      {rate / 24:.2f} µg/h = {rate / conc * 1000 / 24:.2f} µL/h")
    else:
        why = status.get("stop_reason") or "stopped"
        lines.append("state     " + _c("STOPPED", YELLOW, colour) + f"  ({why})")
    res = status.get("reservoir_ul")
    model = status.get("reservoir_model_ml")
    if isinstance(res, (int, float)) and isinstance(model, (int, float)) and model > 0:
        low = status.get("low_reservoir_ul", 2000)
        text = f"reservoir {_bar(res / (model * 1000))} {res} µL of {model} mL"
        if res <= low:
            text = _c(text + "  LOW", YELLOW, colour)
        lines.append(text)
    fc = status.get("forecast") or {}
    if fc.get("days_to_low") is not None:
        lines.append(f"forecast  low reservoir in {fc['days_to_low']} days, empty in {fc.get('days_to_empty', '?')} days")
    lines.append(f"delivered {status.get('delivered_ul', 0)} µL = {status.get('delivered_ug', 0)} µg"
                 f"  (24 h: {status.get('dose_24h_ug', 0)} µg)")
    if status.get("bolus"):
        b = status["bolus"]
        lines.append(f"bolus     {b.get('kind', '?')} running, {b.get('left_ug', '?')} µg left")
    alarms = status.get("alarms") or []
    if alarms:
        lines.append("alarms")
        for a in alarms:
            pr = str(a.get("priority", "?"))
            row = f" {pr.upper():6} {a.get('code', '?'):24} {a.get('state', '')}  since {since_text(a)}"
            lines.append(_c(row, PRIORITY_COLOUR.get(pr, BOLD), colour))
    else:
        lines.append("alarms    " + _c("none", GREEN, colour))
    up = status.get("uptime_s")
    wall = status.get("wall")
    lines.append(_c(f"uptime {up} s; clock {'set' if wall else 'not set'}", DIM, colour))
    if show:
        lines.append(_c("bench truth", BOLD, colour))
        outlet = show.get("scale_ug")
        scale = f"scale {outlet} µg, " if outlet is not None else ""
        lines.append(f"  {scale}outlet {show.get('outlet_nl', 0) / 1000:.3f} µL, head {show.get('head_steps', 0)} steps, "
                     f"battery {show.get('battery_mv', '?')} mV")
        if "pressure_kpa" in show:
            p = f"  line pressure {show['pressure_kpa']} kPa"
            if show.get("outlet_blocked"):
                p += "  OUTLET BLOCKED"
            if show.get("stalled"):
                p += "  MOTOR STALLED"
            lines.append(_c(p, RED, colour) if show.get("outlet_blocked") or show.get("stalled") else p)
        leds = show.get("leds") or {}
        red = _c(" RED ", RED, colour) if leds.get("red") else " red "
        yel = _c(" YEL ", YELLOW, colour) if leds.get("yellow") else " yel "
        hz = show.get("buzzer_hz", 0)
        lines.append(f"  leds {red}{yel} buzzer {str(hz) + ' Hz' if hz else 'off'}")
    return "\n".join(lines)


def run(fetch: Callable[[], tuple[dict[str, Any], Optional[dict[str, Any]]]], interval: float = 2.0,
        once: bool = False, out: Optional[TextIO] = None, colour: Optional[bool] = None) -> str:
    """Poll with `fetch` and redraw every `interval` seconds until Ctrl-C (or once)."""
    stream = out or sys.stdout
    if colour is None:
        colour = stream.isatty()
    if not interval > 0:
        raise ValueError(f"interval must be positive seconds, got {interval!r}")
    while True:
        st, show = fetch()
        screen = render(st, show, colour)
        if once:
            return screen
        stream.write((CLEAR if colour else "\n") + screen + "\n")
        stream.flush()
        time.sleep(interval)
