"""`make demo` must keep working and keep explaining itself."""
from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_and_explains(tmp_path):
    env = dict(os.environ, PUMPCTL_HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pumpctl.demo"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "NEVER FOR HUMAN USE" in out
    assert "5000 steps" in out  # commanded exactly
    # The head moved 1.5 % more per step, and is within one step of the count at any moment (the
    # motor's batch may not have pulsed its last step yet: docs/persistence.md, issue 15).
    m = re.search(r"The head turned (\d+) steps and ([\d.]+) µL", out)
    assert m and int(m.group(1)) in (4999, 5000), out
    assert abs(float(m.group(2)) - int(m.group(1)) * 0.05075) < 0.06, out
    assert "What happened, in plain words" in out
    assert "The virtual bench is stopped" in out
