"""Exceptions the programmer raises; each carries a code scripts can test and a sentence."""
from __future__ import annotations


class PumpctlError(Exception):
    code = "ERROR"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class DeviceError(PumpctlError):
    """The pump refused a request: `code` is the device's error code."""


class LinkError(PumpctlError):
    code = "LINK"


class BenchError(PumpctlError):
    code = "BENCH"


class UsageError(PumpctlError):
    code = "USAGE"
