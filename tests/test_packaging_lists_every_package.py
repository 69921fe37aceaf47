"""pyproject.toml lists the wheel's packages by hand (three of them live in top-level
directories, mapped by package-dir), so a new subpackage must be added there: a missing
one imports fine from the checkout and fails only in an installed broker (it did, twice:
kbroker.control and kbroker.quotas, found by the container test)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _packages_on_disk() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {"kbroker": ROOT / "kbroker"} | {
        name: ROOT / directory for name, directory in config["package-dir"].items()
    }
    found = set()
    for package, directory in roots.items():
        for init in directory.rglob("__init__.py"):
            relative = init.parent.relative_to(directory)
            found.add(".".join([package, *relative.parts]))
    return found


def test_every_package_directory_is_in_the_wheel() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert _packages_on_disk() - listed == set()
    assert listed - _packages_on_disk() == set()
