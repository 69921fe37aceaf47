"""A virtual cluster (kbroker.nodes=3) in its own process, and the scenario every client runs.

The broker process is ``cluster_driver.py``; the tests steer it (stop/start a node, move
a leader) through its stdin while a real client produces or consumes over TCP.  Only the
standard library and pytest are imported here.  The ``cluster`` fixture defined here is
registered by conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# How long one control command may take (a node start rebinds its port).
COMMAND_TIMEOUT_S = 30.0
START_TIMEOUT_S = 30.0
NODES = 3


class ClusterProcess:
    """A three-node virtual cluster in a subprocess, steered over its stdin."""

    def __init__(
        self, data_dir: Path, log_path: Path, settings: dict[str, str] | None = None
    ) -> None:
        args = [f"{k}={v}" for k, v in (settings or {}).items()]
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "cluster_driver.py"), str(data_dir), str(NODES), *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._lock = threading.Lock()
        self.state: dict[str, Any] = self._read(START_TIMEOUT_S)

    def _read(self, timeout: float) -> Any:
        stdout = self.proc.stdout
        assert stdout is not None
        result: list[str] = []
        reader = threading.Thread(target=lambda: result.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not result or not result[0]:
            raise RuntimeError(
                f"cluster driver gave no answer within {timeout:.0f} s (exit {self.proc.poll()})"
            )
        answer = json.loads(result[0])
        if "error" in answer:
            raise RuntimeError(f"cluster driver: {answer['error']}")
        return answer["ok"]

    def command(self, **cmd: Any) -> Any:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            result = self._read(COMMAND_TIMEOUT_S)
        if isinstance(result, dict) and "nodes" in result:
            self.state = result
        return result

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{n['host']}:{n['port']}" for n in self.state["nodes"])

    def bootstrap_of(self, node_id: int) -> str:
        node = next(n for n in self.state["nodes"] if n["id"] == node_id)
        return f"{node['host']}:{node['port']}"

    def create(self, topic: str, partitions: int, replication_factor: int = NODES) -> None:
        self.command(
            op="create", topic=topic, partitions=partitions, replication_factor=replication_factor
        )

    def partition(self, topic: str, partition: int) -> dict[str, Any]:
        result: dict[str, Any] = self.command(op="state")["topics"][topic]["partitions"][partition]
        return result

    def move_leader(self, topic: str, partition: int, node: int) -> None:
        self.command(op="move", topic=topic, partition=partition, node=node)

    def stop_node(self, node: int) -> None:
        self.command(op="stop", node=node)

    def start_node(self, node: int) -> None:
        self.command(op="start", node=node)

    def coordinator_of(self, group: str) -> int:
        groups = self.command(op="state")["groups"]
        coordinator: int = groups[group]["coordinator"]
        return coordinator

    def move_coordinator(self, group: str) -> int:
        """Move the group's coordinator to the next node; returns the new coordinator."""
        target = next_node(self.coordinator_of(group))
        self.command(op="move-coordinator", group=group, node=target)
        return target

    def move_txn_coordinator(self, transactional_id: str) -> int:
        """Move the transactional id's coordinator to the next node; returns the new one."""
        target = next_node(self.command(op="coordinator", key_type=1, key=transactional_id))
        self.command(op="move-coordinator", transactional_id=transactional_id, node=target)
        return target

    def not_leader_answers(self) -> int:
        """How many Produce partitions the broker answered NOT_LEADER_OR_FOLLOWER (code 6)."""
        errors: dict[str, int] = self.command(op="errors")
        return errors.get("0:6", 0)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()  # end of input: the driver stops the broker
        try:
            self.proc.wait(COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(COMMAND_TIMEOUT_S)
        self._log.close()


@pytest.fixture(name="cluster")
def cluster_fixture(tmp_path: Path) -> Iterator[ClusterProcess]:
    """A running cluster for one test, its data and log under the test's ``tmp_path``."""
    c = ClusterProcess(tmp_path / "data", tmp_path / "cluster.log")
    try:
        yield c
    finally:
        c.close()


def next_node(node: int) -> int:
    return node % NODES + 1


def disrupt(cluster: ClusterProcess, topic: str, partitions: int) -> list[str]:
    """The faults a producer lives through: every partition's leader moves, then the node
    leading partition 0 stops and starts again.  Returns what was done, for messages."""
    import time

    done = []
    for p in range(partitions):
        leader = cluster.partition(topic, p)["leader"]
        cluster.move_leader(topic, p, next_node(leader))
        done.append(f"moved {topic}-{p} from {leader}")
        time.sleep(0.3)
    victim = cluster.partition(topic, 0)["leader"]
    cluster.stop_node(victim)
    done.append(f"stopped node {victim}")
    time.sleep(1.5)
    cluster.start_node(victim)
    done.append(f"started node {victim}")
    time.sleep(0.3)
    leader = cluster.partition(topic, 1)["leader"]
    cluster.move_leader(topic, 1, next_node(leader))
    done.append(f"moved {topic}-1 from {leader}")
    return done


def check_exactly_once_in_order(
    acked: dict[int, list[int]], consumed: dict[int, list[int]]
) -> None:
    """Every acknowledged value consumed exactly once, and each partition in send order."""
    for partition, values in consumed.items():
        assert len(values) == len(set(values)), (
            f"partition {partition}: duplicates {sorted(values)}"
        )
        assert values == sorted(values), f"partition {partition}: out of order {values}"
    for partition, values in acked.items():
        missing = set(values) - set(consumed.get(partition, []))
        assert not missing, (
            f"partition {partition}: acknowledged but not consumed {sorted(missing)}"
        )
    assert sum(len(v) for v in acked.values()) > 0
