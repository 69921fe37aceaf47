"""A short, bounded run of the kill loop (``python -m bench.soak``) so that it keeps working:
real clients (idempotent kafka-python, aiokafka, confluent-kafka and kafkajs producers, a
transactional producer, a committing group consumer) against a kbroker process that is
SIGKILLed and restarted under them; the soak's own checks must all hold."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from broker_process import ROOT, TARGET

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(300),
    pytest.mark.skipif(TARGET != "kbroker", reason="kills and restarts a kbroker process"),
]

SOAK_TIMEOUT_S = 240


def run_soak(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.soak",
            "--seed",
            "7",
            "--max-up",
            "1.5",
            "--max-seconds",
            "150",
            "--json",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SOAK_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-3000:]}"
    report = json.loads(out.read_text())
    assert report["violations"] == []
    for kind in ("kafka-python", "aiokafka", "confluent", "kafkajs"):
        figures = report["producers"][kind]
        assert figures["acknowledged"] > 0, kind
        assert figures["lost"] == figures["duplicated"] == figures["moved"] == 0, (kind, figures)
        assert figures["verified"] == figures["acknowledged"]
    assert report["txn"]["transactions"] > 0
    assert report["txn"]["consumer_seen_aborted"] == 0
    assert report["offsets"]["went_backwards"] == 0
    return report


def test_sigkill_loop(tmp_path: Path) -> None:
    report = run_soak(tmp_path, "--cycles", "3")
    assert report["cycles_run"] == 3


def test_power_loss_loop_with_flush_per_message(tmp_path: Path) -> None:
    report = run_soak(tmp_path, "--cycles", "3", "--power-loss", "--flush-every-message")
    assert report["cycles_run"] == 3
