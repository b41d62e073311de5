"""The host's list of alarm codes (pumpctl/alarm_codes.py) is the firmware's catalogue."""
from __future__ import annotations

import ast
from pathlib import Path

from pumpctl.alarm_codes import ALARM_CODES

ROOT = Path(__file__).resolve().parents[2]


def test_the_hosts_alarm_codes_are_the_firmware_catalogues() -> None:
    tree = ast.parse((ROOT / "firmware/core/alarm_catalogue.py").read_text())
    rows = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "CATALOGUE" for t in n.targets))
    assert isinstance(rows, ast.Tuple)
    codes = {r.elts[0].value for r in rows.elts if isinstance(r, ast.Tuple)}
    assert len(codes) >= 16
    assert set(ALARM_CODES) == codes


def test_pico_wait_refuses_an_unknown_alarm_code_in_one_sentence(capsys, tmp_path) -> None:
    from pumpctl import cli
    rc = cli.main(["pico", "wait", "16m", "--until-alarm", "BATTERY_LOW", "--dir", str(tmp_path)])
    out = capsys.readouterr()
    assert rc != 0
    text = out.out + out.err
    assert "BATTERY_LOW" in text and "BATTERY_EOS" in text and "Traceback" not in text, text
    rc = cli.main(["--json", "pico", "wait", "16m", "--until-alarm", "nope", "--dir", str(tmp_path)])
    out = capsys.readouterr()
    assert rc != 0 and '"error"' in out.out and "Traceback" not in out.out + out.err, out
