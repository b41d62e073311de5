"""The programmer's words (issue 17): programming confirms on a terminal and refuses elsewhere
without --yes, in the CLI and in the API; a reply from the retry cache says so; a patient bolus
has started (not been delivered); errors in the user's units, checked before anything is sent;
argument errors as a --json error object; alarms, status, the log and accuracy figures as a
person reads them. No pump here: a fake link records what would have been sent."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

from pumpctl import api, cli, cli_pump, render
from pumpctl.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
FLEX = ROOT / "examples" / "programs" / "flex-evening.toml"
OLD = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "continuous", "rate_ug_per_day": 400}
BACLOFEN = {"name": "baclofen", "concentrations_ug_per_ml": [50, 500, 1000, 2000], "max24_ug": 1500,
            "bolus": {"soft": 100, "hard": 200, "override": "bolus_dose"}}


class FakeLink:
    """Answers like a pump would; `replies` overrides a command's answer."""

    def __init__(self, **replies: Any) -> None:
        self.sent: list[str] = []
        self.replies = replies

    def close(self) -> None:
        pass

    def request(self, cmd: str, args: Any = None, signed: Any = None) -> dict:
        self.sent.append(cmd)
        if cmd in self.replies:
            return dict(self.replies[cmd])
        if cmd == "status":
            return {"reservoir_ul": 20_000, "wall": [9500, 9 * 3_600_000]}
        if cmd == "program_check":
            return {"old": OLD, "new": args["program"]}
        if cmd == "program_set":
            return {"old": OLD, "new": args["program"], "overrides_used": []}
        if cmd == "program_show":
            return {"program": OLD, "state": "running"}
        if cmd == "drugs":
            return {"drugs": [BACLOFEN]}
        return {}


class Stdin(io.StringIO):
    def __init__(self, text: str, tty: bool) -> None:
        super().__init__(text)
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def link(monkeypatch) -> FakeLink:
    fake = FakeLink()
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(fake))  # type: ignore[arg-type]
    return fake


def _run(capsys, argv: list[str]) -> tuple[int, str, str]:
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


# ---- 1. programming confirms ---------------------------------------------------------------------
@pytest.mark.safety("SR-024")
@pytest.mark.parametrize("argv", [["program", "set", str(FLEX)],
                                  ["program", "continuous", "400", "--concentration", "500"]])
def test_a_no_piped_in_never_writes(link, monkeypatch, capsys, argv):
    """`printf 'n\\n' | pumpctl program set flex.toml` wrote the program (issue 17)."""
    monkeypatch.setattr("sys.stdin", Stdin("n\n", tty=False))
    rc, out, err = _run(capsys, argv)
    assert rc == 1 and "program_set" not in link.sent
    assert "not written" in err and "--yes" in err and "not a terminal" in err
    assert err.count("\n") == 1, err  # one sentence


@pytest.mark.safety("SR-024")
def test_json_without_yes_is_an_error_object_and_writes_nothing(link, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Stdin("y\n", tty=True))
    rc, out, err = _run(capsys, ["program", "set", str(FLEX), "--json"])
    assert rc == 1 and "program_set" not in link.sent
    e = json.loads(out)["error"]
    assert e["code"] == "NOT_CONFIRMED" and "--yes" in e["message"]


@pytest.mark.safety("SR-024")
def test_a_terminal_asks_and_a_no_or_end_of_input_writes_nothing(link, monkeypatch, capsys):
    for answer in ("n\n", ""):
        monkeypatch.setattr("sys.stdin", Stdin(answer, tty=True))
        rc, out, err = _run(capsys, ["program", "continuous", "400", "--concentration", "500"])
        assert rc == 0 and "Nothing was written." in out and "current" in out
    assert "program_set" not in link.sent
    monkeypatch.setattr("sys.stdin", Stdin("y\n", tty=True))
    rc, out, _ = _run(capsys, ["program", "continuous", "400", "--concentration", "500"])
    assert rc == 0 and link.sent[-1] == "program_set" and "accepted" in out


