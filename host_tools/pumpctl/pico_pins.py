"""The emulated Pico's control channel (pico-emu/README.md) and the pump's pins on it: the
bolus button, the battery on ADC0, and what STEP, EN/DIR, the LEDs and the buzzer did, read by
name from boards/pico/pins.py. pico.py starts and stops the emulator.

Research and education prototype: never for human use.
"""
from __future__ import annotations

import ast
import json
import time
from pathlib import Path
from typing import Any, Optional

from . import paths, procs
from .errors import BenchError


class PicoError(BenchError):
    """The emulated Pico could not start, answer or stop; the message says why."""


class PicoInfo(procs.ProcInfo):
    def __init__(self, d: dict[str, Any]) -> None:
        super().__init__(d)
        self.flash = Path(d["flash"])


# ---- the control channel ---------------------------------------------------------------------
def control(info: PicoInfo, line: str, timeout: float = 10.0) -> Any:
    """One control command (pico-emu/README.md); returns the parsed JSON reply (or "ok")."""
    try:
        buf = procs.ask(info.control, line.encode(), timeout)
    except OSError as e:
        raise PicoError(f"the emulated Pico's control channel did not answer {line.split()[0]!r}: {e}") from None
    text = buf.decode(errors="replace").strip()
    if text == "ok":
        return "ok"
    try:
        reply = json.loads(text)
    except ValueError:
        raise PicoError(f"the emulated Pico answered {line.split()[0]!r} with {text[:200]!r}") from None
    if isinstance(reply, dict) and "error" in reply:
        raise PicoError(f"the emulated Pico refused {line!r}: {reply['error']}")
    return reply


def board_pins() -> dict[str, Any]:
    """The pin map and divider of boards/pico/pins.py (read, not imported: it is firmware)."""
    tree = ast.parse((paths.repo_root() / "boards" / "pico" / "pins.py").read_text())
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def battery_raw(mv: int, p: Optional[dict[str, Any]] = None) -> int:
    """The 12-bit ADC0 reading a battery of `mv` gives through the board's divider."""
    p = p or board_pins()
    top, bottom, vref = p["DIVIDER_TOP_OHM"], p["DIVIDER_BOTTOM_OHM"], p["ADC_VREF_MV"]
    pin_mv = mv * bottom / (top + bottom)
    return max(0, min(4095, round(pin_mv * 4095 / vref)))


def set_battery(info: PicoInfo, mv: int) -> int:
    if not isinstance(mv, int) or isinstance(mv, bool) or not 0 <= mv <= 6600:
        raise PicoError(f"battery must be a whole number of mV in 0..6600 (what the divider can show), got {mv!r}")
    p = board_pins()
    channel = p["BATTERY_ADC"] - 26
    raw = battery_raw(mv, p)
    control(info, f"adc {channel} {raw}")
    return raw


def button(info: PicoInfo, action: str, press_ms: int = 200) -> None:
    """press (down for press_ms, then up), hold (down until release) or release."""
    pin = board_pins()["BUTTON"]
    if action == "press":
        control(info, f"pin {pin} 0")
        time.sleep(press_ms / 1000)
        control(info, f"pin {pin} z")
    elif action == "hold":
        control(info, f"pin {pin} 0")
    elif action == "release":
        control(info, f"pin {pin} z")
    else:
        raise PicoError(f"button action must be press, hold or release, got {action!r}")


def pins(info: PicoInfo) -> dict[str, Any]:
    """What the pump's pins did, by name (edge counts since start, levels now, buzzer PWM)."""
    p = board_pins()
    t = control(info, "time")
    levels = control(info, "levels")["pins"]
    out: dict[str, Any] = {"t_ns": t["t_ns"], "boots": t["boots"], "last_reset": t["last_reset"]}
    for name in ("STEP", "DIR", "EN", "LED_RED", "LED_YELLOW", "BUTTON"):
        e = control(info, f"edges {p[name]}")
        lv = levels[str(p[name])]
        out[name.lower()] = {"gpio": p[name], "level": lv["out"] if lv["oe"] else lv["in"],
                             "output": lv["oe"], "rising": e["rising"], "falling": e["falling"]}
    bz = control(info, f"pwm {p['BUZZER']}")
    out["buzzer"] = {"gpio": p["BUZZER"], "sounding": bz["sounding"], "freq_hz": bz["freq_hz"],
                     "duty": bz["duty"], "history": bz["history"]}
    return out
