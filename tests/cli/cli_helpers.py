"""Run the ``kbroker`` command in a subprocess and read what it says."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

# Generous: the machine is shared; these bound a wait, they assert nothing about speed.
START_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0
READY = re.compile(r"^kbroker \S+ serving on (?P<addr>\S+) \(advertised (?P<adv>\S+)\), data dir ")


def sigint_as_at_a_terminal(then: Callable[[], None] | None = None) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child SIGINT's default disposition (then running ``then``).

    A shell starts background jobs (``./.ci/run &``, ``nohup``) with SIGINT ignored, the child
    inherits that, and CPython then installs no KeyboardInterrupt handler: the SIGINT tests
    would test the shell, not kbroker.  Ctrl-C at a terminal finds SIGINT at its default.
    """

    def preexec() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()

    return preexec


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KBROKER_")}
    env.update(extra)
    return env


def command(*args: str, python_flags: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, *python_flags, "-m", "kbroker", *args]


def run_kbroker(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run to completion (for start-up failures, which exit at once)."""
    return subprocess.run(
        command(*args), cwd=cwd, env=env or clean_env(), capture_output=True, text=True,
        timeout=EXIT_TIMEOUT_S, stdin=subprocess.DEVNULL,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> str:
    """Exit ``code``, and stderr is exactly one ``kbroker: error:`` line containing ``fragment``."""
    lines = proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kbroker: error: "), lines
    assert fragment in lines[0], lines
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    return lines[0]


class Running:
    """A ``kbroker`` process started in the background; ``lines`` is its stderr so far."""

    def __init__(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, python_flags: tuple[str, ...] = (),
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            command(*args, python_flags=python_flags), cwd=cwd, env=env or clean_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=sigint_as_at_a_terminal(preexec_fn),
        )
        self.lines: list[str] = []
        self._partial = b""

    def wait_for(self, pattern: re.Pattern[str], timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        """Read stderr until a line matches (or fail with what was read)."""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + timeout
        checked = 0
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                for line in self.lines[checked:]:
                    m = pattern.search(line)
                    if m:
                        return m
                checked = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    break
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                *whole, self._partial = (self._partial + chunk).split(b"\n")
                self.lines.extend(w.decode("utf-8", "replace") for w in whole)
        raise AssertionError(f"no line matching {pattern.pattern!r}; stderr so far: {self.lines}")

    def wait_ready(self) -> re.Match[str]:
        return self.wait_for(READY)

    def finish(self, timeout: float = EXIT_TIMEOUT_S) -> tuple[int, str]:
        """Wait for the exit; the exit status and all of stderr.  A process that has not
        exited in time is killed before the failure is raised (no broker outlives its test)."""
        try:
            _out, rest = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        tail = (self._partial + (rest or b"")).decode("utf-8", "replace")
        return self.proc.returncode, "\n".join([*self.lines, tail])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=EXIT_TIMEOUT_S)
