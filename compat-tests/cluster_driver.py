"""A virtual-cluster broker process for the cluster compat tests, steered over stdin.

    python cluster_driver.py DATA_DIR NODES

Starts kbroker with ``kbroker.nodes=NODES`` on ephemeral loopback ports (the in-process
test broker, kbroker.testing.BrokerThread), prints one JSON line with the cluster state,
then answers one JSON command per stdin line with one JSON line on stdout:

    {"op": "state"} | {"op": "stop", "node": 2} | {"op": "start", "node": 2}
    {"op": "move", "topic": "t", "partition": 0, "node": 3}
    {"op": "create", "topic": "t", "partitions": 3, "replication_factor": 3}
    {"op": "move-coordinator", "group": "g", "node": 2}   (or "transactional_id": "tid")
    {"op": "coordinator", "key_type": 1, "key": "tid"}
    {"op": "errors"}

Answers are {"ok": RESULT} or {"error": "..."}.  End of stdin stops the broker.  The
control operations are the ones the control API serves over HTTP (POST /v1/nodes/...).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from kbroker.testing import BrokerThread


def _create(bt: BrokerThread, cmd: dict[str, Any]) -> Any:
    assert bt.broker is not None
    broker = bt.broker

    async def create() -> None:
        from kbroker.clock import now_ms

        broker.topics.check_new_topic(
            cmd["topic"], cmd["partitions"], cmd["replication_factor"], {}
        )
        broker.topics.create_topic(
            cmd["topic"], cmd["partitions"], {}, now_ms(), cmd["replication_factor"]
        )

    bt.call(create())
    return bt.cluster_state()["topics"][cmd["topic"]]


def _run(bt: BrokerThread, cmd: dict[str, Any]) -> Any:
    op = cmd["op"]
    if op == "state":
        return bt.cluster_state()
    if op == "stop":
        bt.stop_node(cmd["node"])
        return bt.cluster_state()
    if op == "start":
        bt.start_node(cmd["node"])
        return bt.cluster_state()
    if op == "move":
        bt.move_leader(cmd["topic"], cmd["partition"], cmd["node"])
        return bt.cluster_state()
    if op == "create":
        return _create(bt, cmd)
    if op == "move-coordinator":  # the leader of the key's internal-topic partition
        from kbroker.cluster import java_string_hash

        internal, key = (
            ("__transaction_state", cmd["transactional_id"])
            if "transactional_id" in cmd
            else ("__consumer_offsets", cmd["group"])
        )
        partitions = bt.cluster_state()["topics"][internal]["partitions"]
        partition = (java_string_hash(key) & 0x7FFFFFFF) % len(partitions)
        bt.move_leader(internal, partition, cmd["node"])
        return bt.cluster_state()
    if op == "errors":  # how often the broker answered an API with an error: {"0:6": n}
        assert bt.broker is not None
        return {f"{key}:{code}": n for (key, code), n in bt.broker.stats.errors.items()}
    if op == "coordinator":  # which node coordinates a group (key_type 0) or transactional id (1)
        assert bt.broker is not None and bt.broker.cluster is not None
        return bt.broker.cluster.coordinator_of(cmd["key_type"], cmd["key"])
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    data_dir, nodes = Path(sys.argv[1]), sys.argv[2]
    settings = {"kbroker.nodes": nodes, **dict(a.split("=", 1) for a in sys.argv[3:])}
    bt = BrokerThread(data_dir, settings)
    try:
        bt.start()
        print(json.dumps({"ok": bt.cluster_state()}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                answer = {"ok": _run(bt, json.loads(line))}
            except Exception as exc:  # reported to the test, which fails on it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        bt.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
