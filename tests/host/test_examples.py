"""The example scripts (examples/*.py) run as written on private lockstep benches."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(script: str, *args: str, cwd: Path) -> str:
    p = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                       timeout=300, cwd=str(cwd))
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def test_titration(tmp_path: Path) -> None:
    out = run("titration.py", "--start", "100", "--step", "100", "--target", "200", "--out", "t.png", cwd=tmp_path)
    lines = [line.split() for line in out.splitlines() if line[:3].strip().isdigit()]
    assert [(r[0], r[1], r[2]) for r in lines] == [("1", "100", "100"), ("2", "200", "200")]
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"


def test_accuracy_experiment(tmp_path: Path) -> None:
    out = run("accuracy_experiment.py", "--rates", "2400", "--out", "acc", cwd=tmp_path)
    row = next(line for line in out.splitlines() if line.strip().startswith("2400"))
    assert abs(float(row.split()[1]) - 3.0) < 0.3
    assert (tmp_path / "acc/rate-2400/trumpet.png").stat().st_size > 5000


def test_fault_demo_quick(tmp_path: Path) -> None:
    # The full demo (reservoir run-down with alarms sounding) takes about a minute in lockstep:
    # run it by hand with `.venv/bin/python examples/fault_demo.py`.
    out = run("fault_demo.py", "--quick", cwd=tmp_path)
    assert "refused [HARD_LIMIT]" in out
    assert "program now: None" in out
