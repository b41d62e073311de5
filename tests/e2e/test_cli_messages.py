"""The programmer's words on the real firmware (issue 17): the console script as a student runs
it, on a lockstep virtual bench. Programming confirms or refuses; refusals quote the user's units
(minutes for an audio pause, the drug's µg for a bolus); a patient request refused because
another bolus runs says when that bolus ends; no input ends in a traceback."""
from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pumpctl import api
from pumpctl.errors import DeviceError

ROOT = Path(__file__).resolve().parents[2]
FLEX = ROOT / "examples" / "programs" / "flex-evening.toml"
PUMPCTL = Path(sys.executable).parent / "pumpctl"


def sh(home: Path, line: str, stdin: str = "") -> subprocess.CompletedProcess:
    """One shell line, `pumpctl` being the venv's console script (stdin a pipe, as in a script)."""
    env = dict(os.environ, PUMPCTL_HOME=str(home), PATH=f"{PUMPCTL.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    r = subprocess.run(["bash", "-c", line], input=stdin, capture_output=True, text=True, env=env, timeout=120)
    assert "Traceback" not in r.stderr + r.stdout, (line, r.stderr)
    return r


@pytest.fixture
def pump(bench, home):
    info = bench()
    with api.connect(bench_dir=info.dir) as p:
        yield p


@pytest.mark.safety("SR-024")
def test_programming_is_not_written_from_a_pipe_or_json_without_yes(pump, home):
    pump.time_sync()
    pump.refill(20_000, 20_000, 500)
    before = pump.program_show()["program"]
    r = sh(home, f"printf 'n\\n' | pumpctl program set {FLEX}")
    assert r.returncode == 1 and "not written" in r.stderr and "--yes" in r.stderr
    r = sh(home, f"pumpctl program set {FLEX} --json")
    assert r.returncode == 1 and json.loads(r.stdout)["error"]["code"] == "NOT_CONFIRMED"
    r = sh(home, "printf 'y\\n' | pumpctl program continuous 400 --concentration 500")
    assert r.returncode == 1  # a 'y' from a pipe is no confirmation either: nobody saw the comparison
    assert pump.program_show()["program"] == before, "nothing was written"
    r = sh(home, f"pumpctl program set {FLEX} --yes")
    assert r.returncode == 0 and "accepted" in r.stdout
    assert pump.program_show()["program"]["mode"] == "flex"


def test_refusals_quote_minutes_and_the_drugs_microgram_limit(pump, home):
    pump.program_continuous(500, 2000, confirm=True)
    with pytest.raises(DeviceError) as e:
        pump.pause(3_600_000)  # the firmware's own sentence, for scripts that skip the CLI's check
    assert e.value.code == "RANGE" and "15 min" in e.value.message and "60 min" in e.value.message
    assert "3600000" not in e.value.message
    with pytest.raises(DeviceError) as e:
        pump.bolus(-5, 10)
    assert "1 to 200 µg" in e.value.message and "baclofen" in e.value.message and "600" not in e.value.message
    for line, words in (("pumpctl alarms pause 1h", "1 s to 15 min"), ("pumpctl bolus -5", "1 to 200 µg"),
                        ("pumpctl bolus 10 --duration 0m", "1 to 1440 min"),
                        ("pumpctl history --days 0", "--days must be 1 to 104"),
                        ("pumpctl time sync --at tomorrow", "2026-01-05T09:00")):
        r = sh(home, line)
        assert r.returncode == 1 and words in r.stderr, (line, r.stderr)
        r = sh(home, line + " --json")
        assert r.returncode == 1 and json.loads(r.stdout)["error"]["message"], line


def test_a_patient_request_during_another_bolus_says_when_it_ends(pump, home):
    pump.time_sync()
    pump.refill(20_000, 20_000, 500)
    r = sh(home, f"pumpctl program set {FLEX} --yes")
    assert r.returncode == 0
    pump.bolus(20, 10)
    r = sh(home, "pumpctl patient-bolus")
    assert r.returncode == 1 and "another bolus is running" in r.stderr
    # The bolus ends in 10 min; the lockout after programming lasts longer, and the pump says so.
    assert "20 µg left, about 10 min" in r.stderr and "next allowed in 3 h 00 min" in r.stderr, r.stderr
    pump.bench_advance(181 * 60_000)  # past the lockout after programming
    pump.bolus(20, 30)
    r = sh(home, "pumpctl patient-bolus")
    assert r.returncode == 1 and "20 µg left, ends in about 30 min): ask again then" in r.stderr, r.stderr
    pump.bench_advance(31 * 60_000)
    r = sh(home, "pumpctl patient-bolus")
    assert r.returncode == 0 and "Patient bolus started: 20 µg over 5 min" in r.stdout, r.stdout + r.stderr


def test_plain_words_show_auth_battery_dates_and_whole_log_records(pump, home):
    pump.time_sync()
    pump.program_continuous(500, 2000, confirm=True)
    r = sh(home, "pumpctl identify")
    assert "Auth:" in r.stdout and "signed" in r.stdout
    r = sh(home, "pumpctl status")
    assert re.search(r"Battery: [\d.]+ V, good", r.stdout) and "Low reservoir (2000 µL) on" in r.stdout and "Refill by" in r.stdout
    pump.bench_fault("battery", mv=3200)
    pump.bench_advance(20 * 60_000)
    r = sh(home, "pumpctl alarms pause 5m && pumpctl alarms")
    assert r.returncode == 0 and "BATTERY_ERI" in r.stdout and "paused until" in r.stdout and "pump time" in r.stdout
    assert "uptime s" not in r.stdout
    r = sh(home, "pumpctl log")
    assert "\\u00b5" not in r.stdout
    r = sh(home, "set -o pipefail; pumpctl log --since 0 | head -1")
    assert r.returncode == 0, r.stderr


def test_a_calibration_far_from_the_last_is_refused_in_nl_per_step(pump):
    with pytest.raises(DeviceError) as e:
        pump.calibrate(90_000)
    assert e.value.code == "FAR_FROM_LAST"
    assert "90.000 nL per step" in e.value.message and "50.000 nL per step" in e.value.message, e.value.message
    assert "pL" not in e.value.message

