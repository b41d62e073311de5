"""Every pump and bench command the CLI has, through the Python API (pumpctl.api), against a
real lockstep virtual bench: the API is the one client layer the CLI is built on."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import api, calibrate, wallclock  # noqa: E402
from pumpctl.errors import DeviceError, UsageError  # noqa: E402

HOUR = 3_600_000


def test_program_write_compares_first_and_confirm_can_refuse(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    seen: list[dict[str, Any]] = []

    def no(cmp: dict[str, Any]) -> bool:
        seen.append(cmp)
        return False

    before = pump.program_show().get("program")
    done = pump.program_continuous(500, 2000, confirm=no)
    assert done == {"written": False, "old": before, "new": seen[0]["new"]}
    assert seen[0]["comparison"]["new"]["daily_total_ug"] == pytest.approx(500)
    assert pump.program_show().get("program") == before, "a refused confirmation writes nothing"
    done = pump.program_continuous(480, 2000, confirm=True)
    assert done["written"] is True and done["new"]["rate_ug_per_day"] == 480
    assert done["overrides_used"] == [] and done["comparison"]["new"]["daily_total_ug"] == pytest.approx(480)
    assert pump.program_compare({"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous",
                                 "rate_ug_per_day": 600})["old"]["rate_ug_per_day"] == 480


def test_bolus_and_its_override(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.program_continuous(480, 2000, confirm=True)
    with pytest.raises(DeviceError):
        pump.bolus(150, 10)  # over the soft limit, not confirmed
    d = pump.bolus(150, 10, overrides=["bolus_dose"])
    assert pump.status()["bolus"], d
    pump.bench_advance(11 * 60_000)
    assert not pump.status().get("bolus")
    with pytest.raises(UsageError):
        pump.bolus(10, 0)


def test_refill_and_settings(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.program_continuous(480, 2000, confirm=True)
    st = pump.status()
    d = pump.refill(st["reservoir_ul"], 20_000)
    assert d["volume_ul"] == 20_000 and d["withdrawn_ul"] == st["reservoir_ul"] and d["mismatch_ul"] == 0
    s = pump.settings(low_reservoir_ul=3000)
    assert s["low_reservoir_ul"] == 3000
    assert pump.settings()["low_reservoir_ul"] == 3000, "no arguments: the settings read back"


def test_bridge_refused_without_a_concentration_change(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    with pytest.raises(DeviceError) as e:
        d = pump.bridge()
        assert "bridge_steps_left" in d  # or it is running one: either is the pump's answer
    assert e.value.code


def test_alarms_test_and_bench_faults(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.alarms_test()
    pump.bench_advance(10_000)
    with pytest.raises(UsageError, match="needs --mv"):
        pump.bench_fault("battery")
    with pytest.raises(UsageError, match="unknown bench fault"):
        pump.bench_fault("meteor")
    pump.bench_fault("block-outlet")
    pump.bench_fault("block-outlet", on=False)
    pump.ack("all")


def test_time_sync_refuses_before_2000(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    with pytest.raises(UsageError, match="before 2000-01-01"):
        pump.time_sync(dt.datetime(1999, 12, 31, 23, 59, tzinfo=dt.timezone.utc))
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert wallclock.from_pump(pump.time_sync(at)["wall"]) == at


def test_bench_advance_in_days_with_progress(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    seen: list[int] = []
    before = pump.bench_show()["clock"]["virtual_ms"]
    clock = pump.bench_advance(2 * 86_400_000 + HOUR, seen.append)
    assert seen == [86_400_000, 2 * 86_400_000, 2 * 86_400_000 + HOUR]
    assert clock["virtual_ms"] - before == 2 * 86_400_000 + HOUR
    assert api.bench(pump.bench.dir if pump.bench else None).show()["clock"]["virtual_ms"] == clock["virtual_ms"]


def test_history_after_time_passes(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.time_sync(dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc))
    pump.program_continuous(480, 2000, confirm=True)
    pump.bench_advance(2 * 86_400_000 + HOUR)
    hours: list[int] = []
    rows = pump.history(2, hours.append)
    assert hours == [48], "one 48 h page"
    # The clock was set and the program written 49 h ago (the hour it was set in may hold no record).
    assert 47 <= len(rows) <= 48 and len({r["hour"] for r in rows}) == len(rows)
    for r in rows:
        assert r["programmed_ug"] == pytest.approx(20) and abs(r["delivered_ug"] - 20) <= 0.1  # 480/24, one step


def test_log_pages_add_up(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.program_continuous(480, 2000, confirm=True)
    for _ in range(3):
        pump.stop()
        pump.resume()
    last = pump.log_page(0, 1)["last_seq"]
    assert last > 6, "enough records for more than one page of 3"
    reached: list[int] = []
    recs = pump.log(0, progress=reached.append, page=3)
    assert [r["seq"] for r in recs] == sorted(r["seq"] for r in recs) and recs[-1]["seq"] == last
    assert len(reached) >= 2 and reached[-1] == last
    assert pump.log(last) == []
    assert pump.log(0) == recs, "one page of 40 or pages of 3: the same records"
    assert pump.log(recs[2]["seq"], until=recs[5]["seq"], page=2)[0]["seq"] == recs[3]["seq"]


def test_prime_and_calibrate_while_stopped(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    pump.program_continuous(480, 2000, confirm=True)
    pump.stop()
    d = pump.prime(5, tubing_ul=100)
    assert d["steps"] > 0 and d["volume_ul"] > 0
    pump.bench_advance(6 * 60_000)
    cal = calibrate.run(pump, volume_ul=500, minutes=[10], mass_mg=505.0, show_progress=False)
    assert cal["was_pl_per_step"] == 50_000 and cal["pl_per_step"] != 50_000
    assert pump.status()["pl_per_step"] == cal["pl_per_step"]
    with pytest.raises(UsageError, match="1..5000"):
        calibrate.run(pump, volume_ul=0)
    pump.resume()


def test_patient_bolus_needs_a_patient_bolus_in_the_program(fresh_pump: api.Pump) -> None:
    pump = fresh_pump
    assert pump.bench is not None
    pump.program_continuous(480, 2000, confirm=True)
    with api.connect(bench_dir=pump.bench.dir, role="patient") as patient:
        with pytest.raises(DeviceError) as e:
            patient.patient_bolus()  # the program has none
        assert e.value.code
