"""Durations as people write them: 90s, 15m, 6h, 2d, 1h30m, 500ms."""
from __future__ import annotations

import re

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")


def parse_ms(text: str) -> int:
    t = text.strip().lower()
    if not t:
        raise ValueError("empty duration")
    if t.isdigit():
        raise ValueError(f"duration {text!r} needs a unit: ms, s, m, h or d (e.g. 90s, 15m, 6h, 2d)")
    pos, total = 0, 0
    for m in _PART.finditer(t):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(t):
        raise ValueError(f"cannot read duration {text!r}: use forms like 90s, 15m, 6h, 2d or 1h30m")
    return total


def format_ms(ms: int) -> str:
    if ms % 86_400_000 == 0 and ms:
        return f"{ms // 86_400_000}d"
    if ms % 3_600_000 == 0 and ms:
        return f"{ms // 3_600_000}h"
    if ms % 60_000 == 0 and ms:
        return f"{ms // 60_000}m"
    if ms % 1000 == 0:
        return f"{ms // 1000}s"
    return f"{ms}ms"
