"""What every pumpctl command returns: data for --json, sentences for people."""
from __future__ import annotations

from typing import Any


class Out:
    """One result: data for --json, sentences for people."""

    def __init__(self, data: Any, text: str = "") -> None:
        self.data = data
        self.text = text
