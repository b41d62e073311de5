"""The safety case itself: its documents parse and agree, and its report generator and pytest
plugin decide what they claim to decide."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import safety_report as sr

ROOT = Path(__file__).resolve().parents[2]
REQS_MD = ROOT / "docs/safety/requirements.md"
HAZ_MD = ROOT / "docs/safety/hazards.md"

CATEGORIES = {"Over-delivery", "Under-delivery", "Wrong drug or concentration", "Programming error",
              "Alarm failure", "Data loss", "Clock error", "Security"}


# ---------------------------------------------------------------- the real documents

@pytest.fixture(scope="module")
def reqs():
    return sr.parse_requirements(REQS_MD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hazards():
    return sr.parse_hazards(HAZ_MD.read_text(encoding="utf-8"))


def test_requirement_table_parses_with_unique_sequential_ids(reqs):
    ids = [r["id"] for r in reqs]
    assert 30 <= len(ids) <= 50
    assert len(set(ids)) == len(ids)
    assert ids == ["SR-%03d" % i for i in range(1, len(ids) + 1)]


def test_every_requirement_is_one_sentence_in_a_known_category(reqs):
    for r in reqs:
        s = r["sentence"]
        assert s.endswith("."), r["id"]
        # A second sentence would show as ". " followed by a capital letter.
        assert not re.search(r"\.\s+[A-Z]", s), "%s holds more than one sentence" % r["id"]
        assert r["category"] in CATEGORIES, "%s sits under %r" % (r["id"], r["category"])
    assert {r["category"] for r in reqs} == CATEGORIES


def test_hazards_cover_every_category_and_cite_existing_requirements(reqs, hazards):
    assert {h["category"] for h in hazards.values()} == CATEGORIES
    known = {r["id"] for r in reqs}
    for hid, h in hazards.items():
        assert h["requirements"], hid
        assert set(h["requirements"]) <= known, "%s cites unknown %s" % (hid, set(h["requirements"]) - known)


def test_every_requirement_is_cited_by_a_hazard_and_both_lists_agree(reqs, hazards):
    cited = {sid for h in hazards.values() for sid in h["requirements"]}
    assert cited == {r["id"] for r in reqs}
    assert sr.check_docs(reqs, hazards) == []


def test_every_hazard_states_residual_risk_and_what_a_real_device_adds():
    text = HAZ_MD.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    assert len(sections) >= 8
    for sec in sections:
        name = sec.splitlines()[0]
        for label in ("**Causes:**", "**Mitigations:**", "**Requirements:**", "**Residual risk:**",
                      "**A real device adds:**"):
            assert label in sec, "%s lacks %s" % (name, label)


# ---------------------------------------------------------------- parsers and checks refuse bad input

def test_malformed_requirement_row_is_refused_with_its_line():
    with pytest.raises(sr.DocError, match="line 2"):
        sr.parse_requirements("## X\n| SR-001 | a sentence with no hazard column |\n")
    with pytest.raises(sr.DocError, match="malformed hazard"):
        sr.parse_requirements("## X\n| SR-001 | A sentence. | H1 |\n")


def test_hazard_without_requirements_line_is_refused():
    with pytest.raises(sr.DocError, match="HZ-OD-1"):
        sr.parse_hazards("## Over-delivery\n### HZ-OD-1: too much\n- **Causes:** x\n")
    with pytest.raises(sr.DocError, match="defined twice"):
        sr.parse_hazards("### HZ-OD-1: a\n- **Requirements:** SR-001\n### HZ-OD-1: b\n- **Requirements:** SR-001\n")


def test_check_docs_finds_duplicates_gaps_and_dangling_references():
    reqs = sr.parse_requirements(
        "## A\n| SR-001 | One. | HZ-AA-1 |\n| SR-001 | Two. | HZ-AA-1 |\n| SR-004 | Three. | HZ-AA-9 |\n")
    hazards = sr.parse_hazards("## A\n### HZ-AA-1: h\n- **Requirements:** SR-001, SR-007\n")
    problems = "\n".join(sr.check_docs(reqs, hazards))
    assert "SR-001 appears more than once" in problems
    assert "expected SR-003" in problems
    assert "HZ-AA-9, which hazards.md does not define" in problems
    assert "cites SR-007, which requirements.md does not define" in problems
    assert "SR-004 is cited by no hazard" in problems


# ---------------------------------------------------------------- the report generator

SYN_REQS = """# synthetic
## Over-delivery
| ID | Requirement | Hazards |
|---|---|---|
| SR-001 | The pump refuses too much. | HZ-OD-1 |
| SR-002 | The pump logs the refusal. | HZ-OD-1 |
## Security
| SR-003 | The pump refuses a replay. | HZ-SE-1 |
"""

SYN_HAZ = """## Over-delivery
### HZ-OD-1: too much
- **Requirements:** SR-001, SR-002
## Security
### HZ-SE-1: replay
- **Requirements:** SR-003
"""


def _test(nodeid, ids, outcome, message=""):
    return {"nodeid": nodeid, "ids": ids, "outcome": outcome, "duration": 0.01, "message": message}


ALL_PASS = [_test("tests/firmware/mp_test_a.py::test_limit", ["SR-001", "SR-002"], "passed"),
            _test("tests/e2e/test_b.py::test_replay", ["SR-003"], "passed")]


@pytest.fixture
def syn(tmp_path):
    (tmp_path / "req.md").write_text(SYN_REQS, encoding="utf-8")
    (tmp_path / "haz.md").write_text(SYN_HAZ, encoding="utf-8")

    def run(tests, *extra, exitstatus=0, collection_errors=()):
        data = {"version": 1, "exitstatus": exitstatus, "collection_errors": list(collection_errors),
                "totals": {"passed": 0, "failed": 0, "skipped": 0}, "tests": tests}
        (tmp_path / "res.json").write_text(json.dumps(data), encoding="utf-8")
        rc = sr.main(["--from-json", str(tmp_path / "res.json"), "--requirements", str(tmp_path / "req.md"),
                      "--hazards", str(tmp_path / "haz.md"), "--out", str(tmp_path / "trace.md")] + list(extra))
        return rc, (tmp_path / "trace.md").read_text(encoding="utf-8")
    return run


def _row(text, rid):
    return next(line for line in text.splitlines() if line.startswith("| %s |" % rid))


def test_report_succeeds_when_every_requirement_has_a_passing_test(syn):
    rc, text = syn(ALL_PASS)
    assert rc == 0
    assert text.startswith("<!-- GENERATED FILE")
    assert "Do not edit by hand" in text
    assert re.search(r"on \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert "| Requirement | Hazards | Sentence | Tests | Result |" in text
    assert _row(text, "SR-001").endswith("| PASS |")
    assert "`tests/e2e/test_b.py::test_replay` (passed)" in _row(text, "SR-003")
    assert "Proven (a tagged test passed, none failed): 3 of 3" in text
    assert "Verdict: **PASS**" in text


def test_report_fails_when_a_requirement_has_no_test(syn, capsys):
    rc, text = syn(ALL_PASS[:1])
    assert rc == 1
    assert _row(text, "SR-003").endswith("| none | **UNTESTED** |")
    assert "SR-003 (untested)" in capsys.readouterr().out
    # The integrator's switch while features land: the gap is listed, the exit status is 0.
    rc, text = syn(ALL_PASS[:1], "--allow-untested")
    assert rc == 0
    assert "gaps allowed" in text


def test_report_fails_when_a_tagged_test_fails_even_with_gaps_allowed(syn):
    tests = ALL_PASS + [_test("tests/host/test_c.py::test_more", ["SR-002"], "failed", "AssertionError: 3 != 4")]
    for extra in ((), ("--allow-untested",)):
        rc, text = syn(tests, *extra)
        assert rc == 1
        assert _row(text, "SR-002").endswith("| **FAIL** |")
        assert _row(text, "SR-001").endswith("| PASS |")
        assert "AssertionError: 3 != 4" in text


def test_report_fails_on_an_unknown_requirement_id(syn):
    rc, text = syn(ALL_PASS + [_test("tests/host/test_d.py::test_typo", ["SR-0O3"], "passed")], "--allow-untested")
    assert rc == 1
    assert "`tests/host/test_d.py::test_typo` names `SR-0O3`" in text


def test_skipped_only_is_not_proof(syn):
    rc, text = syn([ALL_PASS[0], _test("tests/e2e/test_b.py::test_replay", ["SR-003"], "skipped", "no bench")])
    assert rc == 1
    assert _row(text, "SR-003").endswith("| **NOT PROVEN** |")


def test_incomplete_pytest_run_fails_the_report(syn):
    assert syn(ALL_PASS, exitstatus=2)[0] == 1
    rc, text = syn(ALL_PASS, collection_errors=["tests/firmware/mp_test_x.py"])
    assert rc == 1
    assert "mp_test_x.py" in text


def test_document_disagreement_fails_the_report(syn, tmp_path):
    (tmp_path / "haz.md").write_text(SYN_HAZ.replace("SR-001, SR-002", "SR-001"), encoding="utf-8")
    rc, text = syn(ALL_PASS)
    assert rc == 1
    assert "SR-002 names hazard HZ-OD-1, but HZ-OD-1 does not cite SR-002" in text


def test_unreadable_results_are_a_clear_error(tmp_path, capsys):
    (tmp_path / "res.json").write_text("{not json", encoding="utf-8")
    rc = sr.main(["--from-json", str(tmp_path / "res.json"), "--out", str(tmp_path / "t.md")])
    assert rc == 2
    assert "cannot read test results" in capsys.readouterr().err
    assert not (tmp_path / "t.md").exists()


# ---------------------------------------------------------------- the plugin, in a real pytest run

PLUGIN_CONFTEST = '''
import pytest

class FakeFile(pytest.File):
    """Custom items like tests/conftest.py's MpItem: the marker is added at collection."""
    def collect(self):
        for line in self.path.read_text().splitlines():
            name, outcome, *ids = line.split()
            item = FakeItem.from_parent(self, name=name)
            item.outcome = outcome
            if ids:
                item.add_marker(pytest.mark.safety(*ids))
            yield item

