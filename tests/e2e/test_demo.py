"""`make demo` must keep working and keep explaining itself."""
from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_and_explains(tmp_path):
    env = dict(os.environ, PUMPCTL_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pumpctl.demo"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "NEVER FOR HUMAN USE" in out
    assert "5000 steps" in out and "253.8 µL" in out  # commanded exactly; the head moved 1.5 % more
    assert "What happened, in plain words" in out
    assert "The virtual bench is stopped" in out
