"""Which bench pumpctl talks to when none is named (issue 17), `bench list`'s registry, and the
volume a person gives `bench fill` — without starting a bench."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "host_tools"))
from pumpctl import bench as benchmod  # noqa: E402
from pumpctl import benchctl, paths  # noqa: E402
from pumpctl.errors import UsageError  # noqa: E402


def b(d: str, started: float, started_in: str, alive: bool = True) -> dict:
    return {"dir": d, "pid": 1, "port": "p", "started": started, "started_in": started_in, "alive": alive}


def test_a_bench_started_here_or_above_wins_over_the_last_one_started_elsewhere() -> None:
    home = Path("/home/s")
    benches = [b("/tmp/b2", 3, "/elsewhere"),  # newest first, as list_benches gives them
               b("/home/s/.config/pumpctl/bench", 2, "/home/s"),
               b("/tmp/b0", 1, "/home/s/lab")]
    assert benchmod.choose(benches, home / "lab" / "part4", "/tmp/b2") == "/tmp/b0"  # the nearest above
    assert benchmod.choose(benches, home / "notes", "/tmp/b2") == "/home/s/.config/pumpctl/bench"
    assert benchmod.choose(benches, Path("/srv"), "/tmp/b2") == "/tmp/b2"  # none here: the last started
    # Standing in a bench's own folder names it.
    assert benchmod.choose(benches, Path("/tmp/b2"), "/tmp/b0") == "/tmp/b2"
    # A dead bench is never chosen; the pointer's bench if alive, else the newest alive.
    dead = [dict(x, alive=x["dir"] != "/tmp/b0") for x in benches]
    assert benchmod.choose(dead, home / "lab", "/tmp/b0") == "/home/s/.config/pumpctl/bench"
    assert benchmod.choose([b("/x", 1, "/a", alive=False)], Path("/b"), None) is None


def test_the_registry_lists_started_benches_and_forgets_removed_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))
    d = tmp_path / "bench"
    d.mkdir()
    info = benchmod.BenchInfo({"dir": str(d), "port": "/dev/pts/9", "control": str(d / "control.sock"),
                               "pid": os.getpid(), "mode": "lockstep", "started": 5.0, "started_in": str(tmp_path)})
    (d / "bench.json").write_text(json.dumps(info.d))
    benchmod.register(info)
    got = benchmod.list_benches()
    assert [(x["dir"], x["pid"], x["alive"], x["started_in"]) for x in got] == [(str(d), os.getpid(), True, str(tmp_path))]
    assert oct(paths.benches_dir().stat().st_mode & 0o777) == "0o700"
    (d / "bench.json").unlink()  # stopped by hand: it leaves the list
    assert benchmod.list_benches() == [] and list(paths.benches_dir().iterdir()) == []


@pytest.mark.parametrize("text, ul", [("20mL", 20_000), ("18000uL", 18_000), ("18000µL", 18_000),
                                      ("2.5 mL", 2_500), ("0mL", 0), ("20ML", 20_000)])
def test_fill_volumes_as_a_person_writes_them(text: str, ul: int) -> None:
    assert benchctl.parse_volume_ul(text) == ul


@pytest.mark.parametrize("text, words", [("20", "with its unit"), ("mL", "with its unit"), ("-5mL", "with its unit"),
                                         ("1.0005mL", "whole number of µL"), ("", "with its unit")])
def test_bad_fill_volumes_are_one_sentence(text: str, words: str) -> None:
    with pytest.raises(UsageError) as e:
        benchctl.parse_volume_ul(text)
    assert words in str(e.value)
