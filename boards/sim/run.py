# Entry point of the virtual bench: the firmware's own app.run() on a simulated board.
#   micropython boards/sim/run.py --control SOCK [--lockstep | --speed N] [options]
# The programmer port is this process's stdin/stdout (a pseudo-terminal set up by pumpctl).
import sys
import json

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
_root = _here + "/../.."
sys.path.insert(0, _root + "/boards")
sys.path.insert(0, _root + "/firmware")
# --lib DIR: precompiled .mpy modules (as flashed to a Pico) come first on the path.
for _i in range(len(sys.argv) - 1):
    if sys.argv[_i] == "--lib":
        sys.path.insert(0, sys.argv[_i + 1])

from sim.board import SimBoard  # noqa: E402
from sim.control import ControlServer  # noqa: E402
import app  # noqa: E402

_USAGE = """usage: run.py --control PATH [--lockstep | --speed N] [--true-pl N] [--nominal-pl N]
              [--reservoir-ul N] [--model-ml 10|20|40] [--device-id ID] [--hold PATH]
              [--flash IMAGE] [--keys FILE] [--wall DAY,MS] [--realistic] [--heap-lock-tick]
              [--physics FILE]"""


def _args(argv):
    opts = {"lockstep": True, "speed": 1, "true_pl": 50_000, "nominal_pl": 50_000,
            "reservoir_ul": 20_000, "model_ml": 20, "device_id": "SIM-0001", "control": None,
            "hold": None, "heap_lock_tick": False, "realistic": False, "flash": None,
            "keys": None, "wall": None, "lib": None, "physics": None}
    ints = {"--speed": "speed", "--true-pl": "true_pl", "--nominal-pl": "nominal_pl",
            "--reservoir-ul": "reservoir_ul", "--model-ml": "model_ml"}
    strs = ("--control", "--device-id", "--hold", "--flash", "--keys", "--wall", "--lib", "--physics")
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--lockstep":
            opts["lockstep"] = True
        elif a == "--realistic":
            opts["realistic"] = True
        elif a == "--heap-lock-tick":
            opts["heap_lock_tick"] = True
        elif a in ints and i + 1 < len(argv):
            i += 1
            opts[ints[a]] = int(argv[i])
            if a == "--speed":
                opts["lockstep"] = False
        elif a in strs and i + 1 < len(argv):
            i += 1
            opts[a[2:].replace("-", "_")] = argv[i]
        else:
            sys.stderr.write("unknown argument %s\n%s\n" % (a, _USAGE))
            sys.exit(2)
        i += 1
    return opts


def _storage(o, board):
    """Mount the bench's flash image (littlefs, Pico geometry) and provision it once."""
    if not o["flash"]:
        return
    from sim.flashfile import FileBlockDev, mount_lfs
    bdev = FileBlockDev(o["flash"])
    probe = bytearray(bdev.block_size)
    bdev.readblocks(0, probe)
    had_data = any(x != 0xFF for x in probe)
    formatted = mount_lfs(bdev, "/data")
    board.lost_data = formatted and had_data  # a wrecked filesystem, not a blank flash
    from sim.board import FileNvram
    board.nvram = FileNvram(o["flash"] + ".nvram")
    board.storage_root = "/data"
    board.flash = bdev
    board.formatted = formatted
    if o["keys"]:
        from services.auth import Auth
        auth = Auth("/data", board.device_id)
        if not auth.is_provisioned():
            with open(o["keys"]) as f:
                keys = json.load(f)
            auth.provision(keys, "physical")  # the bench's own first-boot provisioning


async def _bench(board, o):
    """The bench outlives the firmware: a watchdog reset reboots the firmware only."""
    import asyncio
    ctl = ControlServer(o["control"], board) if o["control"] else None
    first = True
    while True:
        fw = app.App(board, heap_lock_tick=o["heap_lock_tick"])
        if ctl is not None:
            ctl.app = fw
            if first:
                asyncio.create_task(ctl.serve(fw))
        first = False
        board.running_app = fw
        main_task = asyncio.create_task(app.main(fw))
        dog = asyncio.create_task(board.watchdog.run())
        await board.watchdog.expired.wait()
        sys.stderr.write("watchdog reset at %d ms\n" % board.clock.now_ms())
        for t in fw.tasks:
            t.cancel()
        main_task.cancel()
        dog.cancel()
        await asyncio.sleep_ms(0)
        board.reboot("watchdog")


def main():
    import asyncio
    o = _args(sys.argv[1:])
    held = open(o["hold"], "rb") if o["hold"] else None  # keeps the pty alive between hosts
    board = SimBoard(lockstep=o["lockstep"], speed=o["speed"], true_pl_per_step=o["true_pl"],
                     nominal_pl_per_step=o["nominal_pl"], reservoir_ul=o["reservoir_ul"],
                     model_ml=o["model_ml"], device_id=o["device_id"], realistic=o["realistic"])
    if o["wall"] and o["wall"] != "none":
        day, ms = o["wall"].split(",")
        board.clock.set_wall(int(day), int(ms))  # the bench's battery-backed RTC
    if o["physics"]:
        # The water, tubing and battery as the bench left them (pumpctl bench stop, a power
        # cut): the physical world does not forget when the pump's power goes.
        with open(o["physics"]) as f:
            board.bench.restore_physical(json.load(f)["state"])
    _storage(o, board)
    try:
        asyncio.run(_bench(board, o))
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        # Stopping the bench (or Ctrl-C): the firmware's own shutdown, as on a Pico.
        app.shutdown(getattr(board, "running_app", None), board)
        if held:
            held.close()


main()