class FakeItem(pytest.Item):
    def runtest(self):
        if self.outcome == "fail":
            raise AssertionError("fake firmware failure")

    def reportinfo(self):
        return self.path, 0, self.name

def pytest_collect_file(parent, file_path):
    if file_path.suffix == ".fake":
        return FakeFile.from_parent(parent, path=file_path)
'''

PLUGIN_TESTS = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

@pytest.mark.safety("SR-001")
def test_pass():
    pass

@pytest.mark.safety("SR-002", "SR-003")
def test_fail():
    assert 1 == 2

@pytest.mark.safety("SR-004")
def test_skip():
    pytest.skip("no bench here")

@pytest.mark.safety("SR-005")
def test_setup_error(broken):
    pass

@pytest.mark.safety("SR-006")
@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

@pytest.mark.safety("SR-012")
@pytest.mark.xfail(reason="expected to fail but passes")
def test_xpass():
    pass

@pytest.mark.safety("SR-007")
def test_deselected():
    pass

def test_untagged():
    pass

class TestGroup:
    pytestmark = pytest.mark.safety("SR-008")

    @pytest.mark.safety("SR-009")
    def test_both(self):
        pass
'''


def _run_plugin(tmp_path, *args):
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "conftest.py").write_text(PLUGIN_CONFTEST, encoding="utf-8")
    (tmp_path / "test_tagged.py").write_text(PLUGIN_TESTS, encoding="utf-8")
    (tmp_path / "fw.fake").write_text("fw_ok pass SR-010\nfw_bad fail SR-011 SR-001\nfw_plain pass\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"),
                           "--rootdir", str(tmp_path), "-p", "safety_plugin"] + list(args) + [str(tmp_path)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)


