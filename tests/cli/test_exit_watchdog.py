"""The exit watchdog: once the way out has begun, a process stuck on it still ends, with its
exit status and one line saying so; and main() called inside another program never arms it."""

from __future__ import annotations

import subprocess
import sys

STUCK = """
import threading
from kbroker import cli
cli.EXIT_WATCHDOG_S = 0.5
cli._watchdog_enabled = {enabled}
cli._arm_exit_watchdog(130)
threading.Event().wait({wait_s})  # a way out that never finishes (bounded for the disabled case)
print("returned", flush=True)
"""


def test_a_stuck_exit_ends_with_its_status_and_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", STUCK.format(enabled=True, wait_s=120)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr == "kbroker: error: shutdown did not finish within 0.5 s; exiting\n"
    assert "returned" not in proc.stdout


def test_main_inside_another_program_arms_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", STUCK.format(enabled=False, wait_s=2)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "returned\n" and proc.stderr == ""
