"""The lab guide never rots: every command in its ```sh blocks runs, in order, on a lockstep
virtual bench, exactly as a student would type it (docs/lab-guide.md). The same runner checks
the "Try it on the virtual bench" section of docs/security.md.

Rules the guide follows (and this runner enforces):
- each line of a ```sh block is one command; blank lines and `#` comment lines are skipped;
- a here-document (`cat > f.py <<'EOF'` ... `EOF`) is one command with its lines;
- a line ending in the comment `# expect failure` must exit non-zero (cleanly: no traceback),
  every other line must exit 0;
- lines starting with `pumpctl` run the venv's pumpctl; `python` is the venv's interpreter
  (the guide tells students to activate the venv first);
- the working directory is a fresh temporary one holding a link to the repository's
  `examples/` (the guide's setup makes the same link), and PUMPCTL_HOME a fresh temporary one.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "lab-guide.md"
SECURITY = ROOT / "docs" / "security.md"
VENV_BIN = Path(sys.executable).parent
EXPECT_FAILURE = re.compile(r"#\s*expect failure\s*$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")


class Cmd:
    def __init__(self, text: str, line: int) -> None:
        self.text = text
        self.line = line
        first = text.splitlines()[0]
        self.expect_failure = bool(EXPECT_FAILURE.search(first))


# The guide's emulated-Pico part runs in tests/pico (it needs the Pico firmware image and Node).
PICO_PART = "Part 9: the same firmware on a Pico, with no board (15 min, optional)"


def _section(lines: list[str], section: str) -> tuple[int, int]:
    start = next(i for i, l in enumerate(lines) if l.startswith("## ") and l[3:].strip() == section)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def sh_blocks(markdown: str, section: Optional[str] = None, skip: tuple[str, ...] = ()) -> list[Cmd]:
    """Commands of every ```sh block (of one `## section` if given, without the `skip`
    sections), in order."""
    lines = markdown.splitlines()
    for name in skip:
        a, b = _section(lines, name)
        lines[a:b] = [""] * (b - a)  # keep line numbers
    if section is not None:
        start, end = _section(lines, section)
    else:
        start, end = 0, len(lines)
    cmds: list[Cmd] = []
    i = start
    while i < end:
        if lines[i].strip() == "```sh":
            i += 1
            while i < end and lines[i].strip() != "```":
                raw = lines[i]
                s = raw.strip()
                if not s or s.startswith("#"):
                    i += 1
                    continue
                m = HEREDOC.search(s)
                if m:
                    body = [raw]
                    j = i + 1
                    while j < end and lines[j] != m.group(2):
                        body.append(lines[j])
                        j += 1
                    assert j < end, f"here-document at line {i + 1} never ends with {m.group(2)}"
                    body.append(lines[j])
                    cmds.append(Cmd("\n".join(body), i + 1))
                    i = j + 1
                    continue
                assert not s.endswith("\\"), f"line {i + 1}: write each command on one line"
                cmds.append(Cmd(s, i + 1))
                i += 1
            assert i < end, "unterminated ```sh block"
        i += 1
    return cmds


def _stop_bench(home: Path, env: dict[str, str]) -> None:
    """Stop whatever bench (or emulated Pico) the guide left running (only what it started)."""
    subprocess.run([str(VENV_BIN / "pumpctl"), "bench", "stop"], env=env, capture_output=True, timeout=30)
    for f in home.rglob("pico.json"):
        try:
            os.killpg(json.loads(f.read_text())["pid"], signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
    for f in home.rglob("bench.json"):
        try:
            pid = json.loads(f.read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass


def run_commands(cmds: list[Cmd], tmp_path: Path, timeout: float = 60) -> tuple[Path, list[tuple[Cmd, subprocess.CompletedProcess]]]:
    work = tmp_path / "lab"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    home = tmp_path / "home"
    env = dict(os.environ, PUMPCTL_HOME=str(home), PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)  # as a student's shell: pumpctl comes from the venv
    pumpctl = str(VENV_BIN / "pumpctl")
    done = []
    try:
        for c in cmds:
            text = c.text
            if text.startswith("pumpctl "):
                text = pumpctl + text[len("pumpctl"):]
            r = subprocess.run(["bash", "-c", text], cwd=work, env=env, capture_output=True, text=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
            where = f"guide line {c.line}: {c.text.splitlines()[0]}\n--- stdout\n{r.stdout[-2000:]}\n--- stderr\n{r.stderr[-2000:]}"
            if c.expect_failure:
                assert r.returncode != 0, "should fail but exited 0: " + where
                assert "Traceback" not in r.stderr, "should fail with a message, not crash: " + where
            else:
                assert r.returncode == 0, f"exit {r.returncode}: " + where
            done.append((c, r))
    finally:
        _stop_bench(home, env)
    return work, done


def test_the_guide_is_parsed_as_intended():
    cmds = sh_blocks(GUIDE.read_text(), skip=(PICO_PART,))
    assert len(cmds) >= 40, len(cmds)
    text = "\n".join(c.text for c in cmds)
    # The lab covers what issue 8 asks for.
    for needle in ("pumpctl bench start", "pumpctl identify", "pumpctl status", "pumpctl calibrate",
                   "pumpctl program continuous", "examples/programs/flex-evening.toml", "pumpctl bench advance",
                   "pumpctl refill", "pumpctl bench fault", "pumpctl alarms ack", "pumpctl accuracy --rate",
                   "--duration 2h", "pumpctl plot profile", "pumpctl plot reservoir", "replay.py",
                   "pumpctl --role patient", "pumpctl bench power-cycle", "pumpctl bench stop",
                   # issue 17: the button, the usage report, the report to hand in, a realistic bench
                   "pumpctl bench press", "pumpctl bolus-usage", "pumpctl report --out", "pumpctl log --refusals",
                   "--fresh --true-pl 51500 --realistic"):
        assert needle in text, needle
    assert cmds[0].text.startswith("pumpctl bench start") and cmds[-1].text == "pumpctl bench stop"
    assert sum(c.expect_failure for c in cmds) >= 4
    guide = GUIDE.read_text()
    assert "90" in guide and "never for human use" in guide.lower()
    assert guide.count("**Questions**") >= 8  # every part asks the students something
    # The runner itself: a here-document is one command, a marked line expects failure.
    sample = "```sh\n# c\npumpctl status\ncat > a.py <<'EOF'\nprint(1)\n\nEOF\nfalse   # expect failure\n```\n"
    got = sh_blocks(sample)
    assert [c.text for c in got] == ["pumpctl status", "cat > a.py <<'EOF'\nprint(1)\n\nEOF", "false   # expect failure"]
    assert [c.expect_failure for c in got] == [False, False, True]


def _is_png(p: Path) -> bool:
    return p.is_file() and p.stat().st_size > 1000 and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_command_of_the_lab_guide_runs_on_a_lockstep_bench(tmp_path):
    t0 = time.monotonic()
    cmds = sh_blocks(GUIDE.read_text(), skip=(PICO_PART,))
    work, done = run_commands(cmds, tmp_path)
    elapsed = time.monotonic() - t0
    assert len(done) == len(cmds)
    assert elapsed < 90, f"the guide took {elapsed:.0f} s on a lockstep bench"
    out = {c.text: r for c, r in done}
    # The files the guide says it writes are there and are images a person can open.
    for name in re.findall(r"(?:--out|--plot) (\S+\.png)", "\n".join(c.text for c in cmds)):
        assert _is_png(work / name), name
    for d in re.findall(r"pumpctl report .*--out (\S+)", "\n".join(c.text for c in cmds)):
        html = (work / d / "report.html").read_text()  # the report a student hands in
        assert (work / d / "report.md").is_file() and "never for human use" in html.lower(), d
        pngs = sorted((work / d).glob("*.png"))
        assert pngs and all(_is_png(p) for p in pngs) and all(p.name in html for p in pngs), (d, pngs)
    assert any((work / d / "accuracy-trumpet.png").is_file()
               for d in re.findall(r"pumpctl report .*--out (\S+) --accuracy", "\n".join(c.text for c in cmds)))
    for d in re.findall(r"pumpctl accuracy .*--out (\S+)", "\n".join(c.text for c in cmds)):
        for f in ("trumpet.png", "startup.png"):
            assert _is_png(work / d / f), (d, f)
        for f in ("samples.csv", "trumpet.csv", "summary.csv"):
            assert (work / d / f).is_file(), (d, f)
    # What the guide tells students they will see, they do see.
    replays = [r for c, r in done if c.text.startswith("python replay.py") and c.expect_failure]
    assert replays and all("AUTH_REPLAY" in r.stdout for r in replays), [r.stdout for r in replays]
    patient = [r for c, r in done if c.text.startswith("pumpctl --role patient") and c.expect_failure]
    assert patient and all("AUTH_ROLE" in r.stderr for r in patient)
    acc = [r for c, r in done if c.text.startswith("pumpctl accuracy")]
    assert len(acc) == 2
    before = float(re.search(r"Overall error over \S+ min: ([+-][\d.]+) %", acc[0].stdout).group(1))
    after = float(re.search(r"Overall error over \S+ min: ([+-][\d.]+) %", acc[1].stdout).group(1))
    assert 2.5 < before < 3.5 and abs(after) < 1.0, (before, after)
    assert any("WARNING" in r.stdout for c, r in done if c.text.startswith("pumpctl refill")), "the refill mismatch warning"
    assert "OCCLUSION" in "".join(r.stdout for c, r in done if c.text.startswith("pumpctl status"))
    check_the_answers(done)


def _outs(done: list, command: str) -> list[str]:
    """stdout + stderr of each run of a command line (comments dropped), in order."""
    return [r.stdout + r.stderr for c, r in done if c.text.split("#")[0].strip() == command]


def _clock(status_text: str) -> "dt.datetime":
    import datetime as dt
    return dt.datetime.strptime(re.search(r"Clock: (\S+ \S+);", status_text).group(1), "%Y-%m-%d %H:%M:%S")


def check_the_answers(done: list) -> None:
    """Each answer a Questions list asks students to find is in the plain (non --json) output
    of the commands the guide has them run: the guide's questions stay answerable."""
    import datetime as dt
    status = _outs(done, "pumpctl status")
    show = _outs(done, "pumpctl bench show")
    # Part 1 Q1: device id and firmware version; the hint's `Auth:` line (without --json).
    ident = _outs(done, "pumpctl identify")[0]
    assert "SIM-0001" in ident and "firmware 0.1.0" in ident and "Auth:" in ident and "signed" in ident, ident
    # Part 1 Q2: both report the reservoir.
    assert "Reservoir: 20000 µL" in status[0] and "water left in the reservoir" in show[0]
    # Part 2 Q1: 500 µg/day at 2000 µg/mL is 250 µL/day; 18 mL to the 2 mL alarm is 72 days.
    assert "in 72 days" in status[1], status[1]
    # Part 2 Q2: the pump says 250 µL, the bench's outlet has 250 µL.
    assert "Delivered since programming began: 250 µL" in status[2] and "250.000 µL" in show[1], (status[2], show[1])
    # Part 3 Q1/Q2: the volume per step, the density at the temperature, the line that would change.
    cal = _outs(done, "pumpctl calibrate --volume-ul 500")[0]
    assert "50.000 nL per step" in cal and "Water density at 20.0 °C" in cal and "Calibration:" in cal, cal
    assert "-0.00" not in cal
    # Part 4 Q1: the profile's daily total agrees with the TOML's comment (183.3 µg).
    prof = _outs(done, "pumpctl plot profile examples/programs/flex-evening.toml --out flex-profile.png")[0]
    assert "183.3 µg/day" in prof and "183.3 µg" in (ROOT / "examples/programs/flex-evening.toml").read_text()
    # Part 4 Q2: about 19 mL expected, 17.5 mL withdrawn.
    refill = _outs(done, "pumpctl refill --withdrawn-ul 17500 --volume-ul 20000 --concentration 500")[0]
    assert "expected 19000 µL" in refill and "Withdrew 17500 µL" in refill, refill
    # Part 4 Q3: the evening step (18:00) and an hour where delivered differs from programmed.
    hist = _outs(done, "pumpctl history --plot history.png")[0]
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r"^\S+ (\d\d)h\s+([\d.]+)\s+([\d.]+)", hist, re.M)}
    assert rows["18"][0] > rows["17"][0] * 2, rows
    assert any(abs(p - d) > 0.5 for p, d in rows.values()), "an hour where delivered differs from programmed"
    # The planned refill comes before the low-reservoir date status gives (the plot is readable).
    low = re.search(r"Low reservoir \(\d+ µL\) on (\S+)", status[3]).group(1)
    planned = re.search(r"--refill (\S+)", next(c.text for c, r in done if "plot reservoir" in c.text)).group(1)
    assert _clock(status[3]).date().isoformat() < planned < low, (planned, low)
    # Part 5: the first replay is answered from the retry cache, and says nothing ran again.
    replays = _outs(done, "python replay.py")
    assert "ANSWERED FROM THE RETRY CACHE" in replays[0] and "ACCEPTED" not in replays[0], replays[0]
    assert "bolus" in status[4] and "A clinician bolus is running" in status[4]
    refusals = _outs(done, "pumpctl log --refusals")[0]
    assert refusals.count("auth_fail") >= 4 and "AUTH_REPLAY" in refusals and "AUTH_ROLE" in refusals, refusals
    # Part 6 Q1: the second request is refused with the wait; the third, three hours on, starts.
    pb = _outs(done, "pumpctl patient-bolus")
    assert "Patient bolus started" in pb[0] and "next allowed in 3 h 00 min" in pb[1], pb
    assert "Patient bolus started" in pb[2], pb[2]
    # Part 6 Q2: the button presses straight after a bolus are refused, and bolus-usage counts
    # them per day: delivered and refused by the lockout.
    presses = _outs(done, "pumpctl bench press")
    assert len(presses) == 2 and all("refused" in p and "lockout" in p for p in presses), presses
    usage = _outs(done, "pumpctl bolus-usage")[0]
    total = re.search(r"^total\s+(\d+)\s+(\d+)\s+(\d+)", usage, re.M)
    assert total and (int(total.group(2)), int(total.group(3))) == (2, 3), usage  # 2 given; 1 + 2 presses refused
    # Part 7 Q2: the trumpet narrows from 2-minute to 31-minute windows (the bench is realistic).
    for a in acc_outputs(done):
        spread = {int(w): float(hi) - float(lo) for w, lo, hi in
                  re.findall(r"^\s+(\d+) min:\s+([+-][\d.]+) % ..\s+([+-][\d.]+) %", a, re.M)}
        assert spread[2] > 2 * spread[31] and spread[31] > 0, spread
        assert "-0.00" not in a
    # Part 8 Q1: each alarm's priority; Q3: the battery alarm stays listed once acknowledged.
    alarms = _outs(done, "pumpctl alarms")
    first = next(i for i, a in enumerate(alarms) if "BATTERY_ERI" in a)  # Part 5 listed alarms too
    assert re.search(r"BATTERY_ERI\s+medium", alarms[first]) and "acknowledged" in alarms[first + 1], alarms
    assert "paused until" in alarms[first + 1] and "pump time" in alarms[first + 1], alarms[first + 1]
    blocked = next(s for s in status if "OCCLUSION" in s)
    assert re.search(r"OCCLUSION\s+high", blocked)
    # Part 8 Q2: the blockage began 30 min before status's clock; the alarm's time is listed;
    # bench show gives the water held in the line and its pressure.
    since = dt.datetime.strptime(re.search(r"OCCLUSION\s+high\s+\S+\s+(\S+ \S+)", blocked).group(1), "%Y-%m-%d %H:%M:%S")
    delay = since - (_clock(blocked) - dt.timedelta(minutes=30))
    assert dt.timedelta(0) < delay <= dt.timedelta(minutes=30), delay
    held = next(s for s in show if "BLOCKED" in s)
    kpa = int(re.search(r"pressure in the line\s+(\d+) kPa", held).group(1))
    ul = float(re.search(r"water held in the line .*?([\d.]+) µL", held).group(1))
    assert kpa > 0 and ul > 0, held


