"""The lazy REQUESTS/RESPONSES maps import their modules inside the installed package.

Run in a child interpreter started outside the repository, so the source tree's top-level
``wire/`` directory is not importable: a lookup must load ``kbroker.wire.messages.*`` and
never a top-level ``wire`` package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHILD = """
import sys
from kbroker.wire.messages import REQUESTS, RESPONSES
cls = REQUESTS[19]
assert cls.__module__ == "kbroker.wire.messages.create_topics_request", cls.__module__
assert RESPONSES[1].__module__.startswith("kbroker.wire.messages."), RESPONSES[1].__module__
assert "wire" not in sys.modules
print("ok")
"""


def test_lazy_message_lookup_imports_from_the_package(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-I", "-c", CHILD], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
