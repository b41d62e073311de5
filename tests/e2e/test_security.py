"""Authentication on the virtual bench, end to end (docs/security.md, SR-040..SR-044): the real
firmware on MicroPython behind the bench's pseudo-terminal, attacked with raw frames the way a
script on the host could, and driven through pumpctl the way a user would."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any, Optional

import pytest
import serial

from pumpctl import frames
from pumpctl.link import Link
from pumpctl.signing import sign_body

DEVICE = "SIM-0001"
# 480 µg/day at 2000 µg/mL = 0.24 mL/day = 10 µL/h = 200 steps of 50 nL per hour.
RATE, CONC = 480, 2000
STEPS_PER_H = 200
STEPS_PER_UG = 10  # 1 µg at 2000 µg/mL is 0.5 µL = 10 steps of 50 nL


# ---- helpers ---------------------------------------------------------------------------------
def send(port: str, frame: bytes, seq: Optional[int], wait: float = 5.0) -> dict[str, Any]:
    """Write one raw frame to the programmer port, as any program on the host can, and return
    the parsed reply whose sequence number is `seq`."""
    with serial.Serial(port, 115200, timeout=0.05) as s:
        s.reset_input_buffer()
        s.write(frame)
        s.flush()
        buf = b""
        end = time.monotonic() + wait
        while time.monotonic() < end:
            buf += s.read(4096)
            for line in buf.split(b"\n")[:-1]:
                if line.startswith(b"$"):
                    r = frames.parse(line)
                    if r is not None and r.get("s") == seq:
                        return r
    raise AssertionError(f"no reply with s={seq} to {frame[:60]!r}")


def capture(port: str, seq: int, cmd: str, args: Optional[dict] = None, role: str = "clinician") -> bytes:
    """A signed frame exactly as pumpctl would write it (keystore key, next counter): what a
    logger on the host would capture."""
    obj: dict[str, Any] = {"s": seq, "c": cmd}
    if args:
        obj["a"] = args
    with Link(port) as link:
        assert link.enable_auth(DEVICE, role)
        body, mac = link.signer(obj)
    return frames.encode_body(body, mac)


def keys_in_keystore(home: Path) -> dict[str, str]:
    return json.loads((home / "keys" / f"{DEVICE}.json").read_text())["keys"]


def auth_fails(pumpctl, since: int) -> list[dict[str, Any]]:
    """Authentication refusals after `since` in the refusals log (status's refusals_seq)."""
    return [r["data"] for r in pumpctl("log", "--refusals", "--since", str(since)) if r["type"] == "auth_fail"]


def therapy(pumpctl) -> dict[str, Any]:
    """What a refused command must not change."""
    st = pumpctl("status")
    return {"program": pumpctl("program", "show"), "state": st["state"], "bolus": st["bolus"],
            "delivered_steps": st["delivered_steps"], "reservoir_nl": st["reservoir_nl"],
            "rate": st["rate_ug_per_day"], "conc": st["concentration_ug_per_ml"]}


def flush_reply_cache(pumpctl, n: int = 5) -> None:
    """The device answers a repeat of one of its last 4 requests from its reply cache (a retry,
    docs/protocol.md); other requests push a capture out of it."""
    for _ in range(n):
        pumpctl("program", "show")  # signed: only authenticated replies are cached


def start(bench, pumpctl) -> Any:
    info = bench()
    pumpctl("program", "continuous", str(RATE), "--concentration", str(CONC), "--yes")
    return info


# ---- replay ------------------------------------------------------------------------------------
@pytest.mark.safety("SR-041")
def test_captured_bolus_replayed_is_refused_and_changes_nothing(bench, pumpctl):
    info = start(bench, pumpctl)
    seq = 7001
    f = capture(info.port, seq, "bolus", {"dose_ug": 50, "duration_min": 10})
    first = send(info.port, f, seq)
    assert first["ok"] is True and first["d"]["dose_ug"] == 50, first
    n = json.loads(frames.decode(f.rstrip(b"\n"))[0])["n"]
    # A repeat straight away is a retry: the cached reply, and the bolus is not started twice.
    again = send(info.port, f, seq)
    assert again == dict(first, cached=True)  # the same reply, marked as a repeat (SR-049)
    pumpctl("bench", "advance", "1h")
    st = pumpctl("status")
    assert st["bolus"] is None
    # One hour of basal (200 steps) plus one 50 µg bolus (500 steps), not two.
    assert abs(st["delivered_steps"] - (STEPS_PER_H + 50 * STEPS_PER_UG)) <= 1, st["delivered_steps"]
    log_seq, ref_seq = st["log_seq"], st["refusals_seq"]
    flush_reply_cache(pumpctl)
    before = therapy(pumpctl)

    r = send(info.port, f, seq)
    assert r["ok"] is False and r["e"]["code"] == "AUTH_REPLAY", r
    assert str(n) in r["e"]["msg"], r["e"]["msg"]  # says the last accepted counter
    assert therapy(pumpctl) == before
    pumpctl("bench", "advance", "1h")
    after = pumpctl("status")
    assert after["bolus"] is None
    assert abs(after["delivered_steps"] - before["delivered_steps"] - STEPS_PER_H) <= 1, "the replay started a bolus"
    # The head follows the engine's count within one step (the motor takes timed batches).
    assert abs(pumpctl("bench", "show")["head_steps"] - after["delivered_steps"]) <= 1
    recs = pumpctl("log", "--since", str(log_seq))
    assert auth_fails(pumpctl, ref_seq) == [{"code": "AUTH_REPLAY", "cmd": "bolus", "role": "clinician"}]
    assert not [r for r in recs if r["type"] == "auth_fail"], "refusals never take a place in the event log"
    assert not [r for r in recs if r["type"] == "bolus"], "a replay must not log a bolus"
    boluses = [r for r in pumpctl("log", "--since", "0") if r["type"] == "bolus"]
    assert len(boluses) == 1 and boluses[0]["data"]["dose_ug"] == 50


@pytest.mark.safety("SR-041")
def test_replay_after_a_power_cycle_is_still_refused(bench, pumpctl):
    info = start(bench, pumpctl)
    seq = 7002
    f = capture(info.port, seq, "stop")
    n = json.loads(frames.decode(f.rstrip(b"\n"))[0])["n"]
    assert send(info.port, f, seq)["ok"] is True
    assert pumpctl("status")["state"] == "stopped"
    pumpctl("resume")
    pumpctl("bench", "advance", "10m")
    new = pumpctl("bench", "power-cycle")  # kill -9: nothing saved at the cut
    port = new["port"]
    ident = pumpctl("identify")
    assert ident["auth"]["counters"]["clinician"] >= n, ident["auth"]
    st0 = pumpctl("status")
    assert st0["state"] == "running" and st0["uptime_s"] == 0
    log_seq = st0["refusals_seq"]
    # After the reboot the reply cache is empty: the counter on flash is what refuses it.
    r = send(port, f, seq)
    assert r["ok"] is False and r["e"]["code"] == "AUTH_REPLAY", r
    st = pumpctl("status")
    assert st["state"] == "running" and st["stop_reason"] in ("", None)
    pumpctl("bench", "advance", "1h")
    st = pumpctl("status")
    assert abs(st["delivered_steps"] - st0["delivered_steps"] - STEPS_PER_H) <= 1
    assert auth_fails(pumpctl, log_seq) == [{"code": "AUTH_REPLAY", "cmd": "stop", "role": "clinician"}]
    # Re-provisioning resets the counters, and the old capture now fails its MAC instead.
    pumpctl("provision")
    assert pumpctl("identify")["auth"]["counters"] == {"clinician": 0, "patient": 0}
    r = send(port, f, seq)
    assert r["ok"] is False and r["e"]["code"] == "AUTH_BAD_MAC", r
    assert pumpctl("status")["state"] == "running"
    pumpctl("stop")  # the new keys work
    assert pumpctl("status")["state"] == "stopped"


# ---- missing and wrong MACs ----------------------------------------------------------------------
@pytest.mark.safety("SR-040")
def test_no_mac_and_wrong_mac_are_refused_and_change_nothing(bench, pumpctl):
    info = start(bench, pumpctl)
    pumpctl("bench", "advance", "30m")
    log_seq = pumpctl("status")["refusals_seq"]
    before = therapy(pumpctl)
    truth0 = pumpctl("bench", "show")["head_steps"]
    bolus = {"dose_ug": 50, "duration_min": 10}
    prog = {"program": {"drug": "baclofen", "concentration_ug_per_ml": CONC, "mode": "continuous", "rate_ug_per_day": 900}}
    auth = {"r": "clinician", "n": 10_000, "d": DEVICE}
    # A correctly signed body, then tampered with (dose 50 -> 500) keeping its MAC.
    good = capture(info.port, 8005, "bolus", bolus)
    body, mac = frames.decode(good.rstrip(b"\n"))
    tampered = frames.encode_body(body.replace(b'"dose_ug":50', b'"dose_ug":500'), mac)
    assert tampered != good
    wrong_key = secrets.token_bytes(32)
    b_other = frames.body_bytes({"s": 8004, "c": "program_set", "a": prog, **auth})
    cases = [
        (8001, frames.encode({"s": 8001, "c": "bolus", "a": bolus}), "AUTH_REQUIRED", "bolus"),
        (8002, frames.encode({"s": 8002, "c": "stop"}), "AUTH_REQUIRED", "stop"),
        (8003, frames.encode({"s": 8003, "c": "program_set", "a": prog, **auth}), "AUTH_REQUIRED", "program_set"),
        (8004, frames.encode_body(b_other, sign_body(b_other, wrong_key)), "AUTH_BAD_MAC", "program_set"),
        (8005, tampered, "AUTH_BAD_MAC", "bolus"),
        (8006, frames.encode_body(frames.body_bytes({"s": 8006, "c": "stop", **auth}), "AB" * 32), "AUTH_BAD_MAC", "stop"),
    ]
    counters = pumpctl("identify")["auth"]["counters"]
    for seq, frame, code, _ in cases:
        r = send(info.port, frame, seq)
        assert r["ok"] is False and r["e"]["code"] == code, (frame[:80], r)
    # A refusal records no counter: not the forged 10 000, nor anything else.
    assert pumpctl("identify")["auth"]["counters"] == counters
    assert therapy(pumpctl) == before
    assert pumpctl("bench", "show")["head_steps"] == truth0
    got = auth_fails(pumpctl, log_seq)
    assert [(g["code"], g["cmd"]) for g in got] == [(c, cmd) for _, _, c, cmd in cases]
    # The pump went on at the programmed rate, with no bolus and no new program.
    pumpctl("bench", "advance", "1h")
    st = pumpctl("status")
    assert st["state"] == "running" and st["rate_ug_per_day"] == RATE and st["bolus"] is None
    assert abs(st["delivered_steps"] - before["delivered_steps"] - STEPS_PER_H) <= 1
    # The untampered capture is refused too by now: later signed requests (pumpctl's reads)
    # moved the counter past it, so an unused capture goes stale.
    r = send(info.port, good, 8005)
    assert r["ok"] is False and r["e"]["code"] == "AUTH_REPLAY", r


# ---- roles -------------------------------------------------------------------------------------
PATIENT_PROGRAM = f"""# continuous baclofen with a patient bolus (docs/programs.md)
drug = "baclofen"
concentration_ug_per_ml = {CONC}
mode = "continuous"
rate_ug_per_day = {RATE}

[patient_bolus]
dose_ug = 20
duration_min = 5
max_per_24h = 4
lockout_min = 30
"""


@pytest.mark.safety("SR-042")
def test_patient_key_may_not_change_therapy_but_may_ask_for_its_bolus(bench, pumpctl, tmp_path):
    bench()
    prog_file = tmp_path / "patient.toml"
    prog_file.write_text(PATIENT_PROGRAM)
    pumpctl("program", "set", str(prog_file), "--yes")
    st = pumpctl("status")
    log_seq, ref_seq = st["log_seq"], st["refusals_seq"]
    before = therapy(pumpctl)
    louder = tmp_path / "louder.toml"
    louder.write_text(PATIENT_PROGRAM.replace("dose_ug = 20", "dose_ug = 40").replace("max_per_24h = 4", "max_per_24h = 8"))
    attempts = [
        ("program_check", ["program", "continuous", "900", "--concentration", str(CONC), "--yes"]),
        ("program_check", ["program", "set", str(louder), "--yes"]),
        ("stop", ["stop"]),
        ("bolus", ["bolus", "50"]),
    ]
    for cmd, argv in attempts:
        err = pumpctl("--role", "patient", *argv, ok=False)
        assert err["error"]["code"] == "AUTH_ROLE", (argv, err)
        msg = err["error"]["message"]
        assert msg.startswith("the patient key may not ") and msg.endswith("that needs the clinician key"), msg
    assert therapy(pumpctl) == before
    assert auth_fails(pumpctl, ref_seq) == [{"code": "AUTH_ROLE", "cmd": c, "role": "patient"} for c, _ in attempts]
    # What the patient may do: read the log, acknowledge alarms, ask for the programmed bolus.
    pumpctl("--role", "patient", "log", "--since", "0")
    pumpctl("--role", "patient", "alarms", "ack", "all")
    err = pumpctl("patient-bolus", ok=False)  # the lockout after programming holds
    assert err["error"]["code"] == "REFUSED_LOCKOUT"
    pumpctl("bench", "advance", "30m")
    s0 = pumpctl("status")["delivered_steps"]
    d = pumpctl("patient-bolus")
    assert d["outcome"] == "delivered" and "20 µg" in d["detail"]
    st = pumpctl("status")
    assert st["bolus"]["kind"] == "patient"
    pumpctl("bench", "advance", "1h")
    st = pumpctl("status")
    assert st["bolus"] is None
    assert abs(st["delivered_steps"] - s0 - (STEPS_PER_H + 20 * STEPS_PER_UG)) <= 1
    pb = [r["data"] for r in pumpctl("log", "--since", str(log_seq)) if r["type"] == "patient_bolus"]
    assert [p["outcome"] for p in pb] == ["delivered"]  # therapy: in the event log
    pr = [r["data"] for r in pumpctl("log", "--refusals", "--since", str(ref_seq)) if r["type"] == "patient_bolus"]
    assert [p["outcome"] for p in pr] == ["refused_lockout"]  # patient traffic: in the refusals log
    assert pumpctl("program", "show")["program"] == before["program"]["program"]


@pytest.mark.safety("SR-042")
def test_unauthenticated_requests_may_only_read(bench, pumpctl):
    info = start(bench, pumpctl)
    before = therapy(pumpctl)
    log_seq = pumpctl("status")["refusals_seq"]
    for seq, cmd in enumerate(("identify", "status", "alarms", "drugs"), 9001):
        assert send(info.port, frames.encode({"s": seq, "c": cmd}), seq)["ok"] is True, cmd
    refused = ("patient_bolus", "log", "program_show", "alarms_ack", "resume", "provision")
    for seq, cmd in enumerate(refused, 9101):
        args = {"code": "all"} if cmd == "alarms_ack" else {"keys": {"clinician": "1" * 64, "patient": "2" * 64}} if cmd == "provision" else None
        obj: dict[str, Any] = {"s": seq, "c": cmd}
        if args:
            obj["a"] = args
        r = send(info.port, frames.encode(obj), seq)
        assert r["ok"] is False and r["e"]["code"] == "AUTH_REQUIRED", (cmd, r)
    assert therapy(pumpctl) == before
    assert [f["cmd"] for f in auth_fails(pumpctl, log_seq)] == list(refused)
    # The keys did not change: pumpctl's clinician key still works.
    pumpctl("stop")


# ---- no lockout ----------------------------------------------------------------------------------
@pytest.mark.safety("SR-043")
def test_wrong_macs_raise_an_alarm_but_never_lock_out_the_key_holder(bench, pumpctl):
    info = start(bench, pumpctl)
    st = pumpctl("status")
    log_seq, ref_seq = st["log_seq"], st["refusals_seq"]
    codes = []
    for i in range(5):
        body = frames.body_bytes({"s": 9500 + i, "c": "stop", "r": "clinician", "n": 50 + i, "d": DEVICE})
        r = send(info.port, frames.encode_body(body, sign_body(body, secrets.token_bytes(32))), 9500 + i)
        codes.append(r["e"]["code"])
    assert codes == ["AUTH_BAD_MAC"] * 5
    st = pumpctl("status")
    alarm = [a for a in st["alarms"] if a["code"] == "AUTH_FAILURES"]
    assert alarm and alarm[0]["priority"] == "low", st["alarms"]
    failures = pumpctl("identify")["auth"]["failures"]
    assert failures["recent"] == 5 and failures["alarm_cause"] is True, failures
    # The key holder is answered at once, between the attacker's frames too (issue 16: five
    # random MACs used to lock everyone out for 5 min).
    answered = 0
    for i in range(10):
        body = frames.body_bytes({"s": 9600 + i, "c": "stop", "r": "clinician", "n": 90 + i, "d": DEVICE})
        send(info.port, frames.encode_body(body, sign_body(body, secrets.token_bytes(32))), 9600 + i)
        pumpctl("stop" if i % 2 == 0 else "resume")
        answered += 1
    assert answered == 10
    assert pumpctl("status")["state"] == "running"
    # Past 10 refusals a minute they are counted, the counts written within 10 s (SR-048).
    pumpctl("bench", "advance", "11s")
    # A power cut mid-attack: the alarm was saved with the refusal, so lock (none), alarm and
    # log agree after the reboot (issue 16: the lock survived, its alarm did not).
    pumpctl("bench", "power-cycle")
    st = pumpctl("status")
    assert "AUTH_FAILURES" in [a["code"] for a in st["alarms"]], st["alarms"]
    pumpctl("stop")
    assert pumpctl("status")["state"] == "stopped"
    fails = auth_fails(pumpctl, ref_seq)
    assert [f["code"] for f in fails] == ["AUTH_BAD_MAC"] * 10
    counted = [r["data"] for r in pumpctl("log", "--refusals", "--since", str(ref_seq)) if r["type"] == "refusals_counted"]
    assert counted == [{"n": 5, "codes": {"AUTH_BAD_MAC": 5}}], counted
    alarms = [r["data"] for r in pumpctl("log", "--since", str(log_seq)) if r["type"] == "alarm"]
    assert any(a.get("code") == "AUTH_FAILURES" for a in alarms), alarms


# ---- key material -----------------------------------------------------------------------------
def _fragments(keys: dict[str, str]) -> set[str]:
    """Every 16-hex-digit window of every key: a partial leak counts too."""
    return {k[i:i + 16] for k in keys.values() for i in range(0, len(k) - 15)}


READS = (("identify", None), ("hello", None), ("status", None), ("alarms", None), ("drugs", None),
         ("program_show", None), ("log", {"since": 0, "max": 40}))


def _read_everything(port: str, role: str = "clinician") -> str:
    out = []
    with Link(port) as link:
        link.enable_auth(DEVICE, role)
        extra = (("settings", None),) if role == "clinician" else ()
        for cmd, args in READS + extra:
            out.append(json.dumps(link.request(cmd, args)))
        out.extend(l.decode("ascii", "replace") for l in link.noise)
    return "\n".join(out)


@pytest.mark.safety("SR-044")
def test_no_command_returns_key_material(bench, pumpctl, home):
    info = start(bench, pumpctl)
    old = keys_in_keystore(home)
    assert len(old) == 2 and all(len(k) == 64 for k in old.values())
    pumpctl("bench", "advance", "10m")
    send(info.port, frames.encode({"s": 9900, "c": "stop"}), 9900)  # an auth_fail in the log
    seen = _read_everything(info.port) + "\n" + json.dumps(pumpctl("log", "--since", "0"))
    for frag in _fragments(old):
        assert frag not in seen
    prov = pumpctl("provision")
    assert prov == {"device_id": DEVICE, "provisioned": True}
    new = keys_in_keystore(home)
    assert new != old
    seen = _read_everything(info.port) + _read_everything(info.port, "patient")
    seen += json.dumps(pumpctl("identify")) + json.dumps(pumpctl("status"))
    for frag in _fragments(old) | _fragments(new):
        assert frag not in seen
    ident = pumpctl("identify")
    assert set(ident["auth"]) == {"provisioned", "auth_state", "counters", "failures", "refusals"}