def acc_outputs(done: list) -> list[str]:
    return [r.stdout for c, r in done if c.text.startswith("pumpctl accuracy")]


def test_the_security_page_try_it_section_runs(tmp_path):
    cmds = sh_blocks(SECURITY.read_text(), "Try it on the virtual bench")
    assert len(cmds) >= 8
    _, done = run_commands(cmds, tmp_path)
    refused = "".join(r.stdout + r.stderr for c, r in done if c.expect_failure)
    for code in ("AUTH_REPLAY", "AUTH_ROLE"):
        assert code in refused, code



def test_a_bolus_on_top_of_a_fast_basal_lets_time_pass(tmp_path, monkeypatch):
    """Found while writing the lab (fixed in 494a2c2): with basal and bolus running, their two
    remainders could add up to a quantum neither held, the control loop never slept, and the
    lockstep bench answered 'firmware did not go idle'."""
    from pumpctl import bench as benchmod
    from pumpctl.cli import main as cli_main
    monkeypatch.setenv("PUMPCTL_HOME", str(tmp_path / "home"))
    info = benchmod.start(tmp_path / "bench", lockstep=True)
    try:
        assert cli_main(["program", "continuous", "7200", "--concentration", "1000", "--drug", "water", "--yes"]) == 0
        assert cli_main(["bolus", "10", "--duration", "10m"]) == 0
        benchmod.control(info, {"cmd": "advance", "ms": 3_600_000}, timeout=20)
        show = benchmod.control(info, {"cmd": "show"}, timeout=10)
        # 7200 µg/day of water is 300 µL/h = 6000 steps of 50 nL; the 10 µg bolus 200 more.
        assert abs(show["head_steps"] - 6200) <= 1, show["head_steps"]
    finally:
        benchmod.stop(info, timeout=2)


def test_the_docs_a_student_reads_stay_inside_the_repository():
    """Everything a student needs is in docs/: no page points at ../shared or its files."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for page in pages:
        text = page.read_text()
        for bad in ("../shared", "shared/DOMAIN", "DOMAIN.md", "ENGINEERING.md"):
            assert bad not in text, (page.name, bad)
    guide = GUIDE.read_text()
    assert "docs/domain.md" in guide and (ROOT / "docs" / "domain.md").is_file()
    for ref in set(re.findall(r"`(docs/[\w/.-]+\.md)`", guide)):
        assert (ROOT / ref).is_file(), ref


def test_the_readme_parts_cost_agrees_with_the_hardware_page():
    hw = (ROOT / "docs" / "hardware.md").read_text()
    total = re.search(r"About (\d+)–(\d+) € in total", hw)
    assert total, "docs/hardware.md states the total"
    readme = (ROOT / "README.md").read_text()
    assert f"about {total.group(1)}–{total.group(2)} € in all" in readme
    head = re.search(r"Peristaltic pump head[^|]*\|[^|]*\|\s*(\d+)–(\d+) €", hw)
    assert head and f"pump head is {head.group(1)}–{head.group(2)} €" in readme
