"""pumpctl.report and `pumpctl report`: the session report built offline from a fake pump: the
files exist, the HTML has every section, the pump's date (not this computer's), its program
and boluses, its PNG plots beside it, and text from the pump is escaped."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "host_tools"))

from pumpctl import accuracy, cli_report, plots, report  # noqa: E402
from pumpctl.cli import main as cli_main  # noqa: E402
from pumpctl.errors import DeviceError, UsageError  # noqa: E402

PNG_SIG = b"\x89PNG\r\n\x1a\n"
DAY = 9156  # 2025-01-25 of the pump's clock: far from this computer's date
NOW_MS = 6 * 3_600_000 + 5 * 60_000  # 06:05
PROGRAM = {"drug": "baclofen", "concentration_ug_per_ml": 500, "mode": "flex", "min_rate_ug_per_day": 50,
           "steps": [{"start": "00:00", "rate_ug_per_day": 100}, {"start": "18:00", "rate_ug_per_day": 400}],
           "periodic_boluses": [], "overrides": [],
           "patient_bolus": {"dose_ug": 20, "duration_min": 5, "max_per_24h": 4, "lockout_min": 180}}


def rec(seq: int, kind: str, data: dict[str, Any], day: int = DAY - 1, ms: int = 8 * 3_600_000) -> dict[str, Any]:
    return {"seq": seq, "wall": [day, ms], "uptime": seq * 60, "type": kind, "data": data}


EVENTS = [rec(1, "power_on", {"fw": "0.1.0", "cause": "power_on"}, ms=7 * 3_600_000),
          rec(2, "program", {"drug": "baclofen", "conc": 500, "mode": "flex", "daily_ug": 200}),
          rec(3, "bolus", {"kind": "clinician", "dose_ug": 50, "min": 10, "outcome": "started", "overrides": []},
              ms=10 * 3_600_000),
          rec(4, "alarm", {"t": 100, "ev": "raise", "code": "LOW_RESERVOIR", "ms": 0}, ms=11 * 3_600_000),
          rec(5, "refill", {"withdrawn_ul": 1500, "expected_ul": 1480, "volume_ul": 20000, "conc": 500,
                            "warn": False, "bridge_steps": 0}, ms=12 * 3_600_000),
          rec(6, "patient_bolus", {"outcome": "delivered", "src": "button",
                                   "why": "patient bolus 20 µg over 5 min (1 of 4 in 24 h)"}, day=DAY, ms=NOW_MS),
          rec(7, "settings", {"low_reservoir_ul": 2500}, day=DAY, ms=NOW_MS)]
REFUSALS = [rec(1, "patient_bolus", {"outcome": "refused_lockout", "src": "programmer",
                                     "why": "locked out: next patient bolus allowed in 3 h 00 min"},
                day=DAY, ms=NOW_MS + 1000)]


class Bench:
    def __init__(self, d: Path) -> None:
        self.dir = d


class FakePump:
    """What report.collect asks of an api.Pump."""

    def __init__(self, bench: Optional[Bench] = None, clock: bool = True, drug: str = "baclofen") -> None:
        self.bench = bench
        self.clock = clock
        self.drug = drug
        self.rings = {"events": EVENTS, "refusals": REFUSALS}

    def __enter__(self) -> "FakePump":
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def identify(self) -> dict[str, Any]:
        return {"device_id": "SIM-0001", "board": "sim", "firmware_version": "0.1.0", "protocol": 1}

    def status(self) -> dict[str, Any]:
        return {"state": "running", "stop_reason": "", "drug": self.drug, "concentration_ug_per_ml": 500,
                "mode": "flex", "rate_ug_per_day": 100, "reservoir_ul": 19541, "low_reservoir_ul": 2500,
                "delivered_ug": 229, "delivered_ul": 458, "dose_24h_ug": 230, "max_24h_ug": 1500, "uptime_s": 82800,
                "reservoir_model_ml": 20, "refill_day": None, "battery_mv": 3600,
                "wall": [DAY, NOW_MS] if self.clock else None,
                "forecast": {"days_to_low": 33, "low_day": DAY + 33, "empty_day": DAY + 37, "days_to_empty": 37,
                             "daily_ul_worst": 528} if self.clock else None}

    def program_show(self) -> dict[str, Any]:
        return {"state": "running", "program": dict(PROGRAM, drug=self.drug)}

    def log_page(self, since: int = 0, max_records: int = 40, ring: str = "events") -> dict[str, Any]:
        recs = self.rings[ring]
        return {"records": [r for r in recs if r["seq"] > since][:max_records], "first_seq": 1,
                "last_seq": recs[-1]["seq"], "corrupt": 0, "ring": ring}

    def history(self, days: int = 1, progress: Any = None) -> list[dict[str, Any]]:
        if not self.clock:
            return []
        h0 = DAY * 24 + 6 - 24 * days
        return [{"hour": h0 + k, "programmed_ug": 4.17 if (h0 + k) % 24 < 18 else 16.67,
                 "delivered_ug": 4.17 if (h0 + k) % 24 < 18 else 16.67, "delivered_ul": 8.34}
                for k in range(24 * days)]

    def patient_usage(self) -> dict[str, Any]:
        return {"today": DAY, "days": [{"day": DAY, "date": [2025, 1, 25], "attempts": 2, "delivered": 1,
                                        "lockout": 1, "limit": 0, "rate_limited": 0, "other": 0}]}

    def alarms(self) -> dict[str, Any]:
        return {"active": [{"code": "BATTERY_ERI", "priority": "low", "since": 80000,
                            "since_wall": [2025, 1, 25, 5, 0, 0], "state": "acknowledged"}],
                "history": [], "audio_paused_ms": 0}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)  # no ./accuracy folder is picked up by accident


def _png(p: Path) -> bool:
    return p.is_file() and p.read_bytes()[:8] == PNG_SIG and p.stat().st_size > 5000


def test_the_report_has_every_section_in_the_pumps_time(tmp_path: Path) -> None:
    steps: list[int] = []
    res = report.build(FakePump(Bench(tmp_path / "mybench")), tmp_path / "out", step=steps.append)
    html = Path(res["html"]).read_text(encoding="utf-8")
    md = Path(res["md"]).read_text(encoding="utf-8")
    assert steps[-1] == report.STEPS and steps == sorted(steps)
    for sid in ("identity", "program", "history", "boluses", "alarms", "refills", "accuracy", "log"):
        assert f'<section id="{sid}">' in html
    assert f"virtual bench in {tmp_path / 'mybench'}" in html  # titled with the bench
    assert "never for human use" in html.lower() and "never for human use" in md.lower()
    assert "Dated 2025-01-25 06:05 pump time (UTC)" in html and "Dated 2025-01-25 06:05 pump time (UTC)" in md
    # the program now and its change
    assert "baclofen 500 µg/mL, mode flex" in html and "from 18:00: 400 µg/day" in html
    assert "program written: baclofen 500 µg/mL, flex, 200 µg/day" in html
    assert "settings changed: low_reservoir_ul 2500" in html
    # boluses, with the refused patient request from the refusals' ring, and the usage table
    assert "clinician bolus 50 µg over 10 min: started" in html
    assert "patient bolus (button): delivered" in html and "refused_lockout" in html
    assert "<td>2025-01-25</td><td>2</td><td>1</td><td>1</td>" in html
    # alarms now and from the log; refills and the dates
    assert "BATTERY_ERI" in html and "2025-01-25 05:00" in html and "alarm LOW_RESERVOIR raised" in html
    assert "withdrew 1500 µL (expected 1480 µL), filled 20000 µL" in html
    assert "2025-02-27" in html  # low reservoir: DAY + 33
    assert "No accuracy test results" in html
    # the plots beside it, named in both pages
    names = sorted(Path(p).name for p in res["plots"])
    assert names == ["history.png", "reservoir.png", "usage.png"]
    for n in names:
        assert _png(tmp_path / "out" / n)
        assert f'<img src="{n}"' in html and f"]({n})" in md
    assert res["data"]["pump_time"] == [DAY, NOW_MS]


def test_a_board_report_and_one_format_only(tmp_path: Path) -> None:
    res = report.build(FakePump(), tmp_path / "o", fmt="md")
    assert res["html"] is None and Path(res["md"]).is_file() and not (tmp_path / "o" / "report.html").exists()
    assert "board sim (SIM-0001)" in Path(res["md"]).read_text()
    res = report.build(FakePump(), tmp_path / "h", fmt="html")
    assert res["md"] is None and Path(res["html"]).is_file()
    with pytest.raises(UsageError, match="--format must be one of"):
        report.build(FakePump(), tmp_path / "x", fmt="pdf")


def test_without_the_pumps_clock_the_report_says_so_and_draws_no_dated_plot(tmp_path: Path) -> None:
    res = report.build(FakePump(clock=False), tmp_path / "o")
    html = Path(res["html"]).read_text()
    assert "the pump&#x27;s clock is not set" in html and "No hourly history yet" in html
    assert sorted(Path(p).name for p in res["plots"]) == ["usage.png"]


def test_text_from_the_pump_is_escaped(tmp_path: Path) -> None:
    res = report.build(FakePump(drug="<script>x</script>|"), tmp_path / "o")
    html = Path(res["html"]).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    md = Path(res["md"]).read_text()
    assert "\\|" in md  # a pipe in a table cell does not break the Markdown table


def test_accuracy_results_are_included_with_their_plots(tmp_path: Path) -> None:
    rho = 0.998203
    s = [(30.0 * k, 30.0 * k / 3600 * 1000 * rho) for k in range(241)]
    res = accuracy.analyse(s, 1.0, rho)
    acc = tmp_path / "acc"
    accuracy.write_csv(res, acc)
    plots.trumpet_curve(res.trumpet, res.overall_error_pct, acc / "trumpet.png")
    out = report.build(FakePump(), tmp_path / "o", accuracy_dir=acc)
    html = Path(out["html"]).read_text()
    assert "overall error</dt><dd>+0.00 %" in html and "-0.00" not in html
    assert '<img src="accuracy-trumpet.png"' in html and _png(tmp_path / "o" / "accuracy-trumpet.png")
    (acc / "summary.csv").write_text("key,value\nrate_ml_h,abc\n")
    with pytest.raises(UsageError, match="cannot be read"):
        report.build(FakePump(), tmp_path / "o2", accuracy_dir=acc)


def test_an_out_that_is_a_file_is_one_sentence(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(UsageError, match="is a file, not a folder"):
        report.build(FakePump(), f)


def test_describe_covers_the_records_in_the_users_units() -> None:
    assert report.describe(rec(1, "alarm", {"ev": "pause", "code": None, "ms": 120000})) == "alarm audio paused for 2 min"
    assert report.describe(rec(1, "bolus", {"kind": "periodic", "outcome": "refused_limit", "why": "24 h maximum"})) \
        == "periodic bolus: refused_limit (24 h maximum)"
    assert report.describe(rec(1, "mystery", {"a": 1})) == 'mystery: {"a": 1}'


def test_the_command_prints_the_files_as_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_report, "connect", lambda args: FakePump(Bench(tmp_path / "b")))
    assert cli_main(["--json", "report", "--out", str(tmp_path / "r")]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d) == {"html", "md", "plots"}
    assert Path(d["html"]).is_file() and Path(d["md"]).is_file() and all(_png(Path(p)) for p in d["plots"])
    assert cli_main(["report", "--out", str(tmp_path / "r2")]) == 0
    out = capsys.readouterr().out
    assert "dated 2025-01-25 06:05 pump time (UTC)" in out and "history.png" in out
    assert cli_main(["--json", "report", "--days", "0"]) == 1
    assert "from 1 to 31" in json.loads(capsys.readouterr().out)["error"]["message"]
    assert cli_main(["--json", "report", "--accuracy", str(tmp_path / "none")]) == 1
    assert "no accuracy results there" in json.loads(capsys.readouterr().out)["error"]["message"]


def test_bolus_usage_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(cli_report, "connect", lambda args: FakePump())
    assert cli_main(["--json", "bolus-usage", "--days", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [x["date"] for x in d["days"]] == [[2025, 1, 24], [2025, 1, 25]] and d["totals"]["lockout"] == 1
    assert cli_main(["bolus-usage"]) == 0
    assert "2025-01-25" in capsys.readouterr().out
    assert cli_main(["--json", "bolus-usage", "--days", "-1"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "USAGE"


def test_a_device_error_during_collection_is_not_swallowed(tmp_path: Path) -> None:
    class Broken(FakePump):
        def alarms(self) -> dict[str, Any]:
            raise DeviceError("no", "STATE")
    with pytest.raises(DeviceError):
        report.build(Broken(), tmp_path / "o")
    assert not (tmp_path / "o" / "report.html").exists()  # nothing half-written
