"""`make bench`'s measuring functions (tests/bench/run_bench.py) on short runs: they are not
part of `make test`'s figures, but they use the same API as everything else, and an API change
that breaks them must show here rather than on the day someone runs the benchmarks."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import run_bench  # noqa: E402


def test_the_lockstep_run_counts_exactly_and_downloads_the_log(home: Path) -> None:
    r = run_bench.lockstep_run(2)
    assert r["worst_steps"] == 0 and r["log_records"] >= 2 and r["boot_s"] > 0, r


def test_the_year_run_turns_what_it_counts(home: Path) -> None:
    r = run_bench.year_run(days=3)
    assert r["delivered_steps"] == r["head_steps"] == round(r["exact_steps"]) == 15_000, r
    assert 90 <= r["wakes_per_day"] <= 200, r


def test_the_alarm_day_sounds_occlusion(home: Path) -> None:
    r = run_bench.alarm_day(hours=1)
    assert r["codes"] == ["OCCLUSION"] and r["wakes_per_day"] > 10_000, r


def test_the_core_year_runs(home: Path) -> None:
    r = run_bench.core_year()
    assert "error" not in r and float(r["worst_steps"]) <= 0.501, r  # rounds to the nearest step


def test_the_round_trips_are_timed(home: Path) -> None:
    r = run_bench.round_trips(20)
    assert r["n"] == 20 and 0 < r["p50_ms"] <= r["p99_ms"], r
