# The command layer on the unix port: requests decoded and handed to the core, through the App
# as the protocol calls it (no storage: storage_root None).
from mptest import eq

import app as app_mod
from sim.board import SimBoard


class NullPort:
    async def read(self):
        return b"x"

    def write(self, b):
        return len(b)


def _app():
    b = SimBoard(lockstep=True, port=NullPort())
    b.storage_root = None
    b.nvram = None
    b.clock.set_wall(9800, 36_000_000)
    a = app_mod.App(b)
    a.boot()
    a.commands.program_set({"program": {"drug": "baclofen", "concentration_ug_per_ml": 2000,
                                        "mode": "continuous", "rate_ug_per_day": 500}})
    return a


def test_prime_takes_the_catheter_volume_per_cm_given_alone():
    # `pumpctl prime --catheter-nl-per-cm N` sends only catheter_nl_per_cm: it was ignored
    # (the handler looked for catheter_ul_per_cm), so the prime filled the old dead volume.
    a = _app()
    a.commands.settings({"catheter_cm": 10, "catheter_nl_per_cm": 1000})
    r = a.commands.prime({"catheter_nl_per_cm": 3000, "duration_min": 10})
    eq(a.pump.catheter_nl_per_cm, 3000)
    eq(r["volume_ul"], 30.0)


def test_prime_keeps_the_settings_not_given():
    a = _app()
    a.commands.settings({"tubing_ul": 20, "catheter_cm": 10, "catheter_nl_per_cm": 1000})
    a.commands.prime({"catheter_cm": 5})
    eq((a.pump.tubing_nl, a.pump.catheter_cm, a.pump.catheter_nl_per_cm), (20_000, 5, 1000))