def test_plugin_records_outcomes_of_function_and_custom_items(tmp_path):
    out = tmp_path / "out" / "res.json"
    proc = _run_plugin(tmp_path, "--safety-json", str(out), "-k", "not deselected")
    assert proc.returncode == 1, proc.stdout + proc.stderr  # tests failed, session complete
    data = json.loads(out.read_text(encoding="utf-8"))
    got = {t["nodeid"].split("::", 1)[1]: (t["outcome"], t["ids"]) for t in data["tests"]}
    assert got == {
        "test_pass": ("passed", ["SR-001"]),
        "test_fail": ("failed", ["SR-002", "SR-003"]),
        "test_skip": ("skipped", ["SR-004"]),
        "test_setup_error": ("failed", ["SR-005"]),
        "test_xfail": ("skipped", ["SR-006"]),
        "test_xpass": ("skipped", ["SR-012"]),  # an expected failure proves nothing either way
        "TestGroup::test_both": ("passed", ["SR-009", "SR-008"]),
        "fw_ok": ("passed", ["SR-010"]),
        "fw_bad": ("failed", ["SR-011", "SR-001"]),
    }
    by_name = {t["nodeid"].split("::", 1)[1]: t for t in data["tests"]}
    assert "fake firmware failure" in by_name["fw_bad"]["message"]
    assert "no bench here" in by_name["test_skip"]["message"]
    assert data["exitstatus"] == 1
    assert data["collection_errors"] == []
    assert data["totals"] == {"passed": 5, "failed": 3, "skipped": 3}


def test_plugin_is_silent_without_its_option(tmp_path):
    proc = _run_plugin(tmp_path, "-k", "test_pass")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(tmp_path.rglob("*.json"))


def test_report_runs_pytest_with_the_plugin(tmp_path):
    """The default mode: safety_report.py runs pytest itself (tests/ put on PYTHONPATH for -p)."""
    (tmp_path / "req.md").write_text(SYN_REQS, encoding="utf-8")
    (tmp_path / "haz.md").write_text(SYN_HAZ, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_x.py").write_text(textwrap.dedent('''
        import pytest

        @pytest.mark.safety("SR-001", "SR-002")
        def test_a():
            pass

        @pytest.mark.safety("SR-003")
        def test_b():
            pass
        '''), encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, str(ROOT / "tests/safety_report.py"), "--requirements", str(tmp_path / "req.md"),
                           "--hazards", str(tmp_path / "haz.md"), "--out", str(tmp_path / "trace.md"),
                           "--json", str(tmp_path / "res.json"), "--",
                           "-q", "-p", "no:cacheprovider", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path),
                           str(tmp_path / "test_x.py")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "trace.md").read_text(encoding="utf-8")
    assert "3 of 3" in text and "Verdict: **PASS**" in text
