"""Run the ``kbroker`` admin verbs as a user does: ``python -m kbroker VERB ... --bootstrap B``.

The CLI is a client like the others here: it talks only the Kafka protocol, so these tests
run unchanged against the Tansu stand-in (KBROKER_COMPAT_TARGET=tansu) where Tansu serves
the calls.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from broker_process import ROOT

CLI_TIMEOUT_S = 60.0


def run(bootstrap: str, *args: str, stdin: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """``kbroker ARGS --bootstrap BOOTSTRAP``; with ``check`` it must exit 0 with nothing
    on stderr but what the verb says about itself (no traceback)."""
    proc = subprocess.run(
        [sys.executable, "-m", "kbroker", *args, "--bootstrap", bootstrap],
        cwd=ROOT, input=stdin if stdin is not None else b"", capture_output=True, timeout=CLI_TIMEOUT_S,
    )
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
    if check:
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr.decode())
    return proc


def text(bootstrap: str, *args: str, stdin: bytes | None = None) -> str:
    return run(bootstrap, *args, stdin=stdin).stdout.decode()


def as_json(bootstrap: str, *args: str, stdin: bytes | None = None) -> Any:
    return json.loads(run(bootstrap, *args, "--json", stdin=stdin).stdout)


def json_lines(bootstrap: str, *args: str) -> list[dict[str, Any]]:
    out = run(bootstrap, *args, "--json").stdout.decode()
    return [json.loads(line) for line in out.splitlines()]


def one_line_error(proc: subprocess.CompletedProcess[bytes], code: int = 1) -> str:
    """The verb failed with exit ``code`` and exactly one ``kbroker: error:`` line."""
    lines = proc.stderr.decode().splitlines()
    assert proc.returncode == code, (proc.returncode, lines)
    assert len(lines) == 1 and lines[0].startswith("kbroker: error: "), lines
    return lines[0]
