"""pumpctl's lab subcommands (cli_lab): accuracy on a real lockstep bench, watch --once, plots."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import bench as benchmod  # noqa: E402
from pumpctl import cli_lab  # noqa: E402
from pumpctl.errors import UsageError  # noqa: E402


def parser() -> argparse.ArgumentParser:
    """The same shape as cli.build_parser's `add` helper."""
    p = argparse.ArgumentParser(prog="pumpctl")
    sub = p.add_subparsers(dest="command")

    def add(parent: Any, name: str, fn: Any, help: str) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        return sp

    cli_lab.register(sub, add)
    return p


def run(argv: list[str], **extra: Any) -> Any:
    args = parser().parse_args(argv)
    for k, v in (("json", True), ("port", None), ("bench_dir", None), ("timeout", 5.0)):
        setattr(args, k, extra.get(k, v))
    return args.fn(args)


@pytest.fixture(scope="module")
def bench_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    mp = pytest.MonkeyPatch()
    mp.setenv("PUMPCTL_HOME", str(home))
    # True volume per step 3 % above the firmware's calibration.
    info = benchmod.start(home / "bench", lockstep=True, true_pl=51_500, nominal_pl=50_000)
    try:
        yield info.dir
    finally:
        benchmod.stop(info)
        mp.undo()


def test_accuracy_on_bench_3_percent_off(bench_dir: Path, tmp_path: Path) -> None:
    out = run(["accuracy", "--rate", "2400", "--duration", "62m", "--out", str(tmp_path / "acc")],
              bench_dir=str(bench_dir))
    d = out.data
    assert d["rate_ml_h"] == pytest.approx(0.1)
    assert d["analysis_s"] == [1860.0, 3720.0]  # a short run: its second half
    assert d["overall_error_pct"] == pytest.approx(3.0, abs=0.3)
    for t in d["trumpet"]:
        assert t["min_error_pct"] <= d["overall_error_pct"] + 0.3 <= t["max_error_pct"] + 0.6
    files = d["files"]
    for k in ("samples", "startup", "trumpet", "summary", "trumpet_png", "startup_png"):
        assert Path(files[k]).stat().st_size > 0, k
    rows = list(csv.reader(open(files["samples"])))
    assert rows[0] == ["t_s", "mass_mg"] and len(rows) == 1 + 125
    assert Path(files["trumpet_png"]).read_bytes()[:4] == b"\x89PNG"
    assert "Overall error" in out.text


def test_watch_once(bench_dir: Path) -> None:
    out = run(["watch", "--once"], bench_dir=str(bench_dir))
    assert out.data["status"]["state"] == "running"
    assert "outlet" in out.text and "RUNNING" in out.text


def test_plot_profile_and_reservoir(bench_dir: Path, tmp_path: Path) -> None:
    out = run(["plot", "profile", str(ROOT / "examples/programs/continuous.toml"), "--out", str(tmp_path / "p.png")])
    assert out.data["daily_total_ug"] == pytest.approx(500)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    out = run(["plot", "reservoir", "--out", str(tmp_path / "r.png")], bench_dir=str(bench_dir))
    assert out.data["ul_per_day"] == pytest.approx(2400)  # the accuracy test's program
    assert (tmp_path / "r.png").stat().st_size > 5000


@pytest.mark.parametrize("argv,msg", [
    (["accuracy", "--rate", "2400", "--duration", "30m"], "at least 62 min"),
    (["accuracy", "--rate", "2400", "--duration", "2h15s"], "whole number of 30 s"),
    (["accuracy", "--rate", "0"], "positive"),
    (["accuracy", "--rate", "2400", "--duration", "soon"], "cannot read duration"),
    (["accuracy", "--rate", "2400", "--temperature", "80"], "0 to 40"),
    (["watch", "--interval", "0"], "positive"),
    (["plot", "reservoir", "--out", "x.png", "--refill", "soon"], "not a date"),
])
def test_bad_input_refused(argv: list[str], msg: str) -> None:
    with pytest.raises(UsageError, match=msg):
        run(argv)
