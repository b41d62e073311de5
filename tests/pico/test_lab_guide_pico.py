"""The lab guide's emulated-Pico part (docs/lab-guide.md, Part 9) runs as a student types it:
a fresh emulated Pico, flashed, calibrated, delivering, a power cut, its battery run down."""
from __future__ import annotations

import re
from pathlib import Path

from e2e.test_lab_guide import GUIDE, PICO_PART, run_commands, sh_blocks


def test_the_guides_pico_part_runs_as_written(tmp_path: Path) -> None:
    cmds = sh_blocks(GUIDE.read_text(), PICO_PART)
    assert cmds[0].text.startswith("pumpctl pico start") and cmds[-1].text == "pumpctl pico stop"
    _, done = run_commands(cmds, tmp_path, timeout=180)
    out = {c.text: r.stdout + r.stderr for c, r in done}
    assert "UNCALIBRATED" in out["pumpctl --pico program continuous 1000 --concentration 1000 --drug water --yes   # expect failure"]
    pins = [r.stdout for c, r in done if c.text == "pumpctl pico pins"]
    step = int(re.search(r"STEP\s+GP2\s+level \d\s+rising edges (\d+)", pins[0]).group(1))
    assert step > 0, pins[0]
    assert re.search(r"LED_RED\s+GP14\s+level \d\s+rising edges [1-9]", pins[1]), pins[1]
    assert "BATTERY_EOS" in out["pumpctl --pico alarms"]
    log = out["pumpctl --pico log"]
    assert "under_delivery" in log and "power_on" in log, log
    # With the clock put right before the cut, the outage is measured once it is set again.
    measured = [ln for ln in log.splitlines() if "under_delivery" in ln and '"measured": "when the clock' in ln]
    assert measured and '"caught_up": false' in measured[0], log
