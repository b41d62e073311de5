# The board contract: everything the firmware uses of the board it is handed, in one place.
# Both boards (boards/sim, boards/pico) are held to it: App() checks it before anything runs,
# tests/firmware/mp_test_board_contract.py checks both boards on the unix port (no emulator),
# and docs/architecture.md's table is generated from it (tests/host/test_board_contract_doc.py).
# A board that lacks a member fails at construction with a sentence naming it, never with an
# AttributeError deep in a running task (the first Pico build stopped dosing at boot that way).
#
# Each entry: (name, kind, members or type, what it is).
#   kind "value": an attribute whose type is given ("str", "int", "bool", "str|None").
#   kind "call":  a method of the board; the third field is "(arguments): what it returns".
#   kind "part":  an object with the listed members; "part?" may also be None.
# A member is (name, "value" type | "call" returns, what it is).

BOARD = (
    ("name", "value", "str", '"sim" or "pico": which board this is (shown by identify)'),
    ("device_id", "value", "str", "per-device identity, part of every signed frame"),
    ("storage_root", "value", "str|None", "path of the mounted littlefs (None: nothing is kept)"),
    ("lost_data", "value", "bool", "the flash held data littlefs could not mount: the self-test fails"),
    ("nominal_pl_per_step", "value", "int", "volume per motor step (pL) until `pumpctl calibrate`"),
    ("reservoir_model_ml", "value", "int", "the modelled reservoir size (mL)"),
    ("initial_fill_ul", "value", "int", "water in a fresh reservoir (a bench starts filled; 0 on a board)"),
    ("calibrated_at_build", "value", "bool", "the nominal calibration is known (a bench); a board must be calibrated"),
    ("clock", "part", (
        ("ticks", "call", "(): int ms, wrapping like time.ticks_ms"),
        ("diff", "call", "(a, b): int ms from b to a, as ticks_diff"),
        ("wait", "call", "(ms, sleeper): coroutine, returns after ms or as soon as sleeper.kick()"),
        ("Sleeper", "call", "(): a new sleeper for wait()"),
        ("wall", "call", "(): (day since 2000-01-01, ms of day), or None when never set"),
        ("set_wall", "call", "(day, ms): None, sets the wall clock"),
    ), "board time; on the bench, virtual"),
    ("port", "part", (
        ("read", "call", "(): coroutine, bytes (at least one)"),
        ("write", "call", "(b): int written; never blocks (drops when the host is gone)"),
    ), "the programmer link (USB CDC on a Pico, a pty on the bench)"),
    ("motor", "part", (
        ("move", "call", "(steps, over_ms): None; queues steps spread evenly over over_ms (0: at full speed)"),
        ("left", "call", "(): int steps queued and not yet pulsed"),
        ("enable", "call", "(on): None; enable(False) aborts a move and releases EN"),
        ("stalled", "call", "(): bool, the head is blocked"),
        ("stall_flag", "value", "ThreadSafeFlag; set when the driver stalls"),
    ), "EN is released whenever the pump is not moving"),
    ("buzzer", "part", (
        ("tone", "call", "(hz): None"),
        ("off", "call", "(): None"),
    ), "alarm sound"),
    ("leds", "part", (
        ("set", "call", "(red, yellow): None"),
    ), "alarm lights"),
    ("button", "part?", (
        ("pressed_flag", "value", "ThreadSafeFlag"),
    ), "patient bolus button, or None"),
    ("scale", "part?", (
        ("read_ug", "call", "(): int mass in ug, or None before a first sample"),
    ), "outlet scale (HX711, the bench's), or None"),
    ("watchdog", "part", (
        ("start", "call", "(timeout_ms): None; once"),
        ("feed", "call", "(): None"),
        ("release", "call", "(): None; stops it, only when a person interrupts the firmware (Ctrl-C)"),
        ("feed_ms", "value", "int"),
        ("timeout_ms", "value", "int"),
    ), "hardware watchdog: the supervisor feeds it every feed_ms while every task checks in"),
    ("nvram", "part?", (
        ("write", "call", "(buf): None; keeps one journal record"),
        ("read", "call", "(n): bytes of the last record, or None"),
        ("kind", "value", "str"),
        ("min_interval_ms", "value", "int"),
        ("max_steps", "value", "int"),
    ), "non-volatile store of the step journal (docs/persistence.md), or None"),
    ("battery_mv", "call", "(): int mV", "battery sense"),
    ("reset_cause", "call", '(): str, "power_on", "watchdog" or "soft"', "why the chip last reset"),
    ("tasks", "call", "(app): iterable of coroutines the app runs beside its own", "board-specific tasks"),
    ("shutdown", "call", "(): None", "leave the hardware safe: motor off and released, buzzer off"),
)

_TYPES = {"str": (str,), "int": (int,), "bool": (bool,), "str|None": (str, type(None))}


def _value_ok(v, t):
    types = _TYPES.get(t)
    if types is None:
        return True  # a type the check cannot name on every port (ThreadSafeFlag): presence only
    if isinstance(v, bool) and bool not in types:
        return False
    return isinstance(v, types)


def _member(owner, where, name, kind, t, out):
    try:
        v = getattr(owner, name)
    except AttributeError:
        out.append("%s is missing" % where)
        return
    if kind == "call":
        if not callable(v):
            out.append("%s must be a method" % where)
    elif not _value_ok(v, t):
        out.append("%s must be %s, got %r" % (where, t, v))


def problems(board):
    """Every way `board` breaks the contract, as short sentences (empty when it keeps it)."""
    out = []
    for name, kind, spec, _doc in BOARD:
        if kind in ("value", "call"):
            _member(board, "board." + name, name, kind, spec, out)
            continue
        try:
            part = getattr(board, name)
        except AttributeError:
            out.append("board.%s is missing" % name)
            continue
        if part is None:
            if kind != "part?":
                out.append("board.%s is None" % name)
            continue
        for mname, mkind, mt in spec:
            _member(part, "board.%s.%s" % (name, mname), mname, mkind, mt, out)
    return out


def check(board):
    """Raise ValueError naming every broken member; the firmware refuses to run on such a board."""
    bad = problems(board)
    if bad:
        raise ValueError("board %r breaks the board contract (board_contract.py): %s"
                         % (getattr(board, "name", "?"), "; ".join(bad)))
