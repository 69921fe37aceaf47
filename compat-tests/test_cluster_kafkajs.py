"""kafkajs 2.2.4 against a three-node virtual cluster: leader moves, a node stop/start, a
coordinator move.  The driver runs in its own node process (js/driver.js), started in the
background so the cluster can be disturbed while it produces or consumes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from clients import JS_DIR, kafkajs_node_modules
from cluster_process import ClusterProcess, check_exactly_once_in_order, disrupt
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

DRIVER = JS_DIR / "driver.js"
NODE_TIMEOUT_S = 120
RECORDS = 200
PARTITIONS = 3


@pytest.fixture(scope="module")
def kafkajs() -> Path:
    kafkajs_node_modules()
    return JS_DIR


@pytest.fixture
def cluster(cluster: ClusterProcess, kafkajs: Path) -> ClusterProcess:
    """The suite's cluster (conftest.py), once kafkajs is installed."""
    return cluster


def start_js(command: str, request: dict[str, Any]) -> subprocess.Popen[str]:
    """The driver running ``command`` in the background (its request read from a temporary file)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as stdin:
        stdin.write(json.dumps(request))
        stdin.seek(0)
        return subprocess.Popen(
            ["node", str(DRIVER), command],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=JS_DIR,
            env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
        )


def finish_js(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, err = proc.communicate(timeout=NODE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = out.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    assert proc.returncode == 0 and "error" not in result, (
        f"kafkajs failed: {result.get('error')}\n{err[-4000:]}"
    )
    return result


@pytest.mark.feature("cluster", client="kafkajs")
def test_idempotent_acks_all_producer_survives_leader_moves_and_a_node_restart(
    cluster: ClusterProcess,
) -> None:
    topic = unique_topic("cluster-js")
    cluster.create(topic, PARTITIONS)
    proc = start_js(
        "cluster-produce",
        {
            "bootstrap": cluster.bootstrap,
            "topic": topic,
            "partitions": PARTITIONS,
            "count": RECORDS,
            "pauseMs": 25,
        },
    )
    time.sleep(1.5)  # node start-up and the first sends
    done = disrupt(cluster, topic, PARTITIONS)
    produced = finish_js(proc)
    assert produced["failed"] == [], f"after {done}: {produced['failed'][:5]}"
    acked: dict[int, list[int]] = defaultdict(list)
    for r in produced["acked"]:
        acked[r["partition"]].append(r["value"])
    assert sum(map(len, acked.values())) == RECORDS
    consumed = finish_js(
        start_js(
            "consume",
            {
                "bootstrap": cluster.bootstrap,
                "topic": topic,
                "group": unique_topic("reader"),
                "want": RECORDS,
                "timeoutMs": 30000,
            },
        )
    )
    got: dict[int, list[int]] = defaultdict(list)
    for r in sorted(consumed["records"], key=lambda r: (r["partition"], r["offset"])):
        got[r["partition"]].append(int(base64.b64decode(r["value"])))
    check_exactly_once_in_order(acked, got)
    assert cluster.not_leader_answers() > 0  # the client did meet the moved leaders


@pytest.mark.feature("cluster", client="kafkajs")
def test_group_consumer_survives_a_coordinator_move(cluster: ClusterProcess) -> None:
    topic, group = unique_topic("cluster-js-group"), unique_topic("group")
    cluster.create(topic, PARTITIONS)
    first = finish_js(
        start_js(
            "cluster-produce",
            {"bootstrap": cluster.bootstrap, "topic": topic, "partitions": PARTITIONS, "count": 30},
        )
    )
    assert len(first["acked"]) == 30
    consumer = start_js(
        "cluster-consume",
        {
            "bootstrap": cluster.bootstrap,
            "topic": topic,
            "group": group,
            "want": 60,
            "timeoutMs": 60000,
        },
    )
    deadline = time.monotonic() + 30
    while group not in cluster.command(op="state")["groups"] and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(2)  # joined and reading the first 30
    target = cluster.move_coordinator(group)
    second = finish_js(
        start_js(
            "cluster-produce",
            {
                "bootstrap": cluster.bootstrap,
                "topic": topic,
                "partitions": PARTITIONS,
                "first": 30,
                "count": 60,
            },
        )
    )
    assert len(second["acked"]) == 30
    result = finish_js(consumer)
    values = {r["value"] for r in result["records"]}
    assert values == set(range(60))
    assert sum(p["offset"] for p in result["committed"]) == 60
    assert cluster.coordinator_of(group) == target
