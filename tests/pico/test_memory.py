"""Memory on the rp2 port itself: the heap after boot and its low-water mark over a programmer's
visit (tests/pico/scenario.py), measured by the firmware with gc.mem_free() after each request
and each control tick. `make bench` prints the same figures (docs/benchmarks.md)."""
from __future__ import annotations

import json
from pathlib import Path

from .rig import ROOT, Board
from . import scenario

# Margin the live heap must leave at its worst moment (a request just answered, its reply still
# held): a log page or a frame being built needs a few KB in one piece, and a fragmented heap
# refuses requests well before it is full (tests/heap/README.md: 15-40 KB on the 64-bit port).
MIN_FREE = 40 * 1024


def test_a_programmers_visit_fits_the_picos_heap(board: Board) -> None:
    res = scenario.run(board)
    out = ROOT / "build" / "pico-memory.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    for bad in ("MEMORY_ERROR", "MEMORY_CRITICAL", "SELF_TEST_FAILED"):
        assert bad not in res["alarms"], res
    assert res["state"] == "running", res
    assert res["log_records"] > 10, res  # (history: the visit is shorter than an hour, 0 rows)
    assert res["peak_free"] >= MIN_FREE, res
    kinds = [r["type"] for r in board.log()]
    assert "internal_error" not in kinds, kinds
