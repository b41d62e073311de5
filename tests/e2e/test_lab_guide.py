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
                   "pumpctl --role patient", "pumpctl bench power-cycle", "pumpctl bench stop"):
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
