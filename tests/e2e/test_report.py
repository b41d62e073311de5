"""`pumpctl report` and `pumpctl bolus-usage` end to end: on a lockstep bench after a program,
a clinician bolus and a patient bolus, the report names them, is dated in the pump's time and
has its plots beside it."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from pumpctl import wallclock

ROOT = Path(__file__).resolve().parents[2]


def test_report_after_a_program_and_boluses(bench, pumpctl, tmp_path):
    bench()
    pumpctl("program", "set", str(ROOT / "examples/programs/flex-evening.toml"), "--yes")
    pumpctl("bench", "advance", "3h")
    pumpctl("bolus", "50", "--duration", "10m")
    pumpctl("bench", "advance", "1h")
    pumpctl("patient-bolus")
    pumpctl("patient-bolus", ok=False)  # inside the lockout
    pumpctl("bench", "advance", "2h")
    wall = pumpctl("status")["wall"]

    use = pumpctl("bolus-usage", "--days", "2")
    assert use["source"] == "pump" and use["totals"]["attempts"] == 2
    assert use["totals"]["delivered"] == 1 and use["totals"]["lockout"] == 1

    out = tmp_path / "report"
    res = pumpctl("report", "--out", str(out))
    assert set(res) == {"html", "md", "plots"}
    html = Path(res["html"]).read_text(encoding="utf-8")
    md = Path(res["md"]).read_text(encoding="utf-8")
    # the program, its change and the boluses
    assert "baclofen 500 µg/mL, mode flex" in html and "from 18:00: 400 µg/day" in html
    assert "program written: baclofen 500 µg/mL, flex" in html
    assert "clinician bolus 50 µg over 10 min: started" in html
    assert "patient bolus (programmer): delivered" in html and "refused_lockout" in html
    # titled with the bench, dated in the pump's time
    assert "virtual bench in" in html and "never for human use" in html.lower()
    now = wallclock.from_pump(wall)
    assert any(f"Dated {(now - dt.timedelta(minutes=m)):%Y-%m-%d %H:%M} pump time (UTC)" in html for m in (0, 1))
    assert "clinician bolus 50 µg" in md
    names = sorted(Path(p).name for p in res["plots"])
    assert names == ["history.png", "reservoir.png", "usage.png"]
    for n in names:
        assert (out / n).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f'src="{n}"' in html
