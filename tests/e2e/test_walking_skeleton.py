"""The walking skeleton end to end: pumpctl over the bench's serial port, firmware on the real
MicroPython interpreter at Pico heap size."""
from __future__ import annotations

import json
import time

import pytest
import serial

from pumpctl import bench as benchmod
from pumpctl import frames

from .rawport import raw


@pytest.mark.safety("SR-018")
def test_one_day_of_500ug_at_2000_moves_250ul_within_one_step(bench, pumpctl):
    # The head's true volume per step is 3 % off the calibration the firmware uses.
    bench(true_pl=51_500, nominal_pl=50_000)
    st0 = pumpctl("status")
    assert st0["state"] == "stopped" and st0["reservoir_ul"] == 20_000
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    pumpctl("bench", "advance", "1d")
    st = pumpctl("status")
    assert st["state"] == "running"
    assert st["rate_ug_per_day"] == 500 and st["concentration_ug_per_ml"] == 2000
    fell_nl = st0["reservoir_ul"] * 1000 - st["reservoir_nl"]
    assert abs(fell_nl - 250_000) <= 50_000, fell_nl  # one step is 50 nL
    assert st["delivered_ul"] == 250
    truth = pumpctl("bench", "show")
    # The outlet holds what the head really moved: steps x true volume per step.
    # Within one step: the motor's batch spreads its pulses evenly up to its last step.
    assert abs(truth["head_steps"] - st["delivered_steps"]) <= 1
    assert truth["outlet_nl"] == truth["head_steps"] * 51_500 // 1000
    assert truth["clock"]["virtual_ms"] == 86_400_000
    assert st["alarms"] == [] and st["firmware_version"]


def test_contract_through_the_console_script(bench, pumpctl):
    bench()
    r = pumpctl.script("--json", "status")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    for key in ("state", "reservoir_ul", "delivered_ul", "rate_ug_per_day", "concentration_ug_per_ml", "alarms", "firmware_version"):
        assert key in st
    r = pumpctl.script("program", "continuous", "500", "--concentration", "2000", "--yes")
    assert r.returncode == 0, r.stderr
    r = pumpctl.script("--json", "bench", "show")
    show = json.loads(r.stdout)
    assert "outlet_ul" in show and "clock" in show
    r = pumpctl.script("bench", "advance", "soon")
    assert r.returncode != 0 and "duration" in r.stderr
    r = pumpctl.script("--help")
    assert "never for human use" in r.stdout.lower()


@pytest.mark.safety("SR-001", "SR-017", "SR-023")
def test_refused_program_changes_nothing(bench, pumpctl):
    bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    err = pumpctl("program", "continuous", "5000", "--concentration", "2000", "--yes", ok=False)
    assert err["error"]["code"] == "HARD_LIMIT" and "hard limit" in err["error"]["message"]
    err = pumpctl("program", "continuous", "500", "--concentration", "3", "--yes", ok=False)
    assert err["error"]["code"] == "BAD_CONCENTRATION"
    shown = pumpctl("program", "show")
    assert shown["program"]["rate_ug_per_day"] == 500 and shown["program"]["concentration_ug_per_ml"] == 2000


def test_stop_and_resume_never_catch_up(bench, pumpctl):
    bench()
    pumpctl("program", "continuous", "480", "--concentration", "2000", "--yes")  # 10 µL/h = 200 steps/h
    pumpctl("bench", "advance", "6h")
    a = pumpctl("status")["delivered_steps"]
    assert abs(a - 1200) <= 1
    pumpctl("stop")
    pumpctl("bench", "advance", "6h")
    b = pumpctl("status")
    assert b["state"] == "stopped" and b["delivered_steps"] == a
    pumpctl("resume")
    pumpctl("bench", "advance", "6h")
    c = pumpctl("status")["delivered_steps"]
    assert abs((c - a) - 1200) <= 1, "resume must deliver at the rate for now, not catch up"


def _raw(port: str, data: bytes, wait: float = 0.5) -> list[bytes]:
    return raw(port, data, wait)


@pytest.mark.safety("SR-045")
def test_bad_bytes_get_errors_and_the_link_recovers(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    before = pumpctl("program", "show")
    good = frames.encode({"s": 7, "c": "status"})
    corrupt = good.replace(b"status", b"statuz")  # CRC no longer matches
    cases = {
        b"\x00\xff garbage \x03\x04\n": None,  # not a frame: ignored
        corrupt: "BAD_CRC",
        b"$" + b"A" * 5000 + b"*00000000\n": "TOO_LONG",
        frames.encode({"s": 8, "c": "nope"}): "UNKNOWN_CMD",
        frames.encode({"s": 9}): "BAD_CMD",
        frames.encode_body(b"[1,2", None): "BAD_JSON",
        frames.encode_body(b"[" * 1500, None): "BAD_JSON",
        frames.encode({"s": 10, "c": "program_set", "a": {"program": {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 10 ** 40}}}): "AUTH_REQUIRED",
        frames.encode({"s": 11, "c": "time_set", "a": {"day": "x", "ms": 0}}): "AUTH_REQUIRED",
    }
    for data, code in cases.items():
        replies = _raw(info.port, data)
        if code is None:
            assert replies == []
        else:
            assert replies, f"no reply to {data[:40]!r}"
            r = frames.parse(replies[-1])
            assert r["ok"] is False and r["e"]["code"] == code, (data[:60], r)
    assert pumpctl("program", "show") == before
    assert pumpctl("status")["state"] == "running"


def test_a_retried_request_is_answered_from_cache_not_run_twice(bench, pumpctl):
    info = bench()
    pumpctl("program", "continuous", "500", "--concentration", "2000", "--yes")
    from pumpctl.link import Link
    with Link(info.port) as link:
        link.enable_auth("SIM-0001")
        body, mac = link.signer({"s": 4242, "c": "stop"})
    f = frames.encode_body(body, mac)
    r1 = _raw(info.port, f)
    assert frames.parse(r1[-1])["ok"] is True
    pumpctl("resume")
    r2 = _raw(info.port, f)  # same seq, body and MAC: the cached reply, the pump keeps running
    assert frames.parse(r2[-1]) == dict(frames.parse(r1[-1]), cached=True)  # marked as a repeat
    assert pumpctl("status")["state"] == "running"


@pytest.mark.safety("SR-006")
def test_tick_allocates_nothing_over_a_day_at_pico_heap(bench, pumpctl):
    bench(heap_lock_tick=True)
    pumpctl("program", "continuous", "800", "--concentration", "500", "--yes")
    pumpctl("bench", "advance", "1d")
    st = pumpctl("status")
    assert st["state"] == "running" and st["delivered_steps"] > 0
    assert st["heap_free"] > 20_000, "the firmware must fit a Pico's heap with room to spare"
