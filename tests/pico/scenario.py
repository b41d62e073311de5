"""A programmer's visit on the emulated Pico, through its USB port, for the memory figures on the
rp2 port (tests/pico/test_memory.py and `make bench`): programs of every mode, boluses, a refill
with a new concentration and its bridge, stop and resume, alarms, the whole log and history
downloaded, bad frames, and many status requests. Returns what the heap did."""
from __future__ import annotations

import time
from typing import Any

import serial

from pumpctl.errors import DeviceError

FLEX = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex", "min_rate_ug_per_day": 50,
        "overrides": [],
        "steps": [{"start": "00:00", "rate_ug_per_day": 100}, {"start": "18:00", "rate_ug_per_day": 400},
                  {"start": "22:00", "rate_ug_per_day": 200}],
        "periodic_boluses": [{"time": "08:00", "dose_ug": 25, "duration_min": 10}],
        "patient_bolus": {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 180}}
BAD_FRAMES = [b"$garbage*00000000\n", b"$" + b"x" * 3000 + b"\n", b"\x00\xff\x7f\n", b"$[1,2]*\n",
              b"$" + b"{" * 200 + b"*00000000\n"]


def run(board: Any) -> dict[str, Any]:
    steps: list[str] = []
    with board.pump() as p:
        req = p.link.request
        boot = p.status()
        # Whatever ran before (water in an earlier test): a new drug needs the pump stopped and
        # the reservoir emptied and refilled first (docs/programs.md).
        req("stop")
        req("refill", {"withdrawn_ul": boot.get("reservoir_ul") or 0, "volume_ul": 20000})
        p.program_continuous(500, 2000, "baclofen", confirm=True)
        steps.append("continuous")
        req("settings", {"tubing_ul": 50, "catheter_cm": 40, "catheter_nl_per_cm": 2300})
        st = p.status()
        req("refill", {"withdrawn_ul": st["reservoir_ul"], "volume_ul": 18000,
                       "concentration_ug_per_ml": 500, "bridge": True})
        steps.append("refill + bridge")
        req("program_check", {"program": FLEX})
        p.program_set(FLEX, confirm=True)
        req("program_show")
        steps.append("flex")
        req("bolus", {"dose_ug": 20, "duration_min": 10})
        try:
            with board.pump(role="patient") as pp:
                pp.link.request("patient_bolus")
        except DeviceError:
            pass  # refused while the clinician bolus runs: still a full round trip
        steps.append("boluses")
        p.stop()
        p.resume()
        req("alarms_test")
        req("alarms_pause", {"ms": 120_000})
        req("alarms")
        steps.append("stop/resume/alarms")
        records = 0
        since = 0
        while True:
            page = req("log", {"since": since})
            recs = page.get("records") or []
            records += len(recs)
            if not recs or page.get("last_seq", 0) <= recs[-1]["seq"]:
                break
            since = recs[-1]["seq"]
        st = p.status()
        now_h = st["wall"][0] * 24 + st["wall"][1] // 3_600_000
        hours = len(req("history", {"from_hour": now_h - 47, "to_hour": now_h + 1}).get("hours", []))
        steps.append("log + history")
        for bad in ({"program": {"drug": "baclofen"}}, ):
            try:
                req("program_set", bad)
            except DeviceError:
                pass
        try:
            req("bolus", {"dose_ug": 10**9, "duration_min": 1})
        except DeviceError:
            pass
    with serial.Serial(board.port, 115200, timeout=0.3) as s:
        for f in BAD_FRAMES:
            s.write(f)
            time.sleep(0.2)
        s.read(65536)
    steps.append("bad frames")
    with board.pump() as p:
        for _ in range(20):
            p.status()
        end = p.status()
    steps.append("20 status")
    return {"steps": steps, "log_records": records, "history_hours": hours,
            "heap_total": boot["heap_total"], "boot_heap_used": boot["boot_heap_used"],
            "after_boot_free": boot["heap_free"], "after_boot_used": boot["heap_used"],
            "peak_live": end["heap_peak_live"], "peak_free": end["heap_total"] - end["heap_peak_live"],
            "min_free_before_gc": end["heap_min_free"],
            "end_used": end["heap_used"], "alarms": [a["code"] for a in end["alarms"]],
            "state": end["state"]}
