"""No module reads or writes another module's private names (issue 14): `x._name` is allowed
only where `_name` belongs to the same file (self._x, a same-class other._x, a module's own
helpers). A private read or write across modules couples a reader to another object's insides, which is how state
came to be read and rebuilt from outside the objects that own it.

Checked statically, with Python's own parser, over firmware/, boards/ and host_tools/pumpctl/."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("firmware", "boards", "host_tools/pumpctl")

# Reads that stay, each with its reason. Keep this list short; it is not a way round the rule.
ALLOWED = {
    # MicroPython's asyncio has no public wait for a listening socket; its own start_server
    # waits through the IO queue exactly like this.
    ("boards/sim/control.py", "asyncio.core._io_queue"),
}


def _own_names(tree: ast.AST) -> set[str]:
    """Private names this file defines: attributes it assigns, functions and classes it has."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name.startswith("_"):
            names.add(node.name)
        elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and node.attr.startswith("_")
              and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id.startswith("_"):
            names.add(node.id)
    return names


def private_reads(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    own = _own_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        a = node.attr
        if not a.startswith("_") or a.startswith("__") or a in own:
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue  # a subclass using its base's private name (same object)
        found.append((node.lineno, ast.unparse(node)))
    return found


def _all() -> list[str]:
    out = []
    for tree in TREES:
        for f in sorted((ROOT / tree).rglob("*.py")):
            rel = str(f.relative_to(ROOT))
            for line, expr in private_reads(f):
                if (rel, expr) not in ALLOWED:
                    out.append(f"{rel}:{line}: {expr}")
    return out


def test_no_module_reads_another_modules_private_names() -> None:
    assert _all() == [], "private names read across modules (give the owner a public method):\n" + "\n".join(_all())


def test_every_allowed_read_still_exists() -> None:
    """An allowance whose read is gone is removed from the list, so the list only shrinks."""
    seen = set()
    for tree in TREES:
        for f in sorted((ROOT / tree).rglob("*.py")):
            rel = str(f.relative_to(ROOT))
            seen |= {(rel, expr) for _, expr in private_reads(f)}
    assert ALLOWED <= seen, sorted(ALLOWED - seen)


def test_the_check_sees_a_private_read(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("class A:\n    def __init__(self):\n        self._mine = 1\n        self.x = self._mine\n"
                 "def g(app, other):\n    other._theirs = 2\n    return app._hours, other._mine\n")
    assert sorted(private_reads(f)) == [(6, "other._theirs"), (7, "app._hours")]


_CLIENT_INNARDS = {"link", "frames", "signing", "keystore", "serial"}


def _innards_imported(paths: list[Path]) -> list[str]:
    """"file: module" for each import of the client's framing, signing, keys or port."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.module in (None, "pumpctl"):
                    names = {a.name for a in node.names}
                else:
                    parts = node.module.split(".")
                    names = {parts[0], parts[-1]}
            elif isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            else:
                continue
            found += ["%s: %s" % (path.name, n) for n in sorted(names & _CLIENT_INNARDS)]
    return found


def test_the_cli_talks_to_the_pump_only_through_the_api() -> None:
    """One client layer (issue 14): the CLI's modules build on pumpctl.api; framing, signing,
    keys and the serial port are the API's business."""
    cli = sorted((ROOT / "host_tools" / "pumpctl").glob("cli*.py"))
    assert len(cli) >= 4, cli
    assert _innards_imported(cli) == []


def test_the_cli_check_sees_a_direct_import(tmp_path: Path) -> None:
    planted = tmp_path / "cli_planted.py"
    planted.write_text("from . import api, link\nfrom .signing import sign\nimport serial.tools\n")
    assert _innards_imported([planted]) == ["cli_planted.py: link", "cli_planted.py: signing",
                                            "cli_planted.py: serial"]
