"""No module imports, by bare name, a module whose name is not unique across the test trees.

tests/ and compat-tests/ put several of their directories on sys.path, and the README's test
command runs them all in one session: ``from conftest import X`` (or ``from test_compaction
import X``, when tests/broker and compat-tests both have a test_compaction.py) then finds
whichever of the same-named modules Python imported first or whose directory comes first on
sys.path.  CI runs failed at collection exactly so, twice.  Shared code lives in modules with
session-unique names (compat-tests/broker_process.py, compaction_helpers.py,
tests/broker/broker_harness.py, ...).
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TREES = ("tests", "compat-tests", "bench")


def _modules() -> list[Path]:
    return [
        path
        for tree in TEST_TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if "node_modules" not in path.parts
    ]


def _imported_names(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.module.split(".")[0], node.lineno))
        elif isinstance(node, ast.Import):
            names.extend((alias.name.split(".")[0], node.lineno) for alias in node.names)
    return names


def test_no_module_imports_an_ambiguous_name() -> None:
    modules = _modules()
    counts = Counter(path.stem for path in modules)
    ambiguous = {name for name, n in counts.items() if n > 1}
    assert "conftest" in ambiguous  # the check below has something to guard
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules
        for name, line in _imported_names(path)
        if name in ambiguous
    ]
    assert offenders == []
