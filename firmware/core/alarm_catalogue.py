# The alarm catalogue: every condition the pump alarms on, how loud (IEC 60601-1-8 priority),
# whether it latches, stops the motor or stops therapy, and the names of the events the alarm
# manager (core/alarms.py) records. Pure data and lookups; nothing here keeps state.
#
# Priorities follow IEC 60601-1-8 (high, medium, low). The SynchroMed II's "critical" alarms
# (two-tone) map to high; its "non-critical" ones (single tone) map to medium when the patient
# will be harmed within days if nobody acts (low reservoir, battery ERI), and to low when they
# are reminders (refill date). See docs/alarms.md for the reasoning per code.
from core.base import const

# Priority ranks: higher number = more urgent. Index into PRIORITY_NAMES for the IEC name.
LOW = const(1)
MEDIUM = const(2)
HIGH = const(3)
PRIORITY_NAMES = (None, "low", "medium", "high")

# The one place every alarm is defined.
# (code, priority, latching, stops_motor, stops_therapy); ROW_* below index a row.
#   latching:      keeps sounding after its cause clears until someone acknowledges it. Chosen
#                  where the cause can go away on its own (a blockage that frees itself, a
#                  battery that recovers at rest) or is a one-off event (a reset), so a person
#                  still learns that it happened.
#   stops_motor:   while the cause persists the motor must not move (motor_blocked()).
#   stops_therapy: the integrator also stops the running program; it needs a clinician to
#                  restart therapy once the cause is gone.
CATALOGUE = (
    ("RESERVOIR_EMPTY", HIGH, False, True, False),
    ("RESERVOIR_LOW", MEDIUM, False, False, False),
    ("OCCLUSION", HIGH, True, True, False),
    ("BATTERY_ERI", MEDIUM, True, False, False),
    ("BATTERY_EOS", HIGH, True, True, True),
    ("MEMORY_CRITICAL", HIGH, True, True, True),
    ("MEMORY_ERROR", MEDIUM, True, False, False),
    ("STOPPED_TOO_LONG", HIGH, False, False, False),
    ("REFILL_DUE", LOW, False, False, False),
    ("CLOCK_NOT_SET", MEDIUM, False, False, False),
    # The dose engine itself refuses what would pass the 24 h maximum (SR-003); the alarm tells
    # a person, it does not stop basal delivery below the limit.
    ("DOSE_LIMIT_24H", MEDIUM, True, False, False),
    # A one-off event: the app raises it at boot and clears it at once, so it shows "latched"
    # until acknowledged. Therapy resumes after a sound boot (SR-014); an unsound state is held
    # by SELF_TEST_FAILED / MEMORY_CRITICAL instead.
    ("WATCHDOG_RESET", MEDIUM, True, False, False),
    ("SELF_TEST_FAILED", HIGH, True, True, False),
    # Someone without the key sends frames that fail authentication (repeated, within a
    # minute): nothing is locked (docs/security.md), a person is told.
    ("AUTH_FAILURES", LOW, True, False, False),
    # With an outlet scale: the head turns and less than half the water it moves arrives, more
    # than the tubing holds behind a blockage (core/flow.py). Air, not drug, may be going into
    # the catheter: stop and tell a person now. Latching: once the head stops its cause is gone.
    ("NO_FLOW", HIGH, True, True, True),
    ("ALARM_TEST", LOW, False, False, False),
)
CODES = tuple(c[0] for c in CATALOGUE)
ALARM_COUNT = len(CATALOGUE)

# Fields of a catalogue row. Rows are tuples, so the control tick reads one without allocating.
ROW_CODE = const(0)
ROW_PRIORITY = const(1)
ROW_LATCHING = const(2)
ROW_STOPS_MOTOR = const(3)
ROW_STOPS_THERAPY = const(4)

# Default time a program may stay stopped before STOPPED_TOO_LONG (the integrator checks it).
STOPPED_TOO_LONG_DEFAULT_S = const(48 * 3600)
# Longest audio pause a single request may ask for (15 min). The protocol may restrict further.
MAX_PAUSE_MS = const(900000)

# Event kinds the manager records (index into EVENT_NAMES).
EV_RAISE = const(0)
EV_CLEAR = const(1)
EV_ACK = const(2)
EV_PAUSE = const(3)
EV_RESUME = const(4)
EV_LOST = const(5)
EVENT_NAMES = ("raise", "clear", "ack", "pause", "resume", "lost")


# Code -> catalogue index: the quarter-hour check clears several codes each time, and a scan
# of the catalogue per call was a tenth of a check's cost.
_INDEX = {CATALOGUE[i][ROW_CODE]: i for i in range(ALARM_COUNT)}


def index(code):
    """Catalogue index of `code`; ValueError naming the bad code and the valid ones."""
    i = _INDEX.get(code) if type(code) is str else None
    if i is not None:
        return i
    raise ValueError("unknown alarm code %r (valid: %s)" % (code, ", ".join(CODES)))


def info(code):
    """Catalogue entry of `code` as a dict: code, priority, latching, stops_motor,
    stops_therapy. ValueError for an unknown code."""
    row = CATALOGUE[index(code)]
    return {"code": row[ROW_CODE], "priority": PRIORITY_NAMES[row[ROW_PRIORITY]],
            "latching": row[ROW_LATCHING], "stops_motor": row[ROW_STOPS_MOTOR],
            "stops_therapy": row[ROW_STOPS_THERAPY]}


def catalogue():
    """Every alarm's catalogue entry (list of dicts, catalogue order)."""
    return [info(row[ROW_CODE]) for row in CATALOGUE]


def event_dict(e):
    """A recorded event (t, kind, catalogue index or -1, ms) as the dict the log and the
    protocol show (see AlarmManager.drain_events)."""
    return {"t": e[0], "ev": EVENT_NAMES[e[1]],
            "code": CATALOGUE[e[2]][ROW_CODE] if e[2] >= 0 else None, "ms": e[3]}


def snapshot_indexes(rows):
    """Catalogue indexes of AlarmManager.snapshot() rows [code, cause, acked] or [code, cause,
    acked, day, ms] (the wall time it was listed), in row order. ValueError naming the first
    row the catalogue does not allow."""
    if not isinstance(rows, (list, tuple)):
        raise ValueError("alarm snapshot must be a list of [code, cause, acked]")
    idx = []
    for r in rows:
        if not isinstance(r, (list, tuple)) or len(r) not in (3, 5):
            raise ValueError("alarm snapshot row must be [code, cause, acked] or [code, cause, acked, day, "
                             "ms], got %r" % (r,))
        if type(r[1]) is not bool or type(r[2]) is not bool:
            raise ValueError("alarm snapshot row %r: cause and acked must be booleans" % (r,))
        if len(r) == 5 and (type(r[3]) is not int or type(r[4]) is not int or r[3] < 0
                            or not 0 <= r[4] < 86_400_000):
            raise ValueError("alarm snapshot row %r: day and ms must be ints, day >= 0, ms of a day" % (r,))
        i = index(r[0])
        if not r[1] and (r[2] or not CATALOGUE[i][ROW_LATCHING]):
            raise ValueError("alarm snapshot row %r: only a latching alarm may be listed "
                             "without its cause, and then unacknowledged" % (r,))
        if i in idx:
            raise ValueError("alarm snapshot lists %s twice" % r[0])
        idx.append(i)
    return idx
