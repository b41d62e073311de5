"""procs.claim_dir: the folder a bench or an emulated Pico starts in."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "host_tools"))
from pumpctl import procs  # noqa: E402


class Refused(Exception):
    pass


def _info(d: Path, pid: int) -> None:
    (d / "x.json").write_text(json.dumps({"dir": str(d), "port": "p", "control": "c", "pid": pid}))


def test_claim_makes_a_private_folder_and_names_its_socket(tmp_path: Path) -> None:
    d = tmp_path / "new"
    assert procs.claim_dir(d, "x.json", Refused, "a thing") == str(d / "control.sock")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_claim_refuses_a_folder_where_one_runs(tmp_path: Path) -> None:
    _info(tmp_path, os.getpid())
    with pytest.raises(Refused, match=rf"a thing is already running in .* \(pid {os.getpid()}\); stop it first"):
        procs.claim_dir(tmp_path, "x.json", Refused, "a thing")


def test_claim_takes_over_from_one_that_ended(tmp_path: Path) -> None:
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    _info(tmp_path, ended.pid)
    assert procs.claim_dir(tmp_path, "x.json", Refused, "a thing") == str(tmp_path / "control.sock")


def test_claim_refuses_a_socket_path_too_long(tmp_path: Path) -> None:
    d = tmp_path / ("d" * 100)
    with pytest.raises(Refused, match="too long for a unix socket"):
        procs.claim_dir(d, "x.json", Refused, "a thing")
