"""Every option and every subcommand of pumpctl says what it is for (`--help`), and every
command takes --json: the whole argparse tree is walked, so a command added later without help
text fails here."""
from __future__ import annotations

import argparse
from typing import Iterator

from pumpctl.cli import build_parser


def _walk(p: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    for a in p._actions:
        yield path, p, a
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _walk(sub, f"{path} {name}")


def _subcommand_help(a: argparse._SubParsersAction) -> dict[str, str]:
    return {c.dest: c.help or "" for c in a._choices_actions}


def test_every_option_and_subcommand_has_help_text():
    missing = []
    commands = 0
    for path, parser, a in _walk(build_parser(), "pumpctl"):
        if isinstance(a, argparse._SubParsersAction):
            helps = _subcommand_help(a)
            for name in a.choices:
                commands += 1
                if not helps.get(name, "").strip():
                    missing.append(f"{path} {name} (subcommand)")
            continue
        if isinstance(a, (argparse._HelpAction, argparse._VersionAction)) and a.help:
            continue
        if a.help == argparse.SUPPRESS or not (a.help or "").strip():
            missing.append(f"{path} {'/'.join(a.option_strings) or a.dest}")
    assert commands > 40, commands  # the walk really went down the tree
    assert not missing, "options without help text:\n" + "\n".join(missing)


def test_the_options_the_issue_named_have_help():
    p = build_parser()
    texts = {}
    for path, parser, a in _walk(p, "pumpctl"):
        for o in a.option_strings or [a.dest]:
            texts[(path, o)] = a.help or ""
    for key in (("pumpctl settings", "--low-reservoir-ul"), ("pumpctl settings", "--stopped-alarm-h"),
                ("pumpctl prime", "--minutes"), ("pumpctl prime", "--tubing-ul"), ("pumpctl history", "--days"),
                ("pumpctl alarms pause", "duration")):
        assert texts.get(key, "").strip(), key
    assert "µL" in texts[("pumpctl settings", "--low-reservoir-ul")]
    assert "min" in texts[("pumpctl alarms pause", "duration")]


def test_every_command_takes_json():
    """A leaf command (one that runs something) accepts --json."""
    leaves = []
    for path, parser, a in _walk(build_parser(), "pumpctl"):
        if a.dest == "help" and parser.get_default("fn") is not None:
            opts = {o for act in parser._actions for o in act.option_strings}
            if "--json" not in opts:
                leaves.append(path)
    assert not leaves, leaves
