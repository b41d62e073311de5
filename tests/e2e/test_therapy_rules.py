"""The firmware's therapy rules as a student meets them (issue 17): the 24 h dose limit alarm
clears once the window rolls on; resume is refused only while a motor-stopping alarm's cause
persists, and says which; a new drug or concentration needs a refill; alarms carry the pump's
wall-clock time, across a power cut."""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional

import pytest

from pumpctl import bench as benchmod

MIN = 60_000
HOUR = 3_600_000
CHECK = 15 * MIN


def advance(info: benchmod.BenchInfo, ms: int) -> None:
    while ms > 0:
        step = min(ms, 86_400_000)
        benchmod.control(info, {"cmd": "advance", "ms": step})
        ms -= step


def alarm(st: dict, code: str) -> Optional[dict]:
    for a in st["alarms"]:
        if a["code"] == code:
            return a
    return None


def _reach_dose_limit(info: Any, pumpctl: Any) -> dict:
    pumpctl("program", "continuous", "800", "--concentration", "2000", "--yes")  # baclofen max 1500 µg/24 h
    for _ in range(14):
        pumpctl("bolus", "100", "--duration", "1m")
        advance(info, 2 * MIN)
    assert pumpctl("bolus", "100", "--duration", "1m", ok=False)["error"]["code"] == "LIMIT_24H"
    for _ in range(40):  # basal fills the rest: about 2.5 h
        advance(info, CHECK)
        st = pumpctl("status")
        if alarm(st, "DOSE_LIMIT_24H"):
            return st
    raise AssertionError("DOSE_LIMIT_24H was never raised")


@pytest.mark.safety("SR-003")
def test_dose_limit_24h_clears_once_the_window_rolls_on(bench, pumpctl):
    info = bench()
    st = _reach_dose_limit(info, pumpctl)
    assert alarm(st, "DOSE_LIMIT_24H")["state"] == "active" and st["dose_24h_ug"] >= 1500
    pumpctl("alarms", "ack", "DOSE_LIMIT_24H")
    assert alarm(pumpctl("status"), "DOSE_LIMIT_24H")["state"] == "acknowledged"  # cause still present
    advance(info, 40 * HOUR)
    st = pumpctl("status")
    # The boluses left the 24 h window (800 µg/day of basal stays under 1500): gone from the list.
    assert st["dose_24h_ug"] < 1500 * 95 // 100 and alarm(st, "DOSE_LIMIT_24H") is None, st["alarms"]
    evs = [r["data"] for r in pumpctl("log", "--since", "0") if r["type"] == "alarm"
           and r["data"]["code"] == "DOSE_LIMIT_24H"]
    assert [e["ev"] for e in evs] == ["raise", "ack", "clear"]


@pytest.mark.safety("SR-003")
def test_dose_limit_24h_unacknowledged_shows_latched_once_its_cause_is_gone(bench, pumpctl):
    info = bench()
    _reach_dose_limit(info, pumpctl)
    advance(info, 40 * HOUR)
    a = alarm(pumpctl("status"), "DOSE_LIMIT_24H")
    assert a is not None and a["state"] == "latched"  # a person still learns it happened
    pumpctl("alarms", "ack", "DOSE_LIMIT_24H")
    assert alarm(pumpctl("status"), "DOSE_LIMIT_24H") is None


