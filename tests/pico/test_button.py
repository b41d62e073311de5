"""The patient bolus button on GP16, pressed through the emulator's control channel: a patient
bolus request through the real pin IRQ, with its lockout; held at boot, the pump does not start
and the REPL stays free."""
from __future__ import annotations

import time

import pytest

from .rig import Board, wait_until
from pumpctl import pico

PROGRAM = {"drug": "water", "concentration_ug_per_ml": 1000, "mode": "continuous", "rate_ug_per_day": 1000,
           "patient_bolus": {"dose_ug": 5, "duration_min": 1, "max_per_24h": 6, "lockout_min": 1}}


def _presses(board: Board) -> list[dict]:
    """Patient bolus requests in time order: a delivered one is in the event log, a refused one
    in the refusals ring (issue 16: patient traffic never takes a place in the event log)."""
    recs = [r for r in board.log() if r["type"] == "patient_bolus"]
    with board.pump() as p:
        d = p.log_page(0, 40, "refusals")
    recs += [r for r in d.get("records", []) if r["type"] == "patient_bolus"]
    recs.sort(key=lambda r: r.get("uptime", 0))
    return [r["data"] for r in recs]


@pytest.mark.safety("SR-004")
def test_button_press_requests_a_patient_bolus_with_its_lockout(module_board: Board) -> None:
    board = module_board
    with board.pump() as p:
        p.link.request("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
        p.program_set(PROGRAM, confirm=True)
    pico.button(board.info, "press")  # inside the minute's lockout after programming
    first = wait_until("the refused press in the log", lambda: _presses(board), 30)
    assert first[-1]["outcome"] == "refused_lockout" and first[-1]["src"] == "button", first
    t0 = board.t_ns()
    wait_until("the lockout after programming", lambda: board.t_ns() - t0 > 62e9, 60)
    pico.button(board.info, "press")
    got = wait_until("the delivered press", lambda: (lambda x: x if len(x) >= 2 else None)(_presses(board)), 30)
    assert got[1]["outcome"] == "delivered" and got[1]["src"] == "button", got
    st = board.request("status")
    assert st["bolus"] and st["bolus"]["kind"] == "patient", st["bolus"]
    pico.button(board.info, "press")  # again at once: the lockout after a bolus
    got = wait_until("the third press", lambda: (lambda x: x if len(x) >= 3 else None)(_presses(board)), 30)
    assert got[2]["outcome"] == "refused_lockout", got
    assert len(got) == 3, "one request per press: the contact bounce is filtered"


def test_button_held_at_boot_skips_auto_start_and_leaves_the_repl_free(module_board: Board) -> None:
    board = module_board
    pico.button(board.info, "hold")
    pico.reset(board.info)
    time.sleep(3)  # well past the moment main.py would have started the pump
    # No Ctrl-C: a running pump would take the bare Enter as an empty frame line and say
    # nothing; a free REPL answers with its prompt.
    seen = board.repl(b"\r\n", timeout=10)
    assert b">>> " in seen, seen
    assert b"Bench ITB pump" not in seen, seen
    pico.button(board.info, "release")
    pico.reset(board.info)
    board.wait_firmware()
    assert board.request("identify")["board"] == "pico", "released: the pump starts again"
