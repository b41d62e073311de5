"""Attack campaigns against the real firmware on a lockstep bench (issue 16), each with the
figure it is judged by. Research and education only; never for human use.

    slow-unsigned  unsigned therapy frames, 10 a virtual minute for H virtual hours: how many
                   of the event log's records survive, and what the refusals cost on flash
    cache-poison   the body of the clinician's next request sent first with a junk MAC, then
                   the genuine frame; and junk-MAC copies of an accepted frame
    lockout-cycle  5 wrong MACs at every 5-minute mark (what used to renew a lockout), a
                   clinician request after each burst: how many are answered
    patient-flood  N patient_bolus requests as fast as the link takes them: flash written per
                   request, and whether every attempt is in the bolus usage report

`make fuzz` runs them at full size after the link fuzzer; tests/e2e/test_fuzz.py runs a small
count of each. Usage: python tests/fuzz/attacks.py [--hours 10] [--tries 20] [--cycles 12]
[--patient 300]."""
from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

import serial  # noqa: E402

from pumpctl import bench as benchmod  # noqa: E402
from pumpctl import frames  # noqa: E402
from pumpctl.errors import DeviceError  # noqa: E402
from pumpctl.link import Link  # noqa: E402
from pumpctl.signing import sign_body  # noqa: E402

PROGRAM = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 500,
           "patient_bolus": {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 30}}


class Raw:
    """The bench's port as any program on the host can open it: frames without the key."""

    def __init__(self, port: str) -> None:
        self.s = serial.Serial(port, 115200, timeout=0.02)
        self.buf = b""

    def close(self) -> None:
        self.s.close()

    def write(self, data: bytes) -> None:
        self.s.write(data)
        self.s.flush()

    def reply(self, seq: int, wait: float = 5.0) -> Optional[dict]:
        end = time.monotonic() + wait
        while time.monotonic() < end:
            self.buf += self.s.read(65536)
            *lines, self.buf = self.buf.split(b"\n")
            for line in lines:
                d = line.rfind(b"$")
                if d < 0:
                    continue
                try:
                    r = frames.parse(line[d:])
                except frames.FrameError:
                    continue
                if r is not None and r.get("s") == seq:
                    return r
        return None

    def send(self, frame: bytes, seq: int) -> Optional[dict]:
        self.buf = b""
        self.s.reset_input_buffer()
        self.write(frame)
        return self.reply(seq)


