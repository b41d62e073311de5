"""Calibration wizard and the IEC 60601-2-24 accuracy test on the realistic bench model."""
from __future__ import annotations

from fractions import Fraction

import pytest


@pytest.mark.safety("SR-015")
def test_calibration_brings_a_3_percent_head_under_1_percent(bench, pumpctl, tmp_path):
    bench(realistic=True, true_pl=51_500, nominal_pl=50_000)
    before = pumpctl("accuracy", "--rate", "2400", "--duration", "2h", "--out", str(tmp_path / "before"))
    assert 1.5 < before["overall_error_pct"] < 4.0, before["overall_error_pct"]
    pumpctl("stop")
    cal = pumpctl("calibrate", "--volume-ul", "1000")
    assert abs(cal["pl_per_step"] - 51_500) / 51_500 < 0.01
    after = pumpctl("accuracy", "--rate", "2400", "--duration", "2h", "--out", str(tmp_path / "after"))
    assert abs(after["overall_error_pct"]) < 1.0, after["overall_error_pct"]
    png = (tmp_path / "after" / "trumpet.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    tr = {p["window_min"]: p for p in after["trumpet"]} if isinstance(after["trumpet"], list) else after["trumpet"]
    assert len(tr) == 5
    assert pumpctl("status")["pl_per_step"] == cal["pl_per_step"]


@pytest.mark.safety("SR-016")
def test_calibration_refuses_nonsense_and_keeps_the_old_value(bench, pumpctl):
    bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    err = pumpctl("calibrate", ok=False)
    assert "stop therapy first" in err["error"]["message"]
    pumpctl("stop")
    for mass in ("0", "-5"):
        err = pumpctl("calibrate", "--mass-mg", mass, ok=False)
        assert "not a calibration" in err["error"]["message"]
    err = pumpctl("calibrate", "--volume-ul", "500", "--mass-mg", "800", ok=False)  # 60 % off
    assert err["error"]["code"] == "FAR_FROM_LAST" and "--force" in err["error"]["message"]
    assert pumpctl("status")["pl_per_step"] == 50_000
    # Faster than the head can be driven: refused in µL and minutes, nothing moves.
    err = pumpctl("calibrate", "--volume-ul", "5000", "--minutes", "1", "--mass-mg", "5000", ok=False)
    assert err["error"]["code"] == "RANGE", err
    assert "5000 µL" in err["error"]["message"] and "give it at least 35 minutes" in err["error"]["message"], err
    assert pumpctl("status")["priming_steps_left"] == 0
    ok = pumpctl("calibrate", "--volume-ul", "500", "--mass-mg", "800", "--force")
    assert ok["pl_per_step"] > 79_000
    log = pumpctl("log", "--since", "0")
    cal = [r for r in log if r["type"] == "calibration"]
    assert cal and cal[-1]["data"]["forced"] is True


@pytest.mark.safety("SR-039")
def test_two_weeks_across_the_tick_wrap_stay_within_one_step(bench, pumpctl):
    # The board's ticks wrap at 2**30 ms (12.4 days), as a Pico's time.ticks_ms() does.
    bench()
    pumpctl("program", "continuous", "437", "--concentration", "2000", "--yes")
    for day in range(1, 15):
        pumpctl("bench", "advance", "1d")
        st = pumpctl("status")
        exact = Fraction(437 * day * 10**9, 2000 * 50_000)
        assert abs(st["delivered_steps"] - exact) <= 1, (day, st["delivered_steps"], float(exact))
    assert pumpctl("bench", "show")["clock"]["virtual_ms"] > 2**30
