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


class LinkFailed(PumpctlError):
    """The host could not talk to the pump: the port would not open, failed in use, or no
    reply came (the firmware's LinkError is something else: a bad frame it received)."""
    code = "LINK"


class PortUnavailable(LinkFailed):
    """The port could not be opened (absent, not yet back after a reset, or refused)."""


class LinkLost(LinkFailed):
    """The port failed while in use: the board was reset or unplugged (hangup, EIO, ...)."""


class NoReply(LinkFailed):
    """The port stayed open but no reply to a request came, after every retry."""


class RequestTooLarge(LinkFailed):
    """A request does not fit in one frame (frames.MAX_FRAME)."""


LinkError = LinkFailed  # the name before issue 14, kept for scripts that catch it


class BenchError(PumpctlError):
    code = "BENCH"


class UsageError(PumpctlError):
    code = "USAGE"
