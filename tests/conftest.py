"""Pytest glue: firmware tests (tests/firmware/mp_test_*.py) run on the real MicroPython
interpreter, one process per module, and show up as ordinary pytest items."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import micropython_cmd  # noqa: E402

# Unit tests get a roomy heap; tests that claim Pico fit pass -X heapsize themselves.
UNIT_HEAP = "1M"


def _run_mp(args: list[str], timeout: float = 600) -> str:
    cmd = micropython_cmd() + ["-X", "heapsize=" + UNIT_HEAP, str(ROOT / "tests/firmware/mprun.py")] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
    return proc.stdout + proc.stderr


def _is_mp(path: Path) -> bool:
    return path.suffix == ".py" and path.name.startswith("mp_test_")


def pytest_collect_file(parent, file_path: Path):
    # Files named on the command line go through the python plugin's makemodule hook instead.
    if _is_mp(file_path) and not parent.session.isinitpath(file_path):
        return MpFile.from_parent(parent, path=file_path)
    return None


def pytest_pycollect_makemodule(module_path: Path, parent):
    if _is_mp(module_path):
        return MpFile.from_parent(parent, path=module_path)
    return None


def pytest_ignore_collect(collection_path: Path, config):
    # Firmware-side helpers are MicroPython code, not pytest modules.
    if collection_path.name in ("mprun.py", "mptest.py"):
        return True
    return None


class MpFile(pytest.File):
    def collect(self):
        out = _run_mp(["--list", str(ROOT), self.path.stem])
        found = False
        for line in out.splitlines():
            if line.startswith("@@TEST "):
                info = json.loads(line[7:])
                item = MpItem.from_parent(self, name=info["name"])
                if info["reqs"]:
                    item.add_marker(pytest.mark.safety(*info["reqs"]))
                found = True
                yield item
        if not found:
            raise pytest.fail.Exception("could not list tests in %s on MicroPython:\n%s" % (self.path, out), pytrace=False)

    def results(self) -> dict:
        cached = getattr(self, "_results", None)
        if cached is None:
            out = _run_mp([str(ROOT), self.path.stem])
            cached = {}
            for line in out.splitlines():
                if line.startswith("@@RESULT "):
                    r = json.loads(line[9:])
                    cached[r["name"]] = r
            self._results = cached
            self._raw = out
        return cached


class MpFailure(Exception):
    pass


class MpItem(pytest.Item):
    def runtest(self):
        res = self.parent.results().get(self.name)
        if res is None:
            raise MpFailure("no result from MicroPython (crash?):\n" + self.parent._raw[-4000:])
        if not res["ok"]:
            raise MpFailure(res["err"])

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MpFailure):
            return "MicroPython: " + str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, 0, "mp:" + self.name


# The emulated Pico's files in two groups, one per xdist worker, each file's tests in order. The
# first builds the flashed board all Pico tests boot from; the second starts with the lab
# guide's part, which flashes a fresh board of its own, while the first is flashing. Balanced
# by the files' times (2026-12-03, tests/pico alone on 2 workers: 230 s and 227 s).
PICO_GROUPS = {
    "test_flash.py": ("pico-a", 0), "test_boot.py": ("pico-a", 1), "test_annunciation.py": ("pico-a", 2),
    "test_emulator.py": ("pico-a", 3), "test_web_pico.py": ("pico-a", 4), "test_button.py": ("pico-a", 5),
    "test_lab_guide_pico.py": ("pico-b", 0), "test_therapy.py": ("pico-b", 1), "test_soak.py": ("pico-b", 3),
}


def _group(nodeid: str) -> str:
    """The scheduling unit of a test: its file, or its emulated-Pico group."""
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/pico/"):
        return PICO_GROUPS.get(path.rsplit("/", 1)[-1], ("pico-a", 9))[0]
    return path


def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup` schedules by _group. pytest-xdist's own loadgroup renames each test's
    node id to carry its group, which pytest 9 no longer allows (the id is derived, not stored):
    every test was then scheduled alone, a file's tests ran on both workers and out of order.
    Asking for the group by node id needs no renaming."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    return FileGroupScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """For `make test`'s two pytest-xdist workers (--dist loadgroup, scheduled by _group above):
    each file stays on one worker (an mp_test file runs once, module fixtures are built once),
    and the emulated Pico's files go first, in two groups, beside the rest of the suite."""
    def order(item):
        path = str(Path(str(item.fspath)).relative_to(ROOT)).replace(os.sep, "/")
        if path.startswith("tests/pico/"):
            return 0, PICO_GROUPS.get(path.rsplit("/", 1)[-1], ("pico-a", 9))[1]
        return 1, 0
    # Pico first, interleaving the two groups' files so each worker starts on one; stable sort.
    items.sort(key=order)
