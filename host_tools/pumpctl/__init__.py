"""pumpctl: the external programmer for the bench ITB pump emulator.

Research and education prototype: never for human use.
"""
__version__ = "0.1.0"

from .api import Pump, connect  # noqa: E402,F401
from .errors import DeviceError, PumpctlError  # noqa: E402,F401
