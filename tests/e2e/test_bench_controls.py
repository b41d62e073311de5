"""The bench as a student meets it (issue 17): `bench start` on an existing folder is a power-on,
`--fresh` erases; `bench list` and which bench pumpctl finds; the patient button through the
firmware's button path; `bench fill` and a refill that keeps pump and bench agreeing; fault
clears that clear; and measured delivery (NO_FLOW) where the bench's scale can see the water."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pumpctl import bench as benchmod
from pumpctl.cli import main as cli_main

MIN = 60_000
HOUR = 3_600_000

PATIENT_PROGRAM = """\
drug = "baclofen"
concentration_ug_per_ml = 2000
mode = "continuous"
rate_ug_per_day = 500

[patient_bolus]
dose_ug = 25
duration_min = 5
max_per_24h = 4
lockout_min = 180
"""


def ctl(info: benchmod.BenchInfo, **req: Any) -> dict:
    return benchmod.control(info, req)


def show(info: benchmod.BenchInfo) -> dict:
    return ctl(info, cmd="show")


def advance(info: benchmod.BenchInfo, ms: int) -> None:
    while ms > 0:
        step = min(ms, 86_400_000)
        ctl(info, cmd="advance", ms=step)
        ms -= step


def text_of(capsys: Any, *args: str) -> tuple[int, str]:
    """pumpctl for people (no --json): exit code and what it printed."""
    capsys.readouterr()
    code = cli_main(list(args))
    c = capsys.readouterr()
    return code, c.out + c.err


def records(pumpctl: Any) -> list[dict]:
    return pumpctl("log", "--since", "0")


# ---- start on an existing folder, --fresh ------------------------------------------------------
def test_start_on_an_existing_folder_boots_from_its_flash_and_fresh_erases(pumpctl, tmp_path, capsys):
    d = tmp_path / "mybench"
    try:
        first = pumpctl("bench", "start", "--dir", str(d))
        assert first["flash"] == "new"
        pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
        pumpctl("bench", "advance", "2d")
        before = pumpctl("status")
        truth = pumpctl("bench", "show")
        recs = records(pumpctl)
        assert [r["type"] for r in recs][:2] == ["power_on", "program"]
        pumpctl("bench", "stop")

        code, out = text_of(capsys, "bench", "start", "--dir", str(d))
        assert code == 0 and "booted from the flash image" in out and "--fresh" in out, out
        again = pumpctl("bench", "show")
        after = pumpctl("status")
        assert pumpctl("program", "show")["program"]["rate_ug_per_day"] == 500
        assert after["reservoir_ul"] == before["reservoir_ul"]
        # The water, the beaker and the head are as the bench left them.
        assert again["reservoir_true_nl"] == truth["reservoir_true_nl"]
        assert again["outlet_nl"] == truth["outlet_nl"] and again["head_steps"] == truth["head_steps"]
        # The pump's clock went on from where it was (not back to the computer's date).
        assert again["clock"]["wall"][0] >= truth["clock"]["wall"][0]
        recs2 = records(pumpctl)
        assert recs2[:len(recs)] == recs  # every earlier record kept
        new = recs2[len(recs):]
        assert new[0]["type"] == "power_on" and new[0]["data"]["cause"] == "power_on"
        # The seconds the bench was off were missed delivery (SR-007), logged, not caught up.
        assert {r["type"] for r in new[1:]} <= {"under_delivery"}
        pumpctl("bench", "stop")

        code, out = text_of(capsys, "bench", "start", "--dir", str(d), "--fresh")
        assert code == 0 and "--fresh: the flash image" in out and "erased" in out, out
        assert pumpctl("program", "show")["program"] is None
        assert [r["type"] for r in records(pumpctl)] == ["power_on"]
        assert pumpctl("bench", "show")["reservoir_true_ul"] == 20_000
    finally:
        for b in benchmod.list_benches():
            benchmod.stop(benchmod.find(Path(b["dir"])))


# ---- bench list, which bench is found ---------------------------------------------------------
def test_bench_list_and_a_bench_started_here_is_preferred_over_the_last_one(pumpctl, tmp_path, monkeypatch):
    here = tmp_path / "project"
    elsewhere = tmp_path / "other"
    here.mkdir()
    elsewhere.mkdir()
    try:
        monkeypatch.chdir(here)
        a = pumpctl("bench", "start", "--dir", str(tmp_path / "a"))
        monkeypatch.chdir(elsewhere)
        b = pumpctl("bench", "start", "--dir", str(tmp_path / "b"))
        listed = pumpctl("bench", "list")["benches"]
        assert {x["dir"] for x in listed} == {a["dir"], b["dir"]} and all(x["alive"] for x in listed)
        assert all(x["pid"] and x["port"] and x["started"] for x in listed)
        # From elsewhere the bench started there; from the project (or below it) its own bench,
        # though b was started last.
        assert benchmod.find().dir == Path(b["dir"])
        sub = here / "src"
        sub.mkdir()
        monkeypatch.chdir(sub)
        assert benchmod.find().dir == Path(a["dir"])
        assert [x["chosen"] for x in pumpctl("bench", "list")["benches"] if x["dir"] == a["dir"]] == [True]
        pumpctl("status")  # talks to a
        pumpctl("bench", "stop")
        assert [x["dir"] for x in pumpctl("bench", "list")["benches"]] == [b["dir"]]
        # Nothing started here any more: the last one started anywhere.
        assert benchmod.find().dir == Path(b["dir"])
    finally:
        for x in benchmod.list_benches():
            benchmod.stop(benchmod.find(Path(x["dir"])))


# ---- the patient button -----------------------------------------------------------------------
def test_bench_press_goes_through_the_firmware_button_path(bench, pumpctl, tmp_path):
    info = bench()
    prog = tmp_path / "patient.toml"
    prog.write_text(PATIENT_PROGRAM)
    pumpctl("program", "set", str(prog), "--yes")
    advance(info, 3 * HOUR + MIN)  # past the lockout that programming starts
    steps0 = show(info)["head_steps"]
    p = pumpctl("bench", "press")
    assert p["presses"] == 1 and p["outcome"] == "delivered"
    assert p["record"]["type"] == "patient_bolus" and p["record"]["data"]["src"] == "button"
    assert (pumpctl("status")["bolus"] or {}).get("kind") == "patient"
    advance(info, 10 * MIN)
    # 25 µg at 2000 µg/mL is 12.5 µL: 250 steps on top of the basal.
    assert show(info)["head_steps"] - steps0 >= 250
    again = pumpctl("bench", "press")
    assert again["presses"] == 2 and again["outcome"] == "refused_lockout"
    recs = [r for r in records(pumpctl) if r["type"] == "patient_bolus"]
    assert [(r["data"]["outcome"], r["data"]["src"]) for r in recs][:1] == [("delivered", "button")]


# ---- bench fill, refill ----------------------------------------------------------------------
def test_bench_fill_and_a_refill_leave_pump_and_bench_agreeing(bench, pumpctl, capsys):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    advance(info, 2 * 86_400_000)
    pumpctl("bench", "fault", "reservoir-empty")
    assert show(info)["reservoir_true_ul"] == 0
    f = pumpctl("bench", "fill", "18000uL")
    assert f["withdrawn_ul"] == 0 and f["volume_ul"] == 18_000 and show(info)["reservoir_true_ul"] == 18_000
    f = pumpctl("bench", "fill", "20mL")
    assert f["withdrawn_ul"] == 18_000 and show(info)["reservoir_true_ul"] == 20_000
    advance(info, 86_400_000)
    r = pumpctl("refill", "--withdrawn-ul", "19750", "--volume-ul", "20000")
    # The refill fills the bench too: what really came out, then the new volume.
    assert r["bench_fill"]["withdrawn_ul"] == 19_750 and r["bench_fill"]["volume_ul"] == 20_000
    assert pumpctl("status")["reservoir_ul"] == 20_000 == show(info)["reservoir_true_ul"]
    code, out = text_of(capsys, "refill", "--withdrawn-ul", "20000", "--volume-ul", "19000")
    assert code == 0 and "bench's reservoir was filled to match" in out, out
    assert pumpctl("status")["reservoir_ul"] == 19_000 == show(info)["reservoir_true_ul"]
    # Bad volumes: one sentence, nothing changed.
    for bad, words in (("20", "with its unit"), ("25mL", "more than"), ("1.0005mL", "whole number of µL")):
        e = pumpctl("bench", "fill", bad, ok=False)["error"]
        assert words in e["message"], e
        code, out = text_of(capsys, "bench", "fill", bad)
        assert code != 0 and "Traceback" not in out and words in out
    assert show(info)["reservoir_true_ul"] == 19_000


# ---- fault --clear ----------------------------------------------------------------------------
def test_fault_clear_clears_what_it_names(bench, pumpctl, capsys):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    advance(info, HOUR)
    left = show(info)["reservoir_true_nl"]
    pumpctl("bench", "fault", "reservoir-empty")
    assert show(info)["reservoir_true_nl"] == 0
    code, out = text_of(capsys, "bench", "fault", "reservoir-empty", "--clear")
    assert code == 0 and "cleared" in out and f"{left // 1000} µL" in out, out
    assert show(info)["reservoir_true_nl"] == left
    wall = show(info)["clock"]["wall"]
    pumpctl("bench", "fault", "clock-loss")
    assert show(info)["clock"]["wall"] is None
    advance(info, 10 * MIN)
    pumpctl("bench", "fault", "clock-loss", "--clear")
    back = show(info)["clock"]["wall"]
    assert back is not None and (back[0] - wall[0]) * 86_400_000 + back[1] - wall[1] == 10 * MIN
    pumpctl("bench", "fault", "battery", "--mv", "3200")
    assert show(info)["battery_mv"] == 3200
    pumpctl("bench", "fault", "battery", "--clear")
    assert show(info)["battery_mv"] == 3600
    pumpctl("bench", "fault", "block-outlet")
    assert show(info)["outlet_blocked"] is True
    pumpctl("bench", "fault", "block-outlet", "--clear")
    assert show(info)["outlet_blocked"] is False
    pumpctl("bench", "fault", "hang")
    pumpctl("bench", "fault", "hang", "--clear")
    advance(info, HOUR)  # the watchdog (45 min unfed) does not bite: the control loop runs again
    assert pumpctl("status")["uptime_s"] >= 2 * 3600 + 600 and not any(
        a["code"] == "WATCHDOG_RESET" for a in pumpctl("status")["alarms"])


# ---- measured delivery ------------------------------------------------------------------------
def _no_flow(bench: Any, pumpctl: Any, rate: int, cap: str) -> dict:
    info = bench()
    pumpctl("program", "continuous", str(rate), "--concentration", "2000", "--yes")
    advance(info, 86_400_000)
    t0 = show(info)
    pumpctl("bench", "fault", "reservoir-empty")
    hit = pumpctl("bench", "advance", "--until", "next-alarm", "--cap", cap)
    assert hit["hit"] and hit["hit"]["code"] == "NO_FLOW", hit
    st = pumpctl("status")
    a = [x for x in st["alarms"] if x["code"] == "NO_FLOW"][0]
    assert a["priority"] == "high" and st["state"] == "stopped" and st["stop_reason"] == "no flow"
    t1 = show(info)
    # The motor is stopped: no more air is pushed.
    advance(info, 2 * HOUR)
    assert show(info)["head_steps"] == t1["head_steps"]
    rec = [r for r in records(pumpctl) if r["type"] == "no_flow"]
    assert len(rec) == 1 and rec[0]["data"]["expected_nl"] - rec[0]["data"]["arrived_nl"] >= 5000
    return {"info": info, "after_ms": t1["clock"]["virtual_ms"] - t0["clock"]["virtual_ms"],
            "missing_nl": t1["dry_steps"] * t1["true_pl_per_step"] // 1000}


def test_no_flow_at_a_typical_rate_stops_the_motor_within_the_documented_bound(bench, pumpctl):
    m = _no_flow(bench, pumpctl, 500, "3h")
    print("NO_FLOW at 500 µg/day, 2000 µg/mL:", {k: v for k, v in m.items() if k != "info"})
    # docs/alarms.md: at 250 µL/day within an hour and under 10 µL missing.
    assert m["after_ms"] <= HOUR and 5000 <= m["missing_nl"] <= 10_000
    info = m["info"]
    # Refill the bench, tell the pump, acknowledge, resume: water flows and nothing alarms again.
    pumpctl("refill", "--withdrawn-ul", "0", "--volume-ul", "20000")
    pumpctl("alarms", "ack", "all")
    pumpctl("resume")
    advance(info, 4 * HOUR)
    st = pumpctl("status")
    assert st["state"] == "running" and st["alarms"] == [], st["alarms"]


def test_no_flow_at_10_ug_per_day(bench, pumpctl):
    m = _no_flow(bench, pumpctl, 10, "3d")
    print("NO_FLOW at 10 µg/day, 2000 µg/mL:", {k: v for k, v in m.items() if k != "info"})
    assert m["after_ms"] <= 36 * HOUR and 5000 <= m["missing_nl"] <= 10_000


def test_a_working_pump_never_raises_no_flow_on_the_realistic_bench(bench, pumpctl):
    # Evaporation, slip and scale noise: at the lowest rate and a typical one, for days.
    info = bench(realistic=True, true_pl=51_500)
    pumpctl("program", "continuous", "1", "--concentration", "2000", "--yes")
    advance(info, 12 * 86_400_000)
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    advance(info, 3 * 86_400_000)
    assert not [a for a in pumpctl("status")["alarms"] if a["code"] == "NO_FLOW"]
    assert not [r for r in records(pumpctl) if r["type"] == "no_flow"]
