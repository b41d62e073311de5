"""Therapy on the RP2040's real PIO: the STEP pulses the state machine makes on GP2 are counted by
the emulator's pad model and compared with what the firmware says it delivered; EN is low only
while the head moves; DIR never changes."""
from __future__ import annotations

import time

import pytest

from .rig import Board, wait_until
from pumpctl import pico

PINS = pico.board_pins()
STEP, DIR, EN = PINS["STEP"], PINS["DIR"], PINS["EN"]


def _en_low_spans(changes: list[list[int]]) -> list[tuple[int, int]]:
    """(start_ns, end_ns) of every EN-low interval in a change list [[t_ns, level], ...]."""
    spans, low_at = [], None
    for t, level in changes:
        if level == 0 and low_at is None:
            low_at = t
        elif level == 1 and low_at is not None:
            spans.append((low_at, t))
            low_at = None
    return spans


@pytest.mark.safety("SR-008")
def test_step_edges_on_gp2_equal_delivered_steps_and_en_follows_the_moves(board: Board) -> None:
    board.ctl("clear")
    with board.pump() as p:
        p.link.request("refill", {"withdrawn_ul": 0, "volume_ul": 20000})
        # 10 mg/day of water at 1 mg/mL: 10 mL/day = 3.7 steps/s of 31.25 nL; then a clinician
        # bolus of 20 µL in a minute (640 steps, about 11 steps/s) on top.
        p.program_continuous(10000, 1000, "water")
        p.link.request("bolus", {"dose_ug": 20, "duration_min": 1})
    t0 = board.t_ns()
    wait_until("20 s of emulated therapy", lambda: board.t_ns() - t0 > 20e9, 90)
    with board.pump() as p:
        p.stop()
    time.sleep(0.5)  # the step already commanded finishes; EN is then released
    edges = board.edges(STEP)
    with board.pump() as p:
        st = p.status()
    assert st["state"] == "stopped"
    assert st["delivered_steps"] > 200, st["delivered_steps"]
    assert edges["rising"] == st["delivered_steps"], (edges["rising"], st["delivered_steps"])
    assert board.edges(STEP)["rising"] == edges["rising"], "no pulse after stop"
    en = board.edges(EN)
    assert board.level(EN) == 1, "EN high (driver off) when the head is not moving"
    spans = _en_low_spans(en["recent"])
    assert spans, en
    # Every STEP rising edge falls inside an EN-low interval, and every interval ends soon after
    # its last pulse: the driver is powered only while it moves.
    # (Both change lists hold the last 512 changes: compare where they overlap.)
    rises = [t for t, level in edges["recent"] if level == 1 and t >= spans[0][0]]
    for t in rises:
        assert any(a <= t <= b for a, b in spans), t
    for a, b in spans:
        n = sum(1 for t in rises if a <= t <= b)
        assert b - a <= (n + 2) * 2_600_000 + 5_000_000, (a, b, n)  # 400 steps/s = 2.5 ms a pulse
    d = board.edges(DIR)
    assert d["level"] == 1 and d["falling"] == 0 and d["rising"] <= 1, d
