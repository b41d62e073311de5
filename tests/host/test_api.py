"""The Python API (pumpctl.api) against a real lockstep virtual bench."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import api  # noqa: E402
from pumpctl.errors import BenchError, DeviceError, UsageError  # noqa: E402


def test_identify_and_status(pump: api.Pump) -> None:
    d = pump.identify()
    assert d["board"] == "sim" and d["protocol"] == 1
    st = pump.status()
    assert st["state"] in ("stopped", "running")
    assert "reservoir_ul" in st


def test_program_deliver_and_show(pump: api.Pump) -> None:
    done = pump.program_continuous(480, 2000, confirm=True)  # 240 µL/day = 10 µL/h
    assert done["new"]["rate_ug_per_day"] == 480
    shown = pump.program_show()
    assert shown["program"]["mode"] == "continuous" and shown["state"] == "running"
    before = pump.bench_show()["outlet_nl"]
    clock = pump.bench_advance(3_600_000)
    assert clock["virtual_ms"] >= 3_600_000
    moved = pump.bench_show()["outlet_nl"] - before
    assert 9_900 <= moved <= 10_100  # 10 µL in an hour, within a step
    assert pump.status()["state"] == "running"


def test_device_error_carries_code(pump: api.Pump) -> None:
    with pytest.raises(DeviceError) as e:
        pump.program_set({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                          "rate_ug_per_day": 10_000_000}, confirm=True)
    assert e.value.code and e.value.code != "ERROR"
    assert pump.program_show()["program"]["rate_ug_per_day"] == 480  # nothing changed


def test_stop_resume_alarms(pump: api.Pump) -> None:
    assert pump.stop()["state"] == "stopped"
    assert pump.resume()["state"] == "running"
    a = pump.alarms()
    assert "active" in a
    assert isinstance(pump.ack("all")["acknowledged"], list)
    assert pump.pause(60_000)["audio_paused_ms"] == 60_000
    with pytest.raises(DeviceError):
        pump.pause(10_000_000)


def test_time_sync(pump: api.Pump) -> None:
    import datetime as dt
    d = pump.time_sync(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc))
    assert d["wall"] == [(dt.date(2026, 1, 2) - dt.date(2000, 1, 1)).days, (3 * 3600 + 4 * 60 + 5) * 1000]


def test_bad_arguments_refused_locally(pump: api.Pump) -> None:
    with pytest.raises(UsageError):
        pump.program_continuous(-5, 2000, confirm=True)
    with pytest.raises(UsageError):
        pump.bench_advance(-1)
    with pytest.raises(UsageError):
        pump.pause(0)
    with pytest.raises(UsageError):
        pump.program_set("not a program", confirm=True)  # type: ignore[arg-type]


def test_bench_methods_need_a_bench(pump: api.Pump) -> None:
    real = api.Pump(pump.link, bench=None)
    with pytest.raises(BenchError, match="real board"):
        real.bench_show()


def test_connect_without_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path))
    with pytest.raises(BenchError, match="no virtual bench"):
        api.connect()