@pytest.mark.safety("SR-013")
def test_resume_is_not_refused_by_an_acknowledged_non_stopping_alarm(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "480", "--concentration", "2000", "--yes")
    pumpctl("bench", "fault", "battery", "--mv", "2900")
    advance(info, CHECK)
    assert alarm(pumpctl("status"), "BATTERY_EOS") is not None
    assert pumpctl("status")["state"] == "stopped"
    pumpctl("bench", "fault", "battery", "--mv", "2800")  # still dead: resume is refused, naming it
    e = pumpctl("resume", ok=False)["error"]
    assert e["code"] == "ALARM" and "BATTERY_EOS" in e["message"], e
    pumpctl("bench", "fault", "battery", "--mv", "3200")  # a weak cell, above end of service
    # resume reads the battery again at once (not the last quarter hour's reading): EOS clears,
    # ERI (which does not stop the motor) stays, acknowledged, and resume is not refused by it.
    assert pumpctl("resume")["state"] == "running"
    pumpctl("alarms", "ack", "all")
    st = pumpctl("status")
    assert st["battery_mv"] == 3200
    assert [(a["code"], a["state"]) for a in st["alarms"]] == [("BATTERY_ERI", "acknowledged")], st["alarms"]
    # only an acknowledged ERI listed: stop and resume again, not refused (the case)
    pumpctl("stop")
    assert pumpctl("resume")["state"] == "running"
    advance(info, HOUR)
    assert pumpctl("status")["state"] == "running"


def test_a_new_drug_needs_a_refill_first(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "5000", "--drug", "water", "--concentration", "1000", "--yes")
    advance(info, 6 * HOUR)
    assert pumpctl("status")["dose_24h_ug"] > 1000
    e = pumpctl("program", "continuous", "500", "--drug", "baclofen", "--concentration", "2000", "--yes",
                ok=False)["error"]
    assert e["code"] == "STATE" and "water at 1000 µg/mL" in e["message"] and "refill" in e["message"], e
    assert pumpctl("program", "show")["program"]["drug"] == "water"  # nothing changed
    # The workflow: stop, empty and refill with the new drug, then program it.
    pumpctl("stop")
    pumpctl("refill", "--withdrawn-ul", "17000", "--volume-ul", "20000")
    p = pumpctl("program", "continuous", "500", "--drug", "baclofen", "--concentration", "2000", "--yes")
    assert p["new"]["drug"] == "baclofen"
    st = pumpctl("status")
    assert st["state"] == "running" and st["drug"] == "baclofen"
    assert st["dose_24h_ug"] == 0  # µg of water are not µg of baclofen: the 24 h window starts empty
    # Once running, another drug needs another refill.
    e = pumpctl("program", "continuous", "5000", "--drug", "water", "--concentration", "1000", "--yes",
                ok=False)["error"]
    assert e["code"] == "STATE" and "baclofen at 2000 µg/mL" in e["message"]


def test_a_new_concentration_of_the_same_drug_names_the_refill(bench, pumpctl):
    bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    e = pumpctl("program", "continuous", "500", "--concentration", "1000", "--yes", ok=False)["error"]
    assert e["code"] == "STATE" and "refill --concentration 1000" in e["message"], e


def test_alarms_carry_the_pumps_wall_time_across_a_power_cut(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "480", "--concentration", "2000", "--yes")
    pumpctl("bench", "fault", "battery", "--mv", "3200")
    advance(info, CHECK)
    st = pumpctl("status")
    a = alarm(st, "BATTERY_ERI")
    w = a["since_wall"]
    assert isinstance(w, list) and len(w) == 6 and w[0] >= 2026
    listed = [x for x in pumpctl("alarms")["active"] if x["code"] == "BATTERY_ERI"]
    assert listed[0]["since_wall"] == w
    # The wall time agrees with the status' own clock ([day, ms]) at the quarter-hour check.
    wall = dt.datetime(2000, 1, 1) + dt.timedelta(days=st["wall"][0], milliseconds=st["wall"][1])
    since = dt.datetime(*w)
    assert dt.timedelta(0) <= wall - since <= dt.timedelta(minutes=15)
    # A power cut: uptime restarts, the alarm keeps the wall time it was raised at. (The ack
    # saves the state; an alarm raised since the last save is raised again by its owner.)
    pumpctl("alarms", "ack", "BATTERY_ERI")
    pumpctl("bench", "power-cycle", "--down", "1h")
    st2 = pumpctl("status")
    b = alarm(st2, "BATTERY_ERI")
    assert b is not None and b["since_wall"] == w and st2["uptime_s"] < 60
