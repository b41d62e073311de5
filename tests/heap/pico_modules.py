# Heap taken by the Pico board's own modules (boards/pico), imported from .mpy the way a board
# loads them, with the test fakes standing in for the built-in machine and rp2 modules (on a
# Pico those live in flash). The fakes are imported first so their cost is not counted.
import gc
import sys


async def _live():
    ra = sys.modules.get("rig_asyncio")
    if ra is not None:
        await ra.checkpoint()
        return ra.live
    gc.collect()
    return gc.mem_alloc()


async def run(root, lfs=False):
    import json
    from fakes import machine, rp2
    sys.modules["machine"] = machine
    sys.modules["rp2"] = rp2
    import asyncio  # noqa: F401  (frozen into the Pico's firmware)
    import select  # noqa: F401
    before = await _live()
    costs = {}
    for name in ("pico.pins", "pico.clock", "pico.stepper", "pico.dcpump", "pico.buzzer", "pico.leds",
                 "pico.button", "pico.hx711", "pico.battery", "pico.port", "pico.board"):
        a = await _live()
        __import__(name)
        costs[name] = (await _live()) - a
    total = (await _live()) - before
    print("RESULT " + json.dumps({"ok": True, "pico_modules": total, "by_module": costs}))
