# What the App does about the pump's flags after each tick and about the conditions it measures
# once a minute: the rules are core/conditions.py's (numbers in, decisions out); this module
# applies them to the App's alarms, log, motor and history, and stops the motor on an occlusion.
from core import conditions
from core.conditions import RAISE, CLEAR
from core.pump import RUNNING
from services.history import programmed_ng_for_hour

_HOUR_MS = 3_600_000
_HEAP_MARK_MS = 6 * _HOUR_MS  # the heap's low-water sample: with the 6-hourly save


def occlusion(app):
    """The head is turning but the line is blocked: stop the motor, alarm high."""
    if app.pump.state == RUNNING:
        app.pump.stop("occlusion")
    app.motor_abort()
    if app.alarms.raise_alarm("OCCLUSION", app.pump.up_s):
        app.event("occlusion", {"delivered_steps": app.pump.steps_total.value()})
        app.save()


def apply_flags(app, flags):
    """Raise and log what the pump's flags mean."""
    now = app.pump.up_s
    for code in conditions.alarms_for_flags(flags):
        if app.alarms.raise_alarm(code, now) and code in conditions.SAVE_ON_RAISE:
            app.save()
    conv = app.pump.conv
    for kind, data in conditions.events_for_flags(flags, conv.conc if conv else None):
        app.event(kind, data)


def _battery(app, now):
    mv = app.board.battery_mv()
    eos = conditions.battery_eos(mv)
    if eos == RAISE:
        if app.pump.state == RUNNING:
            app.pump.stop("battery end of service")
        if app.alarms.raise_alarm("BATTERY_EOS", now):
            app.event("battery", {"mv": mv, "level": "end_of_service"})
            app.save()
    elif eos == CLEAR:
        app.alarms.clear("BATTERY_EOS", now)  # a new cell: the clinician may resume
    eri = conditions.battery_eri(mv)
    if eri == RAISE:
        if app.alarms.raise_alarm("BATTERY_ERI", now):
            app.event("battery", {"mv": mv, "level": "elective_replacement"})
    elif eri == CLEAR:
        app.alarms.clear("BATTERY_ERI", now)


def battery_now(app):
    """Measure the battery at once (App.measure): raise or clear EOS/ERI as the check would."""
    _battery(app, app.pump.up_s)


def _hourly(app):
    hours = app.stores.hours
    if hours is None or not app.pump.clock_set:
        return
    hour = app.pump.day * 24 + app.pump.ms // _HOUR_MS
    prev = hours.hour
    if prev is not None and prev != hour:
        hours.flush(hour, app.pump, programmed_ng_for_hour(app.pump.program, prev % 24))
    elif prev is None:
        hours.start(hour, app.pump)


def check(app):
    """Every quarter hour of the pump's clock: conditions that are measured rather than counted
    (battery, stall, clock, refill date, alarms whose cause is gone), the hour's history, and
    the journal's heartbeat. Why a quarter hour is often enough: docs/alarms.md."""
    if app.pump.ms % _HEAP_MARK_MS < 900_000:
        app.heap.mark()  # gc.mem_free() scans the whole heap (9 ms on a Pico): 4 times a day
    now = app.pump.up_s
    app.journal_write(heartbeat=True)  # an outage is measured from the last check alive
    _battery(app, now)
    w = app.clock.wall()
    auth = app.stores.auth
    attacked = auth is not None and auth.under_attack(app.clock.ticks())
    running = app.pump.state == RUNNING
    for code in conditions.minute_clears(running, app.pump.reservoir.low(), attacked, w is not None):
        app.alarms.clear(code, now)
    p = app.pump
    if conditions.dose_limit_clear(p.rolling.total_ug(now), p.max24_ug):
        app.alarms.clear("DOSE_LIMIT_24H", now)  # the 24 h window rolled on below the maximum
    flow(app)
    if w is None:
        app.alarms.raise_alarm("CLOCK_NOT_SET", now)
    else:
        if conditions.refill_due(w[0], app.refill.day):
            app.alarms.raise_alarm("REFILL_DUE", now)
        _hourly(app)
    stall(app)


def flow(app):
    """With an outlet scale: does the water the head moves arrive (core/flow.py)? If not, stop
    therapy and the motor, alarm high; once the head is stopped the cause is gone (the alarm
    stays latched until acknowledged). Without a scale the pump only counts (docs/alarms.md)."""
    scale = app.board.scale
    if scale is None:
        return
    p = app.pump
    f = app.flow
    # A priming run fills the empty line first: its water reaches the outlet only at its end,
    # so the window starts again after it.
    turning = p.state == RUNNING and not p.run.steps_left
    res = f.look(p.steps_total.value(), p.pl_per_step, scale.read_ug(), turning, p.up_s)
    if res == RAISE:
        p.stop("no flow")
        app.motor_abort()
        if app.alarms.raise_alarm("NO_FLOW", p.up_s):
            app.event("no_flow", {"expected_nl": f.expected_nl, "arrived_nl": f.arrived_nl})
            app.save()
    elif res == CLEAR:
        app.alarms.clear("NO_FLOW", p.up_s)


def stall(app):
    """The driver's stall line against the occlusion alarm (the quarter-hour check, and at once
    when the motor's stall flag rises)."""
    occ = conditions.occlusion(app.board.motor.stalled(), app.pump.state == RUNNING,
                               app.alarms.state("OCCLUSION") is not None)
    if occ == RAISE:
        occlusion(app)
    elif occ == CLEAR:
        # The head moves freely again: the cause is gone (the alarm stays latched until
        # acknowledged), and the clinician may resume.
        app.alarms.clear("OCCLUSION", app.pump.up_s)
