"""The link fuzzer (tests/fuzz/fuzz_link.py) with a small count: about 2000 hostile frames into
the real firmware on the real MicroPython interpreter through the bench's serial port. The full
campaign (100 000 frames) is `make fuzz`."""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_link.py"


def _fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_link", _PATH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.safety("SR-045")
def test_2000_hostile_frames_change_nothing_and_the_link_answers(monkeypatch):
    fz = _fuzzer()
    out = io.StringIO()
    res = fz.run(seed=45, n_frames=2000, batch=64, check_every=250, out=out)
    report = res.table() + "\n" + out.getvalue()
    assert res.ok, report
    # The run really happened: every category was sent and answered as the protocol says.
    assert res.frames == 2000 and res.bytes_sent > 100_000, report
    assert set(res.sent) >= set(fz.BASE_CATEGORIES), report
    assert res.checks_total == 8 and res.checks_passed == 8, report
    assert res.replies_ok + sum(res.codes.values()) == res.replies_expected, report
    for code in ("BAD_FRAME", "BAD_CRC", "TOO_LONG", "BAD_JSON", "BAD_SEQ", "UNKNOWN_CMD", "BAD_ARGS"):
        assert res.codes[code] > 0, (code, report)
    assert not any(res.codes[c] for c in fz.BUG_CODES), report
    if res.therapy_included:  # authentication is wired: unsigned therapy was refused with AUTH_*
        assert sum(n for c, n in res.codes.items() if c.startswith("AUTH_")) > 0, report


def test_the_fuzzer_notices_a_changed_therapy(monkeypatch):
    """The checks can fail: a frame that really stops the pump mid-campaign is caught."""
    fz = _fuzzer()
    real_next = fz.Generator.next
    state = {"n": 0}

    def next_with_a_real_stop(self):
        state["n"] += 1
        if state["n"] == 100 and getattr(fz, "_signer_for_test", None):
            body, mac = fz._signer_for_test({"s": 77, "c": "stop"})
            return "valid_read", fz.frames.encode_body(body, mac), 77
        return real_next(self)

    monkeypatch.setattr(fz.Generator, "next", next_with_a_real_stop)
    orig_find = fz.Device.find_keys

    def find_keys(self):
        orig_find(self)
        fz._signer_for_test = self.signer or (lambda o: (fz.frames.body_bytes(o), None))

    monkeypatch.setattr(fz.Device, "find_keys", find_keys)
    res = fz.run(seed=7, n_frames=300, batch=32, check_every=100, out=io.StringIO())
    assert not res.ok
    assert any("state changed" in f for f in res.failures), res.table()


def _attacks():
    spec = importlib.util.spec_from_file_location("attacks", _PATH.parent / "attacks.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.safety("SR-048", "SR-049", "SR-043", "SR-050")
def test_the_attack_campaigns_hold_at_a_small_count(monkeypatch, tmp_path):
    """The attack classes of issue 16 (`make fuzz` runs them at full size): a slow unsigned
    stream, cache poisoning, lockout cycling and a patient flood, each judged by its figure."""
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))
    at = _attacks()
    res = at.run_all(hours=1, tries=3, cycles=2, patient=40)
    report = at.table(res)
    s, c, lk, p = res["slow-unsigned"], res["cache-poison"], res["lockout-cycle"], res["patient-flood"]
    assert s["frames"] == 600 and s["events_surviving"] == s["events_before"] >= 3, report
    assert s["events_first_seq"] == 1 and s["state"] == "running", report
    assert c["genuine_run"] == c["junk_first_refused"] == c["junk_after_refused"] == c["genuine_retry_cached"] == 3, report
    assert lk["clinician_answered"] == lk["clinician_asked"] == 4 and lk["alarm"], report
    assert p["usage_attempts"] == 40 and p["codes"].get("RATE_LIMITED", 0) >= 30, report
    assert p["flash_bytes_per_request"] < 1000, report  # 3.8 kB before issue 16
