"""pumpctl's link against scripted replies (no pump): a reply without a sequence number is the
pump's refusal, not "no reply"; another writer's garbage never passes for our answer; a cached
reply is marked; noise before a '$' is dropped (issue 16)."""
from __future__ import annotations

import json
from typing import Callable

import pytest

from pumpctl import frames, link as link_mod
from pumpctl.errors import DeviceError


class ScriptedSerial:
    """Answers each written frame with what `answer(request, n)` returns (bytes)."""

    def __init__(self, answer: Callable[[dict, int], bytes]) -> None:
        self.answer = answer
        self.out = b""
        self.writes = 0

    @property
    def in_waiting(self) -> int:
        return len(self.out)

    def reset_input_buffer(self) -> None:
        self.out = b""

    def write(self, data: bytes) -> int:
        self.writes += 1
        body, _ = frames.decode(data.rstrip(b"\n"))
        self.out += self.answer(json.loads(body), self.writes)
        return len(data)

    def flush(self) -> None:
        pass

    def read(self, n: int) -> bytes:
        got, self.out = self.out[:n], self.out[n:]
        return got

    def close(self) -> None:
        pass


def _link(monkeypatch, answer) -> link_mod.Link:
    ser = ScriptedSerial(answer)
    monkeypatch.setattr(link_mod.serial, "Serial", lambda *a, **k: ser)
    lk = link_mod.Link("/dev/fake", timeout=0.3, retries=2)
    lk.fake = ser  # type: ignore[attr-defined]
    return lk


def _null(code: str = "BAD_JSON", msg: str = "body is not valid JSON") -> bytes:
    return frames.encode({"s": None, "ok": False, "e": {"code": code, "msg": msg}})


def test_a_reply_without_sequence_number_is_the_pumps_refusal(monkeypatch):
    lk = _link(monkeypatch, lambda req, n: _null())
    with pytest.raises(DeviceError) as e:
        lk.request("identify")
    assert e.value.code == "BAD_JSON"
    assert "the pump could not read the request: body is not valid JSON" in str(e.value)
    assert lk.fake.writes == 3  # sent again at once, not after a timeout each


def test_another_writers_garbage_reply_does_not_pass_for_ours(monkeypatch):
    # the first answer is a jammer's BAD_CRC; our own reply follows on the retry
    def answer(req: dict, n: int) -> bytes:
        if n == 1:
            return _null("BAD_CRC", "checksum mismatch")
        return frames.encode({"s": req["s"], "ok": True, "d": {"device_id": "X"}})
    lk = _link(monkeypatch, answer)
    assert lk.request("identify") == {"device_id": "X"}


def test_a_cached_reply_is_marked_and_noise_before_a_dollar_is_dropped(monkeypatch):
    def answer(req: dict, n: int) -> bytes:
        return b"junk from a second writer" + frames.encode({"cached": True, "s": req["s"], "ok": True, "d": {"x": 1}})
    lk = _link(monkeypatch, answer)
    assert lk.request("identify") == {"x": 1, "cached": True}


def test_a_dollar_in_a_value_is_escaped_and_comes_back():
    body = frames.body_bytes({"s": 1, "c": "x", "a": {"note": "$5 and ~"}})
    assert b"$" not in body and b"~" not in body
    assert json.loads(body)["a"]["note"] == "$5 and ~"


def test_a_request_with_a_date_or_nan_is_refused_naming_the_field():
    import datetime
    with pytest.raises(frames.NotFinite, match=r"a\.when is a date, not a number or text"):
        frames.body_bytes({"s": 1, "a": {"when": datetime.date(2026, 1, 1)}})
    with pytest.raises(frames.NotFinite, match=r"a\.r\[1\] is nan"):
        frames.body_bytes({"s": 1, "a": {"r": [1, float("nan")]}})
