# Fake hardware for running boards/pico on the MicroPython unix interpreter.
# The unix port has its own builtin `machine` (no Pin) and no `rp2`, so install() puts these
# fakes into sys.modules before the board package is imported:
#     import fakes; machine, rp2 = fakes.install()
#     from pico.stepper import Stepper
import sys


def install():
    from fakes import machine as fm
    from fakes import rp2 as fr
    sys.modules["machine"] = fm
    sys.modules["rp2"] = fr
    reset()
    return fm, fr


def reset():
    """Forget every recorded pin, PWM, ADC, WDT, timer, PIO program and FIFO word."""
    from fakes import machine as fm
    from fakes import rp2 as fr
    fm.reset()
    fr.reset()
