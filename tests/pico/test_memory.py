"""Memory on the rp2 port itself: the heap after boot and its low-water mark over a programmer's
visit (tests/pico/scenario.py), measured by the firmware with gc.mem_free() after each request
and each control tick. `make bench` prints the same figures (docs/benchmarks.md)."""
from __future__ import annotations

import json
from pathlib import Path

from .rig import ROOT, Board
from . import scenario

# Margin the firmware must keep free at its worst moment: a log page or a frame being built
# needs a few KB in one piece; below this a fragmented heap starts refusing requests.
MIN_FREE = 24 * 1024


def test_a_programmers_visit_fits_the_picos_heap(board: Board) -> None:
    res = scenario.run(board)
    out = ROOT / "build" / "pico-memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    for bad in ("MEMORY_ERROR", "MEMORY_CRITICAL", "SELF_TEST_FAILED"):
        assert bad not in res["alarms"], res
    assert res["state"] == "running", res
    assert res["log_records"] > 10 and res["history_hours"] >= 1, res
    assert res["min_free"] >= MIN_FREE, res
    kinds = [r["type"] for r in board.log()]
    assert "internal_error" not in kinds, kinds
