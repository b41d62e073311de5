"""Power cuts and Ctrl-C at random moments of therapy on the rp2 port: a campaign of rounds, one
round in `make test`, PICO_SOAK_ROUNDS (default 30) in `make pico-soak`.

Each round runs the pump for a random stretch of its own time (sometimes with a bolus on top),
then either pulls the plug (the emulator killed with SIGKILL, its flash file exactly what the
chip's flash held) or sends Ctrl-C over the port and presses RUN. After it, whatever the moment:
the pump comes back running the same program, never counts more steps than the PIO made, forgets
at most the step journal's bound, keeps every log record it had written, and never catches up.
Seeded: a failure names the seed to run it again with PICO_SOAK_SEED."""
from __future__ import annotations

import os
import random
import time

import pytest

from pumpctl import pico

from .rig import SOAK, Board, wait_until

PINS = pico.board_pins()
STEP, EN = PINS["STEP"], PINS["EN"]
JOURNAL_STEPS = 320  # boards/pico/nvram.py: a record at least every 320 steps or 60 s
RATE = 10000         # µg/day of water at 1000 µg/mL: 3.7 steps/s of 31.25 nL
ROUNDS = int(os.environ.get("PICO_SOAK_ROUNDS", "30")) if SOAK else 1
SEED = int(os.environ.get("PICO_SOAK_SEED", str(int(time.time()) & 0xFFFF)))


def _ctrl_c(board: Board) -> None:
    seen = board.repl(b"\x03")  # what mpremote and Thonny send
    assert b">>> " in seen, seen
    pico.reset(board.info)


def _record(board: Board, seq: int) -> dict:
    recs = board.request("log", {"since": seq - 1}).get("records", [])
    return recs[0] if recs and recs[0]["seq"] == seq else {}


@pytest.mark.safety("SR-007", "SR-032")
def test_random_power_cuts_and_ctrl_c_never_overcount_lose_records_or_catch_up(module_board: Board) -> None:
    board = module_board
    rng = random.Random(SEED)
    with board.pump() as p:
        p.link.request("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
        p.program_continuous(RATE, 1000, "water", confirm=True)
    d0 = board.request("status")["delivered_steps"] - board.edges(STEP)["rising"]
    made = 0  # STEP pulses made by emulator processes already killed
    for n in range(ROUNDS):
        where = f"seed {SEED}, round {n + 1} of {ROUNDS}"
        if rng.random() < 0.4:
            board.request("bolus", {"dose_ug": rng.randint(5, 30), "duration_min": 5})
        run_s = rng.uniform(0.5, 8.0)
        t0 = board.t_ns()
        wait_until(f"{run_s:.1f} s of emulated time ({where})", lambda: board.t_ns() - t0 > run_s * 1e9, run_s * 6 + 30)
        before = board.request("status")
        last = _record(board, before["log_seq"])
        cut = rng.random() < 0.7
        how = "power cut" if cut else "Ctrl-C and RUN"
        at_cut = made + board.edges(STEP)["rising"]  # a pulse or two may still come before the kill
        if cut:
            board.power_cut()
            made = at_cut  # the new emulator process counts from zero
        else:
            _ctrl_c(board)
        board.wait_firmware()
        after = board.request("status")
        pulses = made + board.edges(STEP)["rising"]
        kept = after["delivered_steps"] - d0
        assert after["state"] == "running" and after["rate_ug_per_day"] == RATE, (where, how, after["state"])
        # A Ctrl-C saves the engine's count, which may lead the STEP edges by: the batch's
        # even spread (1 step), steps a late wake left owed (the loop busy with the host's
        # requests; 2 seen under a loaded `make test`), and the rebooted pump's own first batch
        # when status is read (1). So at most 4 (seed 12755 met 3, seed 30875 met 4 with both
        # test workers busy and passed alone); the count is never behind what was made.
        assert kept <= pulses + 4, (where, how, "counted more than the PIO made", kept, pulses)
        was = before["delivered_steps"] - d0
        assert kept >= was - JOURNAL_STEPS, (where, how, "forgot more than the journal's bound", kept, was)
        assert after["log_seq"] > before["log_seq"], (where, how, "log records lost", before["log_seq"], after["log_seq"])
        assert _record(board, before["log_seq"]) == last, (where, how, "the last record before it changed")
        assert after["bolus"] is None, (where, how, "a cut bolus is never resumed")
        board.time_sync()
        # No catch-up: the next stretch moves at the programmed rate.
        n0, t0 = board.edges(STEP)["rising"], board.t_ns()
        wait_until(f"3 s of emulated time ({where})", lambda: board.t_ns() - t0 > 3e9, 60)
        rate = (board.edges(STEP)["rising"] - n0) / ((board.t_ns() - t0) / 1e9)
        assert rate <= RATE * 1e6 / 86_400 / 31_250 * 1.3 + 0.7, (where, how, f"{rate:.2f} steps/s")
    with board.pump() as p:
        p.stop()
    time.sleep(0.5)
    assert board.level(EN) == 1, "EN released after the campaign"
