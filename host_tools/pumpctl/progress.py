"""A plain progress bar on stderr, shown only to people (a terminal) and never in --json."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class Progress:
    def __init__(self, total: int, label: str, enabled: bool = True, stream: Optional[TextIO] = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0

    def __enter__(self) -> "Progress":
        return self

    def update(self, done: int) -> None:
        self.done = done
        if not self.enabled:
            return
        frac = min(1.0, done / self.total)
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        el = time.monotonic() - self.start
        self.stream.write(f"\r{self.label} [{bar}] {frac * 100:5.1f}% {el:5.1f}s")
        self.stream.flush()

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
