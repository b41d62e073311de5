# Both boards held to the one board contract (firmware/board_contract.py) on the real MicroPython
# interpreter, without the emulator: the Pico board with the fake machine/rp2, the virtual bench
# as its launcher builds it. A member missing on either board fails here.
import fakes

machine, rp2 = fakes.install()  # before any pico import

import board_contract
from mptest import eq, raises, req


class NullPort:
    async def read(self):
        return b"x"

    def write(self, b):
        return len(b)


def _pico(root=None):
    from pico.board import PicoBoard
    fakes.reset()
    return PicoBoard(port=NullPort(), root=root)


def _sim(flash=False):
    from sim.board import SimBoard, FileNvram
    b = SimBoard(port=NullPort())
    if flash:  # what run.py adds when the bench has a flash image
        b.nvram = FileNvram("/tmp/_contract_nvram_%d" % id(b))
        b.storage_root = "/tmp"
    return b


@req("SR-047")
def test_pico_board_keeps_the_contract():
    eq(board_contract.problems(_pico()), [])
    eq(board_contract.problems(_pico("/tmp")), [])


@req("SR-047")
def test_sim_board_keeps_the_contract():
    eq(board_contract.problems(_sim()), [])
    eq(board_contract.problems(_sim(flash=True)), [])


class Without:
    """`obj` with one member taken away (every other attribute passes through)."""

    def __init__(self, obj, skip):
        self._o = obj
        self._skip = skip

    def __getattr__(self, n):
        if n == self._skip:
            raise AttributeError(n)
        return getattr(self._o, n)


def test_every_member_is_checked_on_both_boards():
    # Take each member away in turn: the check must name it (the first Pico build died at boot
    # with AttributeError: 'Watchdog' object has no attribute 'feed_ms').
    n = 0
    for make in (_pico, _sim):
        for name, kind, spec, _doc in board_contract.BOARD:
            bad = board_contract.problems(Without(make(), name))
            eq(("board.%s is missing" % name) in bad, True, (name, bad))
            n += 1
            if kind not in ("part", "part?"):
                continue
            for mname, _k, _t in spec:
                b = make()
                part = getattr(b, name)
                if part is None:
                    b = _sim(flash=True) if name == "nvram" else b
                    part = getattr(b, name)
                if part is None:
                    continue  # button on the bench: None is allowed and checked above
                setattr(b, name, Without(part, mname))
                bad = board_contract.problems(b)
                eq(("board.%s.%s is missing" % (name, mname)) in bad, True, (name, mname, bad))
                n += 1
    eq(n > 60, True, "members checked: %d" % n)


def test_wrong_types_are_named():
    b = _pico()
    b.watchdog.feed_ms = "1000"
    b.initial_fill_ul = True
    bad = board_contract.problems(b)
    eq("board.watchdog.feed_ms must be int, got '1000'" in bad, True, bad)
    eq("board.initial_fill_ul must be int, got True" in bad, True, bad)


@req("SR-047")
def test_the_app_refuses_a_board_that_breaks_it_in_one_sentence():
    import app
    b = _sim()
    b.motor = None
    e = raises(ValueError, app.App, b)
    eq("board.motor is None" in str(e), True, str(e))
    eq("board_contract.py" in str(e), True)
