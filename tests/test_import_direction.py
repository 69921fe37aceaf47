"""The design card's import direction, enforced.

wire imports nothing of ours; log only wire; coordinator only wire and log;
kbroker may import everything.  Imports under TYPE_CHECKING count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"wire", "log", "coordinator", "kbroker"}
ALLOWED = {
    "wire": set(),
    "log": {"wire"},
    "coordinator": {"wire", "log"},
    "kbroker": {"wire", "log", "coordinator"},
}
# wire must stay sans-IO: these stdlib modules may not be imported there.
WIRE_FORBIDDEN_STDLIB = {"asyncio", "socket", "selectors", "ssl", "os", "io", "pathlib"}


def _imported_tops(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    tops: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        ours = (_imported_tops(path) & OURS) - {package}
        bad = ours - ALLOWED[package]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_wire_is_sans_io() -> None:
    offenders = []
    for path in sorted((ROOT / "wire").rglob("*.py")):
        bad = _imported_tops(path) & WIRE_FORBIDDEN_STDLIB
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert not offenders, "\n".join(offenders)


def test_the_checker_sees_imports() -> None:
    # Guard against a checker that silently finds nothing.
    assert "wire" in _imported_tops(ROOT / "wire" / "__init__.py")
