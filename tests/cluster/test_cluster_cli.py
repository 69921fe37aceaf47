"""``kbroker --nodes N`` as a command: the ready line names every node, each answers."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from broker_harness import RawClient
from cluster_helpers import metadata

READY_TIMEOUT_S = 30
NODES = re.compile(r"; nodes ((?:\d=\S+ ?)+)")


def test_the_command_runs_a_cluster_and_names_its_nodes(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kbroker",
            "--nodes",
            "3",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = NODES.search(line)
        assert found is not None, line
        nodes = dict(item.split("=") for item in found.group(1).split())
        assert sorted(nodes) == ["1", "2", "3"]
        host, port = nodes["3"].rsplit(":", 1)
        c = RawClient((host, int(port)))
        try:
            brokers = metadata(c, []).brokers
        finally:
            c.close()
        assert sorted(f"{b.node_id}={b.host}:{b.port}" for b in brokers) == sorted(
            f"{k}={v}" for k, v in nodes.items()
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(READY_TIMEOUT_S) == 0


def test_more_than_nine_nodes_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kbroker", "--nodes", "10", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=READY_TIMEOUT_S,
    )
    assert proc.returncode != 0
    assert "kbroker.nodes" in proc.stderr