class Bench:
    """A fresh lockstep bench with the program running and keys in a private PUMPCTL_HOME."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="attacks-"))
        os.environ["PUMPCTL_HOME"] = str(self.tmp / "home")
        self.info = benchmod.start(self.tmp / "bench", lockstep=True)
        with Link(self.info.port) as link:
            self.device_id = link.request("identify")["device_id"]
        self.clinician(lambda l: l.request("program_set", {"program": PROGRAM}))
        self.clinician(lambda l: l.request("bolus", {"dose_ug": 20, "duration_min": 10}))
        self.advance(3_600_000)

    def link(self, role: str = "clinician") -> Link:
        link = Link(self.info.port)
        link.__enter__()
        if role != "anyone":
            assert link.enable_auth(self.device_id, role), f"no {role} key for {self.device_id}"
        return link

    def clinician(self, fn: Any) -> Any:
        link = self.link()
        try:
            return fn(link)
        finally:
            link.__exit__(None, None, None)

    def advance(self, ms: int) -> None:
        benchmod.control(self.info, {"cmd": "advance", "ms": ms}, timeout=600)

    def show(self) -> dict:
        return benchmod.control(self.info, {"cmd": "show"})

    def log(self, ring: str = "events") -> dict:
        """Every record of a ring and its bounds."""
        def read(link: Link) -> dict:
            recs: list[dict] = []
            pos, first, last = 0, 0, None
            while True:
                d = link.request("log", {"since": pos, "max": 40, **({"ring": ring} if ring != "events" else {})})
                first, last = d["first_seq"], d["last_seq"]
                got = [r for r in d["records"] if r["seq"] > pos]
                if not got:
                    break
                recs += got
                pos = got[-1]["seq"]
            return {"records": recs, "first_seq": first, "last_seq": last}
        return self.clinician(read)

    def close(self) -> None:
        benchmod.stop(self.info)


def _flash(b: Bench) -> tuple[int, int]:
    f = b.show()["flash"]
    return f["bytes_written"], f["blocks_erased"]


def slow_unsigned(hours: int = 10, per_min: int = 10) -> dict[str, Any]:
    b = Bench()
    try:
        before = b.log()
        kept = [(r["seq"], r["type"]) for r in before["records"]]
        raw = Raw(b.info.port)
        w0, e0 = _flash(b)
        seq = 100_000
        for _ in range(hours * 60):
            raw.write(b"".join(frames.encode({"s": seq + i, "c": "stop"}) for i in range(per_min)))
            seq += per_min
            raw.reply(seq - 1, wait=5)
            b.advance(60_000)
        raw.close()
        w1, e1 = _flash(b)
        after = b.log()
        have = {(r["seq"], r["type"]) for r in after["records"]}
        refusals = b.log("refusals")
        recs = refusals["records"]
        counted = sum(r["data"]["n"] for r in recs if r["type"] == "refusals_counted")
        running = b.clinician(lambda l: l.request("status"))["state"]
        return {"frames": hours * 60 * per_min, "hours": hours, "events_before": len(kept),
                "events_surviving": sum(1 for k in kept if k in have), "events_first_seq": after["first_seq"],
                "refusal_records_kept": len(recs), "refusals_lost_by_wrap": refusals["first_seq"] - 1,
                "refusals_counted": counted, "flash_bytes_per_frame": round((w1 - w0) / (hours * 60 * per_min)),
                "erases": e1 - e0, "state": running}
    finally:
        b.close()


def cache_poison(tries: int = 20) -> dict[str, Any]:
    b = Bench()
    try:
        raw = Raw(b.info.port)
        genuine_ok = junk_refused = junk_after_refused = cached_right = 0
        link = b.link()
        for i in range(tries):
            cmd = "stop" if i % 2 == 0 else "resume"
            seq = 50_000 + i
            body, mac = link.signer({"s": seq, "c": cmd})  # the clinician's next frame, not yet sent
            genuine = frames.encode_body(body, mac)
            junk = frames.encode_body(body, secrets.token_hex(32))
            r = raw.send(junk, seq)
            junk_refused += bool(r and r.get("e", {}).get("code") == "AUTH_BAD_MAC")
            r = raw.send(genuine, seq)
            genuine_ok += bool(r and r.get("ok") is True and "cached" not in r)
            r = raw.send(junk, seq)
            junk_after_refused += bool(r and r.get("e", {}).get("code") == "AUTH_BAD_MAC")
            r = raw.send(genuine, seq)
            cached_right += bool(r and r.get("ok") is True and r.get("cached") is True)
        link.__exit__(None, None, None)
        raw.close()
        return {"tries": tries, "genuine_run": genuine_ok, "junk_first_refused": junk_refused,
                "junk_after_refused": junk_after_refused, "genuine_retry_cached": cached_right}
    finally:
        b.close()


def lockout_cycle(cycles: int = 12) -> dict[str, Any]:
    b = Bench()
    try:
        raw = Raw(b.info.port)
        answered = asked = bad = 0
        for c in range(cycles):
            for i in range(5):
                seq = 60_000 + c * 10 + i
                body = frames.body_bytes({"s": seq, "c": "stop", "r": "clinician", "n": 10_000 + seq, "d": b.device_id})
                r = raw.send(frames.encode_body(body, sign_body(body, secrets.token_bytes(32))), seq)
                bad += bool(r and r.get("e", {}).get("code") == "AUTH_BAD_MAC")
            for cmd in ("stop", "resume"):
                asked += 1
                try:
                    b.clinician(lambda l: l.request(cmd))
                    answered += 1
                except DeviceError:
                    pass
            b.advance(300_000)
        raw.close()
        alarms = [a["code"] for a in b.clinician(lambda l: l.request("status"))["alarms"]]
        return {"cycles": cycles, "bad_frames_refused": bad, "clinician_asked": asked,
                "clinician_answered": answered, "alarm": "AUTH_FAILURES" in alarms}
    finally:
        b.close()


def patient_flood(n: int = 300) -> dict[str, Any]:
    b = Bench()
    try:
        b.advance(31 * 60_000)  # past the lockout after programming
        w0, e0 = _flash(b)
        link = b.link("patient")
        codes: dict[str, int] = {}
        t0 = time.monotonic()
        for _ in range(n):
            try:
                link.request("patient_bolus")
                codes["OK"] = codes.get("OK", 0) + 1
            except DeviceError as e:
                codes[e.code] = codes.get(e.code, 0) + 1
        wall = time.monotonic() - t0
        link.__exit__(None, None, None)
        b.advance(70_000)  # the counts' write (10 s) and the usage save (1 min) are due
        w1, e1 = _flash(b)
        usage = b.clinician(lambda l: l.request("patient_usage"))["days"]
        return {"requests": n, "seconds": round(wall, 2), "codes": codes,
                "flash_bytes_per_request": round((w1 - w0) / n), "erases_per_request": round((e1 - e0) / n, 3),
                "usage_attempts": usage[-1]["attempts"] if usage else 0}
    finally:
        b.close()


def run_all(hours: int, tries: int, cycles: int, patient: int) -> dict[str, dict[str, Any]]:
    return {"slow-unsigned": slow_unsigned(hours), "cache-poison": cache_poison(tries),
            "lockout-cycle": lockout_cycle(cycles), "patient-flood": patient_flood(patient)}


def table(res: dict[str, dict[str, Any]]) -> str:
    lines = ["| attack | figures |", "|---|---|"]
    for name, d in res.items():
        lines.append(f"| {name} | " + ", ".join(f"{k} {v}" for k, v in d.items()) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Attack campaigns on a virtual bench (issue 16; never for human use).")
    ap.add_argument("--hours", type=int, default=10, help="virtual hours of the slow unsigned stream (default 10)")
    ap.add_argument("--tries", type=int, default=20, help="cache-poisoning tries (default 20)")
    ap.add_argument("--cycles", type=int, default=12, help="5-minute cycles of 5 wrong MACs (default 12)")
    ap.add_argument("--patient", type=int, default=300, help="patient_bolus requests in the flood (default 300)")
    a = ap.parse_args(argv)
    res = run_all(a.hours, a.tries, a.cycles, a.patient)
    print(table(res))
    s, c, lk, p = res["slow-unsigned"], res["cache-poison"], res["lockout-cycle"], res["patient-flood"]
    ok = (s["events_surviving"] == s["events_before"] and s["state"] == "running"
          and c["genuine_run"] == c["tries"] == c["junk_first_refused"] == c["junk_after_refused"]
          and lk["clinician_answered"] == lk["clinician_asked"] and p["usage_attempts"] == p["requests"])
    print("all attacks held" if ok else "AN ATTACK GOT THROUGH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
