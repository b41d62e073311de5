"""Hypothesis property tests of the pure therapy core (firmware/core) on CPython.

These add coverage; the proof that the code runs on a board is tests/firmware/mp_test_*.py on
the real MicroPython interpreter. The modules are loaded by path under their firmware names
(core.program, ...) without putting firmware/ on sys.path.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "firmware" / "core"


def _load(name: str):
    full = "core." + name
    if full in sys.modules:
        return sys.modules[full]
    if "core" not in sys.modules:
        pkg = types.ModuleType("core")
        pkg.__path__ = [str(CORE)]
        sys.modules["core"] = pkg
    spec = importlib.util.spec_from_file_location(full, CORE / (name + ".py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[full] = mod
    spec.loader.exec_module(mod)
    return mod


program = _load("program")
druglib = _load("druglib")
rolling = _load("rolling")
patient = _load("patient")
Refusal = program.Refusal  # core/base.py: the one refusal type of the firmware
ALL_OVERRIDES = list(program.OVERRIDES)
DAY = 86400

# A longer campaign: PROPS_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/host/test_program_props.py
FAST = settings(max_examples=int(os.environ.get("PROPS_EXAMPLES", "150")), deadline=None)


def hhmm(m: int) -> str:
    return "%02d:%02d" % (m // 60, m % 60)


@st.composite
def flex_programs(draw, drug="water"):
    """Valid flex programs for `drug` (all overrides given, totals within the 24 h maximum)."""
    e = druglib.get(drug)
    n = draw(st.integers(1, 48))
    starts = sorted(draw(st.sets(st.integers(1, 1439), min_size=n - 1, max_size=n - 1)))
    starts = [0] + starts
    rate_hi = e["rate"][1] // 2
    steps = [{"start": hhmm(s), "rate_ug_per_day": draw(st.integers(0, rate_hi))} for s in starts]
    periodic = []
    t = draw(st.integers(0, 600))
    for _ in range(draw(st.integers(0, 5))):
        dur = draw(st.integers(1, 120))
        if t + dur > 1439:
            break
        periodic.append({"time": hhmm(t), "dose_ug": draw(st.integers(1, e["bolus"][1] // 4)),
                         "duration_min": dur})
        t += dur + draw(st.integers(0, 200))
        if t > 1439:
            break
    d = {"drug": drug, "concentration_ug_per_ml": e["concs"][0], "mode": "flex",
         "steps": steps, "periodic_boluses": periodic, "overrides": ALL_OVERRIDES}
    if draw(st.booleans()):
        d["min_rate_ug_per_day"] = draw(st.integers(0, rate_hi))
    if draw(st.booleans()):
        dur = draw(st.integers(1, 60))
        d["patient_bolus"] = {"dose_ug": draw(st.integers(1, e["pbolus"][1] // 4)),
                              "duration_min": dur, "max_per_24h": draw(st.integers(1, 6)),
                              "lockout_min": draw(st.integers(dur, 1440))}
    return d


def _ref_rate(d, m):
    r = 0
    for s in d["steps"]:
        h, mm = s["start"].split(":")
        if int(h) * 60 + int(mm) <= m:
            r = s["rate_ug_per_day"]
    return max(r, d.get("min_rate_ug_per_day", 0))


@FAST
@given(flex_programs())
def test_flex_model_matches_reference(d):
    before = json.dumps(d, sort_keys=True)
    p = program.parse(d, druglib)
    assert json.dumps(d, sort_keys=True) == before
    rates = [p.rate_at(m) for m in range(1440)]
    assert rates == [_ref_rate(d, m) for m in range(1440)]
    # Daily total: exact minute sum of the basal plus every periodic dose.
    periodic_sum = sum(b["dose_ug"] for b in d["periodic_boluses"])
    assert p.daily_total_x1440() == sum(rates) + 1440 * periodic_sum
    assert p.daily_total_ug() == -(-(sum(rates) + 1440 * periodic_sum) // 1440)
    # Round trip.
    q = program.parse(p.to_dict(), druglib)
    assert q == p and q.to_dict() == p.to_dict()


@FAST
@given(flex_programs(), st.integers(0, 1439))
def test_next_change_is_the_next_event(d, m):
    p = program.parse(d, druglib)
    n = p.next_change_min(m)
    assert m < n <= m + 1440
    state = (p.rate_at(m), p.periodic_at(m))
    for k in range(m + 1, n):
        assert (p.rate_at(k % 1440), p.periodic_at(k % 1440)) == state, k
    events = {s for s, _ in p.steps}
    for t, _, dur in p.periodic:
        events.add(t)
        events.add((t + dur) % 1440)
    assert n % 1440 in events


@FAST
@given(st.sampled_from(["baclofen", "water"]), st.integers(1, 10 ** 7),
       st.lists(st.sampled_from(ALL_OVERRIDES), unique=True))
def test_continuous_limits(drug, rate, overrides):
    e = druglib.get(drug)
    d = program.continuous_dict(drug, e["concs"][-1], rate)
    d["overrides"] = overrides
    soft_needed = []
    if rate > e["daily"][0]:
        soft_needed.append("daily_dose")
    if rate > e["rate"][0]:
        soft_needed.append("basal_rate")
    try:
        p = program.parse(d, druglib)
    except Refusal as err:
        if rate > min(e["daily"][1], e["rate"][1], e["max24_ug"]):
            assert err.code == "HARD_LIMIT"
            assert drug in err.msg and "hard limit" in err.msg or "24 h maximum" in err.msg
        else:
            assert err.code == "SOFT_LIMIT"
            assert any(o not in overrides for o in soft_needed)
        return
    assert rate <= e["daily"][1] and rate <= e["rate"][1]
    assert set(p.overrides_used) == set(soft_needed)
    assert all(o in overrides for o in soft_needed)


# Arbitrary junk and mutations: parse raises Refusal or returns a Program, never anything
# else, and never changes its input.
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids,
                                                              max_size=4),
    max_leaves=12)
_KEYS = list(program._KEYS) + ["start", "time", "dose_ug", "x"]


@FAST
@given(flex_programs(drug="baclofen"), st.sampled_from(_KEYS), _json, st.booleans())
def test_mutated_programs_refused_cleanly(d, key, value, nested):
    d = copy.deepcopy(d)
    if nested and d["steps"]:
        d["steps"][0][key] = value
    else:
        d[key] = value
    before = json.dumps(d, sort_keys=True)
    try:
        p = program.parse(d, druglib)
    except Refusal as err:
        assert err.code in ("BAD_PROGRAM", "HARD_LIMIT", "SOFT_LIMIT", "UNKNOWN_DRUG",
                            "BAD_CONCENTRATION")
        assert err.msg and str(err) == err.msg
    else:
        assert program.parse(p.to_dict(), druglib) == p
    assert json.dumps(d, sort_keys=True) == before


@FAST
@given(_json)
def test_junk_refused_cleanly(value):
    with pytest.raises(Refusal):
        program.parse(value, druglib)


@FAST
@given(st.sampled_from([300, 900, 1800]),
       st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 10 ** 7)), max_size=120))
def test_rolling_never_under_counts(bucket, deltas):
    r = rolling.Rolling24(bucket)
    t = 0
    events = []
    for dt, ng in deltas:
        t += dt
        r.add(t, ng)
        events.append((t, ng))
        exact = sum(x for s, x in events if t - DAY < s <= t)
        older = sum(x for s, x in events if t - DAY - bucket < s <= t - DAY)
        got = r.total_ug(t)
        assert -(-exact // 1000) <= got <= -(-(exact + older) // 1000) + 1
    # State round trip at a later moment, as after a reboot: never less in any later check.
    later = t + 1234
    q = rolling.Rolling24(bucket)
    q.from_state(json.loads(json.dumps(r.to_state(later))), 7)
    for dt in (0, 600, 3600, DAY // 2, DAY - 1):
        assert q.total_ug(7 + dt) >= r.total_ug(later + dt)


@FAST
@given(st.tuples(st.integers(1, 100), st.integers(1, 30), st.integers(1, 8),
                 st.integers(30, 600)),
       st.lists(st.integers(0, 20000), min_size=1, max_size=60),
       st.lists(st.integers(0, 59), max_size=3))
def test_patient_gate_invariants(settings_, gaps, lockout_at):
    dose, dur, nmax, lock_min = settings_
    g = patient.PatientGate((dose, dur, nmax, lock_min))
    t = 0
    delivered = []
    locks = []
    for i, gap in enumerate(gaps):
        t += gap
        if i in lockout_at:
            g.start_lockout(t)
            locks.append(t)
        out, detail = g.request(t)
        recent = [s for s in delivered if t - s < DAY]
        in_lock = any(t < s + lock_min * 60 for s in delivered + locks)
        if in_lock:
            assert out == "refused_lockout", detail
        elif len(recent) >= nmax:
            assert out == "refused_limit", detail
        else:
            assert out == "delivered", detail
            delivered.append(t)
    # Safety invariants over the whole run.
    for a, b in zip(delivered, delivered[1:]):
        assert b - a >= lock_min * 60
    for s in delivered:
        assert sum(1 for u in delivered if s <= u < s + DAY) <= nmax


# The example program files are the shared test vectors of the format (docs/programs.md):
# TOML as the host reads it, then validated by the device's own parser.
EXAMPLES = sorted((ROOT / "examples" / "programs").glob("*.toml"))
EXPECTED = {
    "continuous.toml": ("continuous", 500, 500, ()),
    "flex-evening.toml": ("flex", 184, 264, ()),
    "water-demo.toml": ("flex", 11800, 14200, ("daily_dose", "basal_rate")),
}


def test_examples_present():
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_programs_parse(path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    d = tomllib.loads(path.read_text(encoding="utf-8"))
    p = program.parse(d, druglib)
    mode, daily, worst, used = EXPECTED[path.name]
    assert (p.mode, p.daily_total_ug(), p.worst_case_daily_ug(), p.overrides_used) == \
        (mode, daily, worst, used)
    # JSON on the wire carries the same structure.
    assert program.parse(json.loads(json.dumps(d)), druglib) == p
    assert program.parse(p.to_dict(), druglib) == p
