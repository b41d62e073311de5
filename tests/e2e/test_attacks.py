"""What someone on the bench's port without the clinician's key can still do (issue 16), end to
end over the bench's pseudo-terminal: erase the record with a stream of unsigned frames, plant a
reply in the retry cache, jam the line, flood as the patient. Each attack failed before."""
from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import serial

from pumpctl import frames
from pumpctl.errors import DeviceError
from pumpctl.link import Link

from .test_security import CONC, DEVICE, PATIENT_PROGRAM, RATE, capture, send

pytestmark = pytest.mark.xdist_group("e2e-attacks")


def start(bench, pumpctl) -> Any:
    info = bench()
    pumpctl("program", "continuous", str(RATE), "--concentration", str(CONC), "--yes")
    return info


def write_raw(port: str, data: bytes) -> None:
    """Bytes onto the line as a second program on the host would, reading nothing back."""
    with serial.Serial(port, 115200, timeout=0.05) as s:
        s.write(data)
        s.flush()


@pytest.mark.safety("SR-048")
def test_an_unsigned_stream_never_erases_the_record_and_lost_refusals_are_reported(bench, pumpctl):
    info = start(bench, pumpctl)
    pumpctl("bolus", "20")
    kept = pumpctl("log", "--since", "0")
    assert [r["type"] for r in kept][:1] == ["power_on"]
    # 900 unsigned `stop`s, 10 a virtual minute for 90 virtual minutes, in batches: enough to
    # wrap the refusals' ring (3 x 16 kB kept); before issue 16 they went into the event log.
    seq = 20_000
    for minute in range(90):
        burst = b"".join(frames.encode({"s": seq + i, "c": "stop"}) for i in range(10))
        seq += 10
        write_raw(info.port, burst)
        pumpctl("bench", "advance", "1m")
    st = pumpctl("status")
    assert st["state"] == "running"
    after = pumpctl("log", "--since", "0")
    assert after[:len(kept)] == kept, "every therapy record is still there, first to last"
    assert not [r for r in after if r["type"] in ("auth_fail", "records_lost")]
    refusals = pumpctl("log", "--refusals", "--since", "0")
    lost = [r for r in refusals if r["type"] == "records_lost"]
    assert lost and lost[0]["data"]["reason"] == "ring wrapped" and lost[0]["data"]["from_seq"] == 1, lost[:1]
    got = [r for r in refusals if r["type"] == "auth_fail"]
    counted = sum(r["data"]["n"] for r in refusals if r["type"] == "refusals_counted")
    assert lost[0]["data"]["n"] + len(got) + counted >= 900 - 10  # all accounted for (the last counts may wait 10 s)
    # people are told in a sentence how many and from when
    out = pumpctl.script("log", "--refusals", "--since", "0")
    assert out.returncode == 0, out.stderr
    assert f"{lost[0]['data']['n']} refusals log records 1..{lost[0]['data']['to_seq']}" in out.stdout, out.stdout[-600:]


@pytest.mark.safety("SR-049")
def test_a_junk_mac_copy_sent_first_does_not_block_the_clinicians_stop(bench, pumpctl):
    info = start(bench, pumpctl)
    genuine = capture(info.port, 31_000, "stop")  # what pumpctl will send next (counter taken)
    body, mac = frames.decode(genuine.rstrip(b"\n"))
    forged = frames.encode_body(body, "0" * 64)
    r = send(info.port, forged, 31_000)
    assert r["e"]["code"] == "AUTH_BAD_MAC"
    r = send(info.port, genuine, 31_000)
    assert r["ok"] is True and "cached" not in r, r
    assert pumpctl("status")["state"] == "stopped"
    # a junk-MAC copy of the accepted frame gets no cached OK either
    assert send(info.port, forged, 31_000)["e"]["code"] == "AUTH_BAD_MAC"
    # while the genuine retry is answered from the cache, and says so
    assert send(info.port, genuine, 31_000) == dict(r, cached=True)


@pytest.mark.safety("SR-045")
def test_a_jam_without_newline_and_garbage_lines_do_not_stop_a_valid_request(bench, pumpctl):
    info = start(bench, pumpctl)
    write_raw(info.port, b"Z" * 3000)  # a second writer's run without a newline
    pumpctl("stop")
    assert pumpctl("status")["state"] == "stopped"
    write_raw(info.port, b"\x00\xff" * 4000)  # longer than a frame, no newline
    pumpctl("resume")
    # garbage lines keep coming while pumpctl talks: each earns a BAD_CRC reply without a
    # sequence number, which pumpctl must not take for the answer to its own request
    stop = threading.Event()

    def jam() -> None:
        with serial.Serial(info.port, 115200, timeout=0.05) as s:
            while not stop.is_set():
                s.write(b"$junk*00000000\n")
                s.flush()
                time.sleep(0.02)

    t = threading.Thread(target=jam, daemon=True)
    t.start()
    try:
        for _ in range(3):
            pumpctl("stop")
            pumpctl("resume")
    finally:
        stop.set()
        t.join(2)
    assert pumpctl("status")["state"] == "running"


@pytest.mark.safety("SR-050")
def test_a_patient_flood_writes_little_to_flash_and_is_counted(bench, pumpctl, tmp_path):
    info = bench()
    prog = tmp_path / "patient.toml"
    prog.write_text(PATIENT_PROGRAM)
    pumpctl("program", "set", str(prog), "--yes")
    pumpctl("bench", "advance", "31m")  # past the lockout after programming
    flash0 = pumpctl("bench", "show")["flash"]
    codes: dict[str, int] = {}
    with Link(info.port) as link:
        assert link.enable_auth(DEVICE, "patient")
        for _ in range(120):
            try:
                link.request("patient_bolus")
                codes["OK"] = codes.get("OK", 0) + 1
            except DeviceError as e:  # the pump's refusal, with its code
                codes[e.code] = codes.get(e.code, 0) + 1
    pumpctl("bench", "advance", "20s")  # counted refusals are written within 10 s
    written = pumpctl("bench", "show")["flash"]["bytes_written"] - flash0["bytes_written"]
    assert codes.get("OK") == 1 and codes.get("RATE_LIMITED", 0) >= 110, codes
    # One delivered bolus (its record and a state save), the patient counter of the few frames
    # the budget took, at most 10 refusal records and one count, one usage save: before issue
    # 16 each request wrote about 3.8 kB.
    assert written < 120 * 600, f"{written} bytes written for 120 patient requests"
    usage = _usage(info.port)
    assert usage[-1]["attempts"] == 120 and usage[-1]["delivered"] == 1, usage
    assert usage[-1]["rate_limited"] == codes["RATE_LIMITED"]
    # the counts survive a power cut once the minute's save is made
    pumpctl("bench", "advance", "2m")
    new = pumpctl("bench", "power-cycle")
    assert _usage(new["port"])[-1]["attempts"] == 120


def _usage(port: str) -> list[dict[str, Any]]:
    with Link(port) as link:
        assert link.enable_auth(DEVICE, "clinician")
        return link.request("patient_usage")["days"]
