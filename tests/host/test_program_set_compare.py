"""`pumpctl program set` shows old and new side by side and writes nothing unless confirmed."""
from __future__ import annotations

import argparse
import io
from typing import Any

import pytest

from pumpctl import api, cli, cli_pump


class FakeLink:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def __enter__(self) -> "FakeLink":
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def close(self) -> None:
        pass

    def request(self, cmd: str, args: Any = None, signed: Any = None) -> dict:
        self.sent.append(cmd)
        old = {"drug": "baclofen", "concentration_ug_per_ml": 2000, "mode": "continuous", "rate_ug_per_day": 400}
        if cmd == "status":
            return {"reservoir_ul": 20_000}
        if cmd == "program_check":
            return {"old": old, "new": args["program"]}
        if cmd == "program_set":
            return {"old": old, "new": args["program"], "overrides_used": []}
        raise AssertionError(cmd)


def _args(**kw: Any) -> argparse.Namespace:
    d = dict(json=False, port=None, bench_dir=None, timeout=5.0, yes=False, role="clinician", role_set=None,
             rate=500, concentration=2000, drug="baclofen")
    d.update(kw)
    return argparse.Namespace(**d)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.safety("SR-024")
def test_refusal_at_the_prompt_sends_nothing(monkeypatch, capsys):
    link = FakeLink()
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(link))  # type: ignore[arg-type]
    monkeypatch.setattr("sys.stdin", Tty("n\n"))
    out = cli.cmd_program_continuous(_args())
    printed = capsys.readouterr().out
    assert "program_set" not in link.sent and out.data["written"] is False
    # Side by side: dose per hour, daily total, days to low reservoir, old and new.
    assert "dose per hour" in printed and "16.67" in printed and "20.83" in printed
    assert "daily total" in printed and "400.0" in printed and "500.0" in printed
    assert "days to low reservoir" in printed and "90.0" in printed and "72.0" in printed


@pytest.mark.safety("SR-024")
def test_yes_at_the_prompt_or_flag_writes(monkeypatch, capsys):
    link = FakeLink()
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(link))  # type: ignore[arg-type]
    monkeypatch.setattr("sys.stdin", Tty("y\n"))
    assert cli.cmd_program_continuous(_args()).data["written"] is True
    link2 = FakeLink()
    monkeypatch.setattr(cli_pump, "connect", lambda args, role=None: api.Pump(link2))  # type: ignore[arg-type]
    monkeypatch.setattr("sys.stdin", Tty(""))
    assert cli.cmd_program_continuous(_args(yes=True)).data["written"] is True
    assert link2.sent == ["status", "program_check", "program_set"]
