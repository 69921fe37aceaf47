"""A Ctrl-C that CPython swallows while kbroker starts still stops it.

Before the event loop runs, SIGINT raises KeyboardInterrupt wherever Python is; inside a
weakref callback (importlib's module-lock callback during an import, in the case CI met)
CPython prints "Exception ignored" and drops it, and the broker used to start and serve as if
never interrupted.  Here the signal is raised inside a weakref callback on purpose, while
the configuration is being built, so the swallowing happens every time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cli_helpers import sigint_as_at_a_terminal

# Bounded: before the fix the broker served until killed.
RUN_TIMEOUT_S = 60.0

SCRIPT = r"""
import signal
import sys
import weakref

import kbroker.config as config
from kbroker import cli

real_build_config = config.build_config


class _Thing:
    pass


def build_config(**kwargs):
    thing = _Thing()
    ref = weakref.ref(thing, lambda _ref: signal.raise_signal(signal.SIGINT))
    del thing  # the callback runs now; its KeyboardInterrupt is "ignored" by CPython
    return real_build_config(**kwargs)


config.build_config = build_config
sys.exit(cli.main(["--listen", "127.0.0.1:0", "--data-dir", sys.argv[1]]))
"""


def test_a_sigint_python_swallowed_during_start_up_still_exits_130(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data")],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path, preexec_fn=sigint_as_at_a_terminal(),
    )
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr, done.stderr
    assert done.returncode == 130, done.stderr
    assert "serving on" not in done.stderr
