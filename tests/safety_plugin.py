"""Pytest plugin: record which tests claim which safety requirements, and how they ended.

Use: `python -m pytest -p safety_plugin --safety-json PATH` with tests/ on sys.path
(tests/safety_report.py sets PYTHONPATH for you). Without --safety-json the plugin does nothing.

Every collected item carrying `@pytest.mark.safety("SR-001", ...)` is recorded: ordinary pytest
functions and the custom MpItem of tests/conftest.py (firmware tests on MicroPython, whose
`@req(...)` tags it turns into the same marker) alike, because only `item.iter_markers` and the
item's reports are used.

JSON written at the end of the session:
    {"version": 1, "finished": ISO time, "exitstatus": int,
     "collection_errors": [nodeid, ...],
     "totals": {"passed": n, "failed": n, "skipped": n},        # every test, tagged or not
     "tests": [{"nodeid": str, "ids": [str, ...],
                "outcome": "passed" | "failed" | "skipped" | "notrun",
                "duration": seconds, "message": str}, ...]}
An outcome is "failed" if setup, call or teardown failed; "skipped" if it was skipped or is an
xfail/xpass (an expected failure proves nothing either way); "notrun" if it was collected but
never reported (an interrupted session, `-x`; under pytest-xdist the controller collects
nothing itself, so a tagged test that never reported is simply absent, and the report then
counts its requirement as unproven).
"""
from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest

MARKER = "safety"
_MESSAGE_CHARS = 400


def pytest_addoption(parser):
    group = parser.getgroup("safety", "safety requirement traceability")
    group.addoption("--safety-json", metavar="PATH", default=None,
                    help="write the outcome of every test tagged @pytest.mark.safety(...) to PATH")


def pytest_configure(config):
    # Registered here too so the plugin works in a tree without the project's pyproject.toml.
    config.addinivalue_line("markers", "safety(*ids): the test proves the safety requirements with these IDs (SR-nnn)")
    path = config.getoption("safety_json")
    # Under pytest-xdist (make test runs two workers) the workers run the tests and the
    # controller writes the file: each report carries its item's IDs in user_properties.
    if path and not hasattr(config, "workerinput"):
        config.pluginmanager.register(SafetyRecorder(path), "safety_recorder")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    for item in items:
        ids = marker_ids(item)
        if ids:
            item.user_properties.append(("safety_ids", ids))


def _report_ids(report) -> list[str]:
    for k, v in getattr(report, "user_properties", ()) or ():
        if k == "safety_ids":
            return list(v)
    return []


def marker_ids(item) -> list[str]:
    """All requirement IDs an item claims, over every safety marker (function, class, module)."""
    ids: list[str] = []
    for mark in item.iter_markers(name=MARKER):
        for arg in mark.args:
            s = str(arg)
            if s not in ids:
                ids.append(s)
    return ids


def _outcome_of(report) -> str:
    if getattr(report, "wasxfail", None) is not None and not report.failed:
        return "skipped"
    if report.failed:
        return "failed"
    if report.skipped:
        return "skipped"
    return "passed"


_RANK = {"notrun": 0, "passed": 1, "skipped": 2, "failed": 3}


class SafetyRecorder:
    def __init__(self, path: str):
        self.path = Path(path)
        self.entries: dict[str, dict] = {}
        self.collection_errors: list[str] = []
        self.totals = {"passed": 0, "failed": 0, "skipped": 0}
        self._final: dict[str, str] = {}  # nodeid -> worst outcome seen over its phases

    def pytest_collectreport(self, report):
        if report.failed:
            self.collection_errors.append(report.nodeid or "<session>")

    def pytest_collection_finish(self, session):
        # session.items is final here (after -k/-m deselection): exactly the items meant to run.
        for item in session.items:
            ids = marker_ids(item)
            if ids:
                self.entries[item.nodeid] = {"nodeid": item.nodeid, "ids": ids, "outcome": "notrun",
                                             "duration": 0.0, "message": ""}

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        # Phases: setup, call, teardown. A test ends with the worst outcome among them; a passing
        # setup or teardown only counts once the call passed.
        if report.when != "call" and report.passed:
            outcome = None
        else:
            outcome = _outcome_of(report)
        if outcome is not None:
            prev = self._final.get(nodeid, "notrun")
            if _RANK[outcome] > _RANK[prev]:
                self._final[nodeid] = outcome
        entry = self.entries.get(nodeid)
        if entry is None:
            ids = _report_ids(report)  # collected by an xdist worker, not here
            if not ids:
                return
            entry = self.entries[nodeid] = {"nodeid": nodeid, "ids": ids, "outcome": "notrun",
                                            "duration": 0.0, "message": ""}
        entry["duration"] = round(entry["duration"] + float(getattr(report, "duration", 0.0) or 0.0), 4)
        if outcome is not None and _RANK[outcome] > _RANK[entry["outcome"]]:
            entry["outcome"] = outcome
            if outcome in ("failed", "skipped"):
                entry["message"] = _short_message(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        totals = {"passed": 0, "failed": 0, "skipped": 0}
        for outcome in self._final.values():
            if outcome in totals:
                totals[outcome] += 1
        data = {
            "version": 1,
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "exitstatus": int(exitstatus),
            "collection_errors": self.collection_errors,
            "totals": totals,
            "tests": sorted(self.entries.values(), key=lambda e: e["nodeid"]),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def _short_message(report) -> str:
    if report.skipped and isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        text = str(report.longrepr[2])  # (file, line, reason)
    elif getattr(report, "wasxfail", None) is not None:
        text = "xfail: " + str(report.wasxfail)
    else:
        text = getattr(report, "longreprtext", "") or str(report.longrepr or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # The last lines of a traceback say what went wrong; keep them.
    text = " / ".join(lines[-3:]) if lines else ""
    return text[-_MESSAGE_CHARS:]
