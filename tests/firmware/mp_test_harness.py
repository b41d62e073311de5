# Proves the harness runs on MicroPython, not CPython.
import sys
from mptest import eq


def test_runs_on_micropython():
    eq(sys.implementation.name, "micropython")
