# App boot and save on the unix port with a real (plain) file system: what is saved survives, and
# nothing is saved before boot has restored it (a Ctrl-C from mpremote during a Pico's boot once
# saved a blank state over the good one: calibration and program were gone).
import os
from mptest import eq, req

import app as app_mod
from sim.board import SimBoard, FileNvram


class NullPort:
    async def read(self):
        return b"x"

    def write(self, b):
        return len(b)


def _board(root):
    b = SimBoard(lockstep=True, port=NullPort())
    b.calibrated_at_build = False  # as a Pico: calibration lives only in the saved state
    b.storage_root = root
    b.nvram = FileNvram(root + "/nvram")
    b.clock.set_wall(9800, 36_000_000)
    return b


def _root():
    root = "/tmp/_app_boot_%d" % id(object())
    os.mkdir(root)
    return root


def _files(root):
    out = {}
    for n in os.listdir(root + "/state"):
        with open(root + "/state/" + n, "rb") as f:
            out[n] = f.read()
    return out


@req("SR-032")
def test_a_save_before_boot_has_restored_changes_nothing():
    root = _root()
    a = app_mod.App(_board(root))
    a.boot()
    a.commands.calibrate({"pl_per_step": 31250})
    eq(a.calibration.calibrated, True)
    a.save()
    saved = _files(root)
    b = app_mod.App(_board(root))  # the next boot, interrupted before boot() restored anything
    b.save()
    b.stores.state = a.stores.state  # even with the store open, as after a partial boot
    b.save()
    eq(_files(root), saved, "the saved state is untouched")
    c = app_mod.App(_board(root))
    c.boot()
    eq((c.calibration.calibrated, c.pump.pl_per_step), (True, 31250), "calibration kept across the reboot")


def test_an_outage_boot_could_not_measure_is_logged_when_the_clock_is_set():
    from services.startup import Outage
    from core import program as programs
    from core.druglib import LIBRARY
    from core.alarms import AlarmManager
    from core.pump import Pump

    class NoClock:
        def wall(self):
            return None
    seen = []
    p = Pump(AlarmManager())
    p.set_program(programs.parse({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                                  "rate_ug_per_day": 432}, LIBRARY), LIBRARY.max24_ug("baclofen"))
    o = Outage(p, NoClock(), lambda kind, data=None: seen.append((kind, data)))
    o.log_at_boot({"wall": [9800, 0]})
    eq(seen, [("under_delivery", {"down_ms": None, "why": "outage of unknown length (clock not set)"})])
    o.settle(9800, 200_000)  # 200 s after the last record, the pump up for none of it
    eq(seen[1], ("under_delivery", {"down_s": 200, "missed_ug": 1, "caught_up": False,
                                    "measured": "when the clock was set"}))
    o.settle(9800, 300_000)  # settled once
    eq(len(seen), 2)
