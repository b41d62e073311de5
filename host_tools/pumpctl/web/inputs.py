"""What the app's script sends, read as the CLI reads its arguments: a whole number in its unit,
a duration (90s, 15m, 6h), a volume (20mL), each refused as one sentence in the user's units
(a UsageError, which the app answers as {"error": {"code", "message"}}).

Research and education prototype: never for human use.
"""
from __future__ import annotations

from typing import Any, Optional

from flask import request

from ..durations import parse_ms
from ..errors import UsageError


def body() -> dict[str, Any]:
    d = request.get_json(silent=True)
    if d is None:
        d = {}
    if not isinstance(d, dict):
        raise UsageError("the request must be a JSON object")
    return d


def whole(d: dict[str, Any], name: str, unit: str, label: str, minimum: int = 1,
          default: Optional[int] = None) -> Optional[int]:
    """d[name] as a whole number of `unit` (text from a form field too), or `default` if empty."""
    v = d.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        return default
    if isinstance(v, bool):
        raise UsageError(f"{label} must be a whole number of {unit}, not {v!r}")
    if isinstance(v, str):
        try:
            v = int(v.strip())
        except ValueError:
            raise UsageError(f"{label} must be a whole number of {unit}, not {d.get(name)!r}") from None
    if not isinstance(v, int):
        raise UsageError(f"{label} must be a whole number of {unit}, not {v!r}")
    if v < minimum:
        raise UsageError(f"{label} must be {minimum} {unit} or more, not {v}")
    return v


def need(d: dict[str, Any], name: str, unit: str, label: str, minimum: int = 1) -> int:
    v = whole(d, name, unit, label, minimum)
    if v is None:
        raise UsageError(f"give {label} ({unit})")
    return v


def duration(d: dict[str, Any], name: str, label: str, default: Optional[str] = None) -> int:
    text = d.get(name, default)
    if text is None or not str(text).strip():
        raise UsageError(f"give {label}, e.g. 90s, 15m, 6h or 2d")
    try:
        return parse_ms(str(text).strip())
    except ValueError as e:
        raise UsageError(f"{label}: {e}") from None


def text(d: dict[str, Any], name: str) -> Optional[str]:
    v = d.get(name)
    if v is None:
        return None
    if not isinstance(v, str):
        raise UsageError(f"{name} must be text, not {v!r}")
    return v.strip() or None


def flag(d: dict[str, Any], name: str) -> bool:
    v = d.get(name, False)
    if not isinstance(v, bool):
        raise UsageError(f"{name} must be true or false, not {v!r}")
    return v


def names(d: dict[str, Any], name: str) -> list[str]:
    v = d.get(name) or []
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise UsageError(f"{name} must be a list of names")
    return [x for x in v if x]
