"""The non-Python clients the tests drive (kcat, kafkajs on Node.js), and what a missing one means.

Locally a missing client skips the tests that need it, with the reason.  In CI
(``CI=true`` in the environment, as GitHub Actions, GitLab CI and ``.ci/run`` set it) the
run is supposed to have every client, so a missing one FAILS the test instead: a skip
there would let a whole client's coverage disappear without anyone noticing.

Used by the compat suite's fixtures and, loaded by path, by tests/wire's golden-batch
test (which records kafkajs batches).  Only the standard library and pytest are imported.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

HERE = Path(__file__).resolve().parent
JS_DIR = HERE / "js"
NODE_MODULES = JS_DIR / "node_modules"
KAFKAJS_VERSION = "2.2.4"
NPM_TIMEOUT_S = 180


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``, or ``1``/``yes``)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str) -> NoReturn:
    """A client the test needs is not there: skip locally, fail in CI."""
    if in_ci():
        pytest.fail(f"CI=true and {what}; CI must provide every client the suite drives", pytrace=False)
    pytest.skip(what)


def kcat_path() -> str:
    """Path of the kcat (or older kafkacat) binary."""
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        missing("kcat is not installed (apt-get install kcat)")
    return path


def kafkajs_node_modules() -> Path:
    """node_modules holding the pinned kafkajs, installed from the lock file when missing.

    xdist workers share one install (an exclusive lock file around ``npm ci``).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing("kafkajs needs Node.js and npm on PATH")
    installed = NODE_MODULES / "kafkajs" / "package.json"
    with (JS_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed.exists():
            cmd = [npm, "ci", "--no-audit", "--no-fund"]
            proc = subprocess.run(
                cmd, cwd=JS_DIR, capture_output=True, text=True, timeout=NPM_TIMEOUT_S
            )
            if proc.returncode != 0:
                missing(
                    f"kafkajs could not be installed: `{' '.join(cmd)}` exited {proc.returncode} "
                    f"(is the npm registry reachable?)\n{proc.stderr[-2000:]}"
                )
    version = json.loads(installed.read_text())["version"]
    assert version == KAFKAJS_VERSION, f"node_modules has kafkajs {version}, want {KAFKAJS_VERSION}"
    return NODE_MODULES
