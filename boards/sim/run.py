# Entry point of the virtual bench: the firmware's own app.run() on a simulated board.
#   micropython boards/sim/run.py --control SOCK [--lockstep | --speed N] [options]
# The programmer port is this process's stdin/stdout (a pseudo-terminal set up by pumpctl).
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_root = _here + "/../.."
sys.path.insert(0, _root + "/boards")
sys.path.insert(0, _root + "/firmware")

from sim.board import SimBoard  # noqa: E402
from sim.control import ControlServer  # noqa: E402
import app  # noqa: E402

_USAGE = """usage: run.py --control PATH [--lockstep | --speed N] [--true-pl N] [--nominal-pl N]
              [--reservoir-ul N] [--model-ml 10|20|40] [--device-id ID] [--hold PATH]
              [--heap-lock-tick]"""


def _args(argv):
    opts = {"lockstep": True, "speed": 1, "true_pl": 50_000, "nominal_pl": 50_000,
            "reservoir_ul": 20_000, "model_ml": 20, "device_id": "SIM-0001", "control": None,
            "hold": None, "heap_lock_tick": False}
    ints = {"--speed": "speed", "--true-pl": "true_pl", "--nominal-pl": "nominal_pl",
            "--reservoir-ul": "reservoir_ul", "--model-ml": "model_ml"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--lockstep":
            opts["lockstep"] = True
        elif a == "--heap-lock-tick":
            opts["heap_lock_tick"] = True
        elif a in ints and i + 1 < len(argv):
            i += 1
            opts[ints[a]] = int(argv[i])
            if a == "--speed":
                opts["lockstep"] = False
        elif a in ("--control", "--device-id", "--hold") and i + 1 < len(argv):
            i += 1
            opts[a[2:].replace("-", "_")] = argv[i]
        else:
            sys.stderr.write("unknown argument %s\n%s\n" % (a, _USAGE))
            sys.exit(2)
        i += 1
    return opts


def main():
    o = _args(sys.argv[1:])
    held = open(o["hold"], "rb") if o["hold"] else None  # keeps the pty alive between hosts
    board = SimBoard(lockstep=o["lockstep"], speed=o["speed"], true_pl_per_step=o["true_pl"],
                     nominal_pl_per_step=o["nominal_pl"], reservoir_ul=o["reservoir_ul"],
                     model_ml=o["model_ml"], device_id=o["device_id"])
    if o["control"]:
        board.control = ControlServer(o["control"], board)
    try:
        app.run(board, heap_lock_tick=o["heap_lock_tick"])
    except SystemExit:
        pass
    finally:
        if held:
            held.close()


main()
