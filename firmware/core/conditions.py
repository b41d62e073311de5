# What the pump's flags and measured conditions mean, as pure rules: numbers in, decisions out.
# The App applies them (raises, clears, logs, saves); keeping the rules here lets them be tested
# without a board, a log or a clock, and keeps the thresholds in one place.
from core.base import const
from core.pump_tick import (FLAG_EMPTY, FLAG_LOW, FLAG_LIMIT24, FLAG_STOPPED_LONG, FLAG_PERIODIC_STARTED,
                       FLAG_PERIODIC_REFUSED, FLAG_PERIODIC_SKIPPED, FLAG_BRIDGE_DONE, FLAG_PRIME_DONE,
                       FLAG_CALIBRATION_RUN_DONE)

# Battery thresholds (mV): elective replacement, end of service. A potentiometer on the Pico's
# ADC or the bench's battery fault stands in for a draining cell.
BATTERY_ERI_MV = const(3_300)
BATTERY_EOS_MV = const(3_000)
BATTERY_HYST_MV = const(50)  # a reading must rise this far past a threshold before its alarm clears

# What a rule asks of an alarm.
RAISE = const(1)
CLEAR = const(-1)
KEEP = const(0)

# Flag -> alarm raised, in the order they are raised. RESERVOIR_EMPTY also saves at once (the
# App's SAVE_ON_RAISE): a reset must not forget the reservoir ran dry.
_FLAG_ALARMS = ((FLAG_EMPTY, "RESERVOIR_EMPTY"), (FLAG_LOW, "RESERVOIR_LOW"),
                (FLAG_LIMIT24, "DOSE_LIMIT_24H"), (FLAG_STOPPED_LONG, "STOPPED_TOO_LONG"))
SAVE_ON_RAISE = ("RESERVOIR_EMPTY",)


def alarms_for_flags(flags):
    """The alarms the pump's flags raise, in order."""
    return [code for flag, code in _FLAG_ALARMS if flags & flag]


def events_for_flags(flags, conc):
    """The log records the pump's flags ask for, in order, as (kind, data); `conc` is the
    concentration now delivered (a bridge's end records it)."""
    out = []
    if flags & FLAG_PERIODIC_STARTED:
        out.append(("bolus", {"kind": "periodic", "outcome": "started"}))
    if flags & FLAG_PERIODIC_REFUSED:
        out.append(("bolus", {"kind": "periodic", "outcome": "refused_limit", "why": "24 h maximum"}))
    if flags & FLAG_PERIODIC_SKIPPED:
        out.append(("bolus", {"kind": "periodic", "outcome": "skipped", "why": "another bolus was running"}))
    if flags & FLAG_BRIDGE_DONE:
        out.append(("bridge_done", {"conc": conc}))
    if flags & FLAG_PRIME_DONE:
        out.append(("prime_done", {}))
    if flags & FLAG_CALIBRATION_RUN_DONE:
        out.append(("calibration_run_done", {}))
    return out


def battery_eos(mv):
    """End of service: at or below the threshold; cleared only once a reading has risen past
    the hysteresis (a new cell: the clinician may resume)."""
    if mv <= BATTERY_EOS_MV:
        return RAISE
    if mv > BATTERY_EOS_MV + BATTERY_HYST_MV:
        return CLEAR
    return KEEP


def battery_eri(mv):
    """Elective replacement: between the two thresholds. At end of service EOS says it all, so
    ERI is neither raised nor cleared there."""
    if BATTERY_EOS_MV < mv <= BATTERY_ERI_MV:
        return RAISE
    if mv > BATTERY_ERI_MV + BATTERY_HYST_MV:
        return CLEAR
    return KEEP


# DOSE_LIMIT_24H's cause is gone once the rolling 24 h dose is this far below the maximum: a
# margin, so a window that hovers at the limit does not raise and clear it at every check.
LIMIT24_CLEAR_PCT = const(5)


def dose_limit_clear(dose_24h_ug, max24_ug):
    """True when the rolling 24 h dose is back under the maximum by the margin (no maximum:
    nothing to hold the alarm)."""
    return max24_ug <= 0 or dose_24h_ug * 100 <= max24_ug * (100 - LIMIT24_CLEAR_PCT)


def refill_due(today, refill_day):
    """The forecast day of the low reservoir has come (no forecast: never due)."""
    return refill_day is not None and today >= refill_day


def occlusion(stalled, running, alarm_active):
    """The minute's look at the head: RAISE (stop and alarm) if it is stalled while therapy
    runs, CLEAR once it moves freely again (the alarm stays latched until acknowledged)."""
    if stalled:
        return RAISE if running else KEEP
    return CLEAR if alarm_active else KEEP


def minute_clears(running, reservoir_low, auth_attacked, clock_set):
    """The alarms whose cause a minute's measurement finds gone. auth_attacked: frames failed
    authentication within the last 5 minutes (services/auth.py under_attack)."""
    out = []
    if not auth_attacked:
        out.append("AUTH_FAILURES")
    if clock_set:
        out.append("CLOCK_NOT_SET")
    if running:
        out.append("STOPPED_TOO_LONG")
    if not reservoir_low:
        out.append("RESERVOIR_LOW")
    return out
