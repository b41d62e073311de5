"""The alarm codes the firmware can raise (firmware/core/alarm_catalogue.py), for checking a
code the user typed before it is sent or waited for. tests/host/test_alarm_codes.py keeps this
list equal to the firmware's catalogue."""
from __future__ import annotations

ALARM_CODES: frozenset[str] = frozenset((
    "RESERVOIR_EMPTY", "RESERVOIR_LOW", "OCCLUSION", "BATTERY_ERI", "BATTERY_EOS",
    "MEMORY_CRITICAL", "MEMORY_ERROR", "STOPPED_TOO_LONG", "REFILL_DUE", "CLOCK_NOT_SET",
    "DOSE_LIMIT_24H", "WATCHDOG_RESET", "SELF_TEST_FAILED", "AUTH_FAILURES", "NO_FLOW",
    "ALARM_TEST",
))
