"""Host framing against the shared vectors and round-trip properties."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from pumpctl import frames

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "frames.json").read_text())


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors(v):
    line = v["line"].encode()
    if v.get("none"):
        assert frames.decode(line) is None
    elif "error" in v:
        with pytest.raises(frames.FrameError) as e:
            frames.decode(line)
        assert e.value.code == v["error"]
    else:
        body, mac = frames.decode(line)
        assert body.decode() == v["body"] and mac == v["mac"]
        assert frames.encode_body(body, mac).rstrip(b"\n") == line
        if "object" in v:  # the encoder's side: what it must write for this object
            assert frames.encode(v["object"]).rstrip(b"\n") == line
            assert frames.parse(line) == v["object"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12)


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_round_trip_any_object(obj):
    line = frames.encode(obj)
    assert all(0x20 <= b <= 0x7E for b in line[:-1]) and line.endswith(b"\n")
    assert frames.parse(line) == obj


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data):
    try:
        frames.parse(data)
    except frames.FrameError:
        pass


@given(st.integers(0, 200), st.integers(0, 255))
def test_any_single_byte_change_is_detected(pos, val):
    line = frames.encode({"s": 1, "c": "program_set", "a": {"rate": 500}}).rstrip(b"\n")
    pos = pos % len(line)
    if line[pos] == val:
        return
    bad = line[:pos] + bytes([val]) + line[pos + 1:]
    try:
        got = frames.parse(bad)
    except frames.FrameError:
        return
    assert got is None  # only possible when the '$' itself was replaced: not a frame at all
