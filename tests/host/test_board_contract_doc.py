"""docs/architecture.md's board table is the one generated from firmware/board_contract.py."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import board_table  # noqa: E402


def test_architecture_doc_table_is_generated_from_the_contract() -> None:
    assert board_table.current() == board_table.block(), (
        "docs/architecture.md's board table differs from firmware/board_contract.py: "
        "run `python tests/board_table.py --write`")


def test_the_table_names_every_member() -> None:
    text = board_table.table()
    for name, kind, spec, _doc in board_table.contract().BOARD:
        assert f"board.{name}" in text
        if kind.startswith("part"):
            for member in spec:
                assert f"`{member[0]}" in text, member
