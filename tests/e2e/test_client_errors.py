"""The legitimate client against bad files, values and keystore states (issue 16, item 7): one
sentence and a non-zero exit, an error object with --json, never a traceback; and the largest
program the docs promise goes through. Run through the installed console script, as a user."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

CONC = 2000
HEAD = f'drug = "baclofen"\nconcentration_ug_per_ml = {CONC}\n'


def _fails_cleanly(pumpctl, *args: str) -> tuple[str, dict]:
    """The sentence a person sees and the error object --json gives; asserts no traceback."""
    people = pumpctl.script(*args)
    assert people.returncode != 0, people.stdout
    assert "Traceback" not in people.stderr + people.stdout, people.stderr
    text = (people.stderr + people.stdout).strip()
    assert text and len(text.splitlines()) <= 2, text
    js = pumpctl.script("--json", *args)
    assert js.returncode != 0 and "Traceback" not in js.stderr + js.stdout, js.stderr
    err = json.loads(js.stdout)["error"]
    assert set(err) >= {"code", "message"}, err
    return text, err


def _program(tmp_path: Path, name: str, text: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


@pytest.mark.safety("SR-023")
def test_bad_program_files_get_one_sentence_and_change_nothing(bench, pumpctl, tmp_path):
    bench()
    pumpctl("program", "continuous", "480", "--concentration", str(CONC), "--yes")
    before = pumpctl("program", "show")
    cases = {
        "a TOML date": (HEAD + 'mode = "continuous"\nrate_ug_per_day = 2026-01-01\n', "rate_ug_per_day is a date"),
        "a TOML time": (HEAD + 'mode = "flex"\n[[steps]]\nstart = 00:00:00\nrate_ug_per_day = 400\n', "steps[0].start is a time of day"),
        "a datetime": (HEAD + 'mode = "continuous"\nrate_ug_per_day = 2026-01-01T08:00:00\n', "is a date and time"),
        "inf": (HEAD + 'mode = "continuous"\nrate_ug_per_day = inf\n', "rate_ug_per_day is inf, not a finite number"),
        "nan": (HEAD + 'mode = "continuous"\nrate_ug_per_day = nan\n', "rate_ug_per_day is nan, not a finite number"),
        "not UTF-8": ((HEAD + 'mode = "continuous"\n# d\xe9j\xe0\nrate_ug_per_day = 400\n').encode("latin-1"), "not UTF-8"),
    }
    for i, (what, (text, says)) in enumerate(cases.items()):
        path = _program(tmp_path, f"bad{i}.toml", text)
        sentence, err = _fails_cleanly(pumpctl, "program", "set", path, "--yes")
        assert says in sentence and says in err["message"], (what, sentence)
    assert pumpctl("program", "show") == before


def test_non_finite_numbers_are_refused_by_the_api_before_sending(bench, pumpctl):
    from pumpctl.frames import NotFinite
    from pumpctl.link import Link
    info = bench()
    seq0 = pumpctl("status")["refusals_seq"]
    with Link(info.port) as link:
        assert link.enable_auth("SIM-0001")
        for value in (float("inf"), float("nan"), float("-inf")):
            prog = {"drug": "baclofen", "concentration_ug_per_ml": CONC, "mode": "continuous", "rate_ug_per_day": value}
            with pytest.raises(NotFinite) as e:
                link.request("program_check", {"program": prog})
            assert f"a.program.rate_ug_per_day is {value!r}, not a finite number" in str(e.value), str(e.value)
            assert e.value.code == "BAD_VALUE"
    assert pumpctl("status")["refusals_seq"] == seq0  # nothing reached the pump (no BAD_JSON)


def test_an_exhausted_keystore_counter_is_one_sentence(bench, pumpctl, home):
    bench()
    path = next((home / "keys").glob("*.json"))
    d = json.loads(path.read_text())
    d["counters"]["clinician"] = 2**30 - 1
    path.write_text(json.dumps(d))
    path.chmod(0o600)
    sentence, err = _fails_cleanly(pumpctl, "stop")
    assert "exhausted" in sentence and "re-provision" in sentence, sentence
    assert err["code"] == "KEYSTORE"


def test_a_48_step_half_hourly_program_goes_through(bench, pumpctl, tmp_path):
    bench()
    steps = "".join(f'\n[[steps]]\nstart = "{h // 2:02d}:{30 * (h % 2):02d}"\nrate_ug_per_day = {300 + 4 * h}\n'
                    for h in range(48))
    text = (HEAD + 'mode = "flex"\n'
            + "\n[patient_bolus]\ndose_ug = 20\nduration_min = 5\nmax_per_24h = 4\nlockout_min = 30\n"
            + "\n[[periodic_boluses]]\ntime = \"08:00\"\ndose_ug = 25\nduration_min = 10\n" + steps)
    path = _program(tmp_path, "half-hourly.toml", text)
    pumpctl("program", "set", path, "--yes")
    shown = pumpctl("program", "show")["program"]
    assert len(shown["steps"]) == 48 and shown["steps"][47]["start"] == "23:30", shown["steps"][-1]
