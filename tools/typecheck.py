"""Run mypy over the source tree as the installed package ``kbroker`` sees it.

The directories wire/, log/ and coordinator/ install as kbroker.wire, kbroker.log and
kbroker.coordinator (setuptools package-dir), a mapping mypy cannot follow in a source tree.
This builds that package layout out of symlinks in a temporary directory and checks it with the
project's mypy settings (strict on kbroker.wire/log/coordinator).  Usage:
``python tools/typecheck.py [extra mypy args]``; exit status is mypy's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAPPED = ("wire", "log", "coordinator")


def build_tree(dest: Path) -> Path:
    """Lay out dest/kbroker with kbroker/'s entries plus the mapped directories; return it."""
    pkg = dest / "kbroker"
    pkg.mkdir()
    for entry in (ROOT / "kbroker").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for name in MAPPED:
        (pkg / name).symlink_to(ROOT / name)
    return pkg


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="kbroker-typecheck-") as tmp:
        build_tree(Path(tmp))
        cmd = [
            sys.executable, "-m", "mypy",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(ROOT / ".mypy_cache"),
            "-p", "kbroker",
            *argv,
        ]
        env = dict(os.environ, MYPYPATH=tmp)
        return subprocess.run(cmd, cwd=tmp, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