@pytest.mark.safety("SR-024")
def test_yes_writes_anywhere(link, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", Stdin("", tty=False))
    rc, out, _ = _run(capsys, ["--json", "program", "continuous", "400", "--concentration", "500", "--yes"])
    assert rc == 0 and json.loads(out)["written"] is True and link.sent[-1] == "program_set"


@pytest.mark.safety("SR-024")
def test_the_api_does_not_write_without_an_explicit_confirmation():
    prog = dict(OLD, rate_ug_per_day=450)
    for confirm in (None, False):
        fake = FakeLink()
        with pytest.raises(UsageError, match="confirm"):
            api.Pump(fake).program_set(prog, confirm)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="confirm"):
            api.Pump(fake).program_continuous(450, 500, confirm=confirm)  # type: ignore[arg-type]
        with pytest.raises(UsageError):
            api.Pump(fake).program_set(prog)
        assert fake.sent == [], "nothing is even asked before the confirmation is checked"
    fake = FakeLink()
    assert api.Pump(fake).program_set(prog, lambda cmp: False)["written"] is False
    assert "program_set" not in fake.sent
    assert api.Pump(fake).program_set(prog, confirm=True)["written"] is True
    assert api.Pump(fake).program_continuous(450, 500, confirm=lambda cmp: True)["written"] is True
    assert fake.sent.count("program_set") == 2


# ---- 2. the retry cache --------------------------------------------------------------------------
def test_a_reply_from_the_retry_cache_says_nothing_ran_again(monkeypatch, capsys):
    fake = FakeLink(stop={"state": "stopped", "cached": True})
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(fake))  # type: ignore[arg-type]
    rc, out, _ = _run(capsys, ["stop"])
    assert rc == 0
    first = out.splitlines()[0]
    assert first.startswith("ANSWERED FROM THE RETRY CACHE") and "nothing ran again" in first
    rc, out, _ = _run(capsys, ["--json", "stop"])
    assert json.loads(out)["cached"] is True
    fake.replies["stop"] = {"state": "stopped"}
    rc, out, _ = _run(capsys, ["stop"])
    assert "RETRY CACHE" not in out


# ---- 3. a patient bolus starts -------------------------------------------------------------------
def test_a_patient_bolus_is_said_to_have_started_with_its_dose(monkeypatch, capsys):
    fake = FakeLink(patient_bolus={"outcome": "delivered", "detail": "patient bolus 20 µg over 5 min (1 of 4 in 24 h)"})
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(fake))  # type: ignore[arg-type]
    rc, out, _ = _run(capsys, ["patient-bolus"])
    assert rc == 0 and "started" in out and "20 µg over 5 min" in out and "delivered:" not in out


# ---- 4. errors in the user's units, before anything is sent ----------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["alarms", "pause", "1h"], ["1 s to 15 min", "60 min"]),
    (["alarms", "pause", "0s"], ["1 s to 15 min"]),
    (["bolus", "10", "--duration", "0m"], ["1 to 1440 min", "0m"]),
    (["bolus", "10", "--duration", "90s"], ["whole minutes"]),
    (["history", "--days", "0"], ["--days must be 1 to 104", "not 0"]),
    (["time", "sync", "--at", "tomorrow"], ["2026-01-05T09:00", "'tomorrow'"]),
])
def test_bad_values_are_refused_in_the_users_units_before_sending(link, capsys, argv, words):
    rc, out, err = _run(capsys, argv)
    assert rc == 1 and err.startswith("pumpctl: "), err
    for w in words:
        assert w in err, (w, err)
    assert "ms" not in err.replace("forms", "") and "No history yet" not in out
    assert link.sent == []
    rc, out, _ = _run(capsys, argv + ["--json"])
    assert rc == 1 and json.loads(out)["error"]["code"] == "USAGE"


