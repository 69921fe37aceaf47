"""No module imports ``conftest`` by name.

tests/ and compat-tests/ each have conftest modules, and the README's test command runs them
all in one session: ``from conftest import X`` then finds whichever conftest Python imported
first (a CI run failed at collection exactly so).  Shared code lives in modules with
session-unique names (compat-tests/broker_process.py, tests/broker/broker_harness.py, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_TREES = ("tests", "compat-tests", "bench")


def _imports_conftest(path: Path) -> list[int]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "conftest" or isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names):
            lines.append(node.lineno)
    return lines


def test_no_module_imports_conftest() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for tree in TEST_TREES
        for path in sorted((ROOT / tree).rglob("*.py"))
        if "node_modules" not in path.parts
        for line in _imports_conftest(path)
    ]
    assert offenders == []
