"""The live view's pure renderer (pumpctl.watch.render)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import watch  # noqa: E402

RUNNING = {"state": "running", "drug": "baclofen", "rate_ug_per_day": 480, "concentration_ug_per_ml": 2000,
           "mode": "continuous", "reservoir_ul": 15000, "reservoir_model_ml": 20, "low_reservoir_ul": 2000,
           "delivered_ul": 5000, "delivered_ug": 10000, "dose_24h_ug": 480, "alarms": [], "uptime_s": 60,
           "wall": None, "forecast": {"days_to_low": 54, "days_to_empty": 62}}


def test_running_plain() -> None:
    s = watch.render(RUNNING, None, colour=False)
    assert "RUNNING" in s and "baclofen 480 µg/day at 2000 µg/mL" in s
    assert "20.00 µg/h = 10.00 µL/h" in s
    assert "[" + "#" * 22 + "." * 8 + "]" in s  # 15 of 20 mL: 22 of 30
    assert "15000 µL of 20 mL" in s
    assert "low reservoir in 54 days" in s
    assert "alarms    none" in s
    assert "\x1b[" not in s


def test_alarms_highlighted_by_priority() -> None:
    st = dict(RUNNING, alarms=[{"code": "OCCLUSION", "priority": "high", "since": 5, "state": "active"},
                               {"code": "RESERVOIR_LOW", "priority": "medium", "since": 9, "state": "acknowledged"},
                               {"code": "CLOCK_NOT_SET", "priority": "low", "since": 0, "state": "active"}])
    s = watch.render(st, None, colour=True)
    lines = s.splitlines()
    occ = next(line for line in lines if "OCCLUSION" in line)
    low = next(line for line in lines if "RESERVOIR_LOW" in line)
    clk = next(line for line in lines if "CLOCK_NOT_SET" in line)
    assert occ.startswith(watch.RED) and occ.endswith(watch.RESET) and "HIGH" in occ
    assert low.startswith(watch.YELLOW) and "acknowledged" in low
    assert clk.startswith(watch.CYAN)


def test_stopped_and_low_reservoir() -> None:
    st = dict(RUNNING, state="stopped", stop_reason="reservoir empty", reservoir_ul=1500)
    s = watch.render(st, None, colour=True)
    assert "STOPPED" in s and "(reservoir empty)" in s
    res = next(line for line in s.splitlines() if "reservoir [" in line)
    assert res.startswith(watch.YELLOW) and "LOW" in res


def test_bench_truth_block() -> None:
    show = {"outlet_nl": 1234, "head_steps": 25, "battery_mv": 3600, "pressure_kpa": 150, "outlet_blocked": True,
            "stalled": False, "leds": {"red": True, "yellow": False}, "buzzer_hz": 2000, "scale_ug": 1230}
    s = watch.render(RUNNING, show, colour=False)
    assert "scale 1230 µg, outlet 1.234 µL, head 25 steps" in s
    assert "line pressure 150 kPa  OUTLET BLOCKED" in s
    assert "buzzer 2000 Hz" in s and " RED " in s


def test_missing_fields_do_not_crash() -> None:
    s = watch.render({}, {}, colour=False)
    assert "STOPPED" in s


def test_run_once_and_bad_interval() -> None:
    calls = []

    def fetch():
        calls.append(1)
        return RUNNING, None

    out = io.StringIO()
    s = watch.run(fetch, interval=1.0, once=True, out=out)
    assert calls == [1] and "RUNNING" in s and "\x1b[" not in s  # not a tty: no colour
    with pytest.raises(ValueError):
        watch.run(fetch, interval=0, once=True, out=out)