@pytest.mark.parametrize("dose", ["-5", "0", "700"])
def test_a_bolus_out_of_range_quotes_the_drugs_limit_not_the_protocol_range(link, capsys, dose):
    rc, out, err = _run(capsys, ["bolus", dose])
    assert rc == 1 and "1 to 200 µg" in err and "baclofen" in err and "600" not in err, err
    assert f"not {dose} µg" in err and "bolus" not in link.sent


@pytest.mark.parametrize("argv, words", [
    (["bolus", "abc"], "must be a whole number of µg, not 'abc'"),
    (["program", "continuous", "lots", "--concentration", "500"], "whole number of µg/day"),
    (["settings", "--low-reservoir-ul", "2mL"], "whole number of µL"),
    (["log", "--since", "-5"], "must be 0 or more"),
])
def test_a_value_that_is_no_number_is_refused_in_its_unit(capsys, argv, words):
    rc, out, err = _run(capsys, argv)
    assert rc == 2 and words in err
    rc, out, err = _run(capsys, argv + ["--json"])
    assert rc == 2 and words in json.loads(out)["error"]["message"]


# ---- 6. argument errors --------------------------------------------------------------------------
def test_argument_errors_with_json_are_an_error_object(capsys):
    for argv in (["--json", "bolus"], ["bolus", "abc", "--json"], ["--json", "nosuchcommand"], ["--json"]):
        rc, out, err = _run(capsys, argv)
        assert rc == 2, argv
        e = json.loads(out)["error"]
        assert e["code"] == "USAGE" and e["message"] and "usage:" not in out, argv
    rc, out, err = _run(capsys, ["bolus"])
    assert rc == 2 and "usage:" in err and "required" in err and out == ""


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`pumpctl log | head`: the reader leaves early; no BrokenPipeError traceback."""
    script = (
        "import os, sys\n"
        "from pumpctl import cli\n"
        "from pumpctl.output import Out\n"
        "cli.cmd_identify = lambda args: Out({}, 'x' * 50 + '\\n' + 'y' * 200_000)\n"
        "r, w = os.pipe(); os.close(r); os.dup2(w, 1)\n"
        "sys.exit(cli.main(['identify']))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(ROOT / "host_tools"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


# ---- 5. what people read ---------------------------------------------------------------------------
def test_alarms_show_the_pumps_wall_clock_and_when_audio_is_paused():
    d = {"active": [{"code": "BATTERY_ERI", "priority": "medium", "since": 120,
                     "since_wall": [2026, 1, 5, 9, 2, 0], "state": "acknowledged"},
                    {"code": "CLOCK_NOT_SET", "priority": "low", "since": 3, "state": "active"}],
         "audio_paused_ms": 300_000}
    text = render.alarms_text(d, [9501, 9 * 3_600_000 + 2 * 60_000])
    assert "2026-01-05 09:02:00" in text and "uptime 3 s" in text
    assert "paused until 2026-01-05 09:07:00 pump time" in text and "5 min" in text
    assert "since (uptime s)" not in text
    assert "not paused" in render.alarms_text({"active": d["active"], "audio_paused_ms": 0})
    assert "paused" in render.alarms_text({"active": [], "audio_paused_ms": 60_000}, [9501, 0])


def test_status_shows_battery_and_the_low_reservoir_and_refill_by_dates():
    st = {"state": "running", "drug": "baclofen", "rate_ug_per_day": 500, "concentration_ug_per_ml": 2000,
          "mode": "continuous", "reservoir_ul": 19750, "reservoir_model_ml": 20, "delivered_ul": 250,
          "delivered_ug": 500, "delivered_steps": 5000, "low_reservoir_ul": 2000, "uptime_s": 86400,
          "firmware_version": "0.1.0", "wall": [9502, 32_400_000], "refill_day": None,
          "forecast": {"days_to_low": 71, "low_day": 9573, "days_to_empty": 79, "empty_day": 9581,
                       "daily_ug_worst": 500, "daily_ul_worst": 250},
          "alarms": [{"code": "BATTERY_ERI", "priority": "medium", "state": "active"}]}
    text = render.status_text(st)
    assert "Low reservoir (2000 µL) on 2026-03-18, in 71 days" in text
    assert "Refill by 2026-03-18" in text and "empty on 2026-03-26" in text
    assert "Battery: elective replacement" in text
    st.update(alarms=[], refill_day=9570, battery_mv=3650)
    text = render.status_text(st)
    assert "Refill by 2026-03-15" in text and "Battery: 3.65 V, good" in text


def test_identify_in_words_shows_auth():
    d = {"device": "bench-itb-pump", "device_id": "SIM-0001", "board": "sim", "firmware_version": "0.1.0",
         "protocol": 1, "banner": "B", "auth": {"provisioned": True, "auth_state": "ok",
                                                "counters": {"clinician": 3, "patient": 0},
                                                "failures": {"since_boot": 0}}}
    text = render.identify_text(d)
    assert "Auth:" in text and "signed" in text and "SIM-0001" in text and "clinician 3" in text


def test_the_event_log_table_keeps_whole_data_in_microgram():
    data = {"outcome": "refused_lockout", "why": "locked out: next patient bolus allowed in 2 h 55 min",
            "dose_ug": 20, "unit": "µg", "src": "programmer"}
    text = render.log_table([{"seq": 7, "wall": [9501, 0], "type": "patient_bolus", "data": data}])
    assert "2 h 55 min" in text and "programmer" in text and "µg" in text and "\\u00b5" not in text
    assert "\\u00b5" not in render.log_csv([{"seq": 7, "wall": None, "uptime": 1, "type": "x", "data": data}])


def test_no_negative_zero_in_figures():
    assert f"{render.nonneg_zero(-0.0004):+.2f}" == "+0.00"
    assert f"{render.nonneg_zero(-0.02):+.2f}" == "-0.02"
    d = {"runs": [], "density_g_per_ml": 0.99821, "steps": 10000, "pl_per_step": 50_000,
         "was_pl_per_step": 50_000, "change_percent": -0.0001}
    assert "+0.00 %" in render.calibration_text(d, 20.0) and "-0.00" not in render.calibration_text(d, 20.0)


def test_no_negative_zero_in_accuracy_files(tmp_path):
    from pumpctl import accuracy
    tiny = -0.00001
    res = accuracy.AccuracyResult(rate_ml_h=0.3, density_g_ml=0.998, sample_s=30.0, analysis_start_s=3600.0,
                                  analysis_end_s=7200.0, flows=[accuracy.FlowPoint(60.0, 0.3, tiny)], startup=[],
                                  overall_error_pct=tiny, mean_flow_ml_h=0.3,
                                  trumpet=[accuracy.TrumpetPoint(2, tiny, tiny, 10)])
    paths = accuracy.write_csv(res, tmp_path)
    for f in paths.values():
        text = Path(f).read_text()
        assert "-0.0" not in text and not any(c.strip() == "-0" for c in text.replace("\n", ",").split(",")), (f, text)


def test_bench_show_in_words_has_the_line_pressure_and_the_water_held():
    d = {"outlet_nl": 1000, "reservoir_true_nl": 19_000_000, "head_steps": 20, "true_pl_per_step": 50_000,
         "dry_steps": 0, "battery_mv": 3700, "pressure_kpa": 87, "stored_nl": 12_345, "outlet_blocked": True,
         "stalled_steps": 4, "mode": "lockstep", "clock": {"uptime_s": 5, "wall": None}}
    text = render.bench_show_text(d)
    assert "87 kPa" in text and "12.345 µL" in text and "BLOCKED" in text


def test_watch_shows_each_alarms_since_on_the_pumps_clock():
    from pumpctl import watch
    st = {"state": "running", "alarms": [{"code": "OCCLUSION", "priority": "high", "since": 5,
                                          "since_wall": [2026, 1, 5, 9, 30, 0], "state": "active"},
                                         {"code": "CLOCK_NOT_SET", "priority": "low", "since": 7, "state": "active"}]}
    s = watch.render(st, None, colour=False)
    assert "since 2026-01-05 09:30:00" in s and "since uptime 7 s" in s
