"""The design card's import direction, enforced.

The directories wire/, log/ and coordinator/ install as kbroker.wire, kbroker.log and
kbroker.coordinator; kbroker/ is the server.  wire imports nothing of ours; log only wire;
coordinator only wire and log; the server may import everything.  Imports under TYPE_CHECKING
count too (the walk sees every import statement, wherever it is), and the old top-level names
(``import wire``) are forbidden everywhere: only ``kbroker`` is installed at top level.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = {"wire", "log", "coordinator"}
# directory -> the components it may import (besides itself)
ALLOWED = {
    "wire": set(),
    "log": {"wire"},
    "coordinator": {"wire", "log"},
    "kbroker": {"wire", "log", "coordinator"},
}
# wire must stay sans-IO: these stdlib modules may not be imported there.
WIRE_FORBIDDEN_STDLIB = {"asyncio", "socket", "selectors", "ssl", "os", "io", "pathlib"}
LEGACY = "legacy top-level name"


def _component(module: str) -> str | None:
    """Which of our components a dotted module name belongs to (None: not ours)."""
    parts = module.split(".")
    if parts[0] in SUBPACKAGES:
        return LEGACY
    if parts[0] != "kbroker":
        return None
    if len(parts) > 1 and parts[1] in SUBPACKAGES:
        return parts[1]
    return "kbroker"


def _imports(path: Path) -> list[tuple[str, str]]:
    """(component, imported name) for every import of ours in the file, TYPE_CHECKING included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.level:
                continue  # relative imports stay inside their own package
            names = [node.module]
            if node.module == "kbroker":
                names = [f"kbroker.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            comp = _component(name)
            if comp is not None:
                found.append((comp, name))
    return found


def _stdlib_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("directory", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(directory: str) -> None:
    offenders = []
    for path in sorted((ROOT / directory).rglob("*.py")):
        for comp, name in _imports(path):
            if comp == directory:
                continue
            if comp == LEGACY or comp not in ALLOWED[directory]:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("directory", ["tests", "compat-tests", "bench", "tools"])
def test_nothing_imports_the_old_top_level_names(directory: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / directory).rglob("*.py"))
        if "node_modules" not in path.parts
        for comp, name in _imports(path)
        if comp == LEGACY
    ]
    assert not offenders, "\n".join(offenders)


def test_wire_is_sans_io() -> None:
    offenders = []
    for path in sorted((ROOT / "wire").rglob("*.py")):
        bad = _stdlib_tops(path) & WIRE_FORBIDDEN_STDLIB
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_imports_and_back_edges(tmp_path: Path) -> None:
    # Guard against a checker that silently finds nothing.
    assert any(comp == "wire" for comp, _ in _imports(ROOT / "wire" / "codec.py"))
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from kbroker.server import Broker\n"
        "    from kbroker import coordinator\n"
        "import wire.codec\n"
    )
    assert sorted(_imports(probe)) == sorted(
        [("kbroker", "kbroker.server"), ("coordinator", "kbroker.coordinator"), (LEGACY, "wire.codec")]
    )
