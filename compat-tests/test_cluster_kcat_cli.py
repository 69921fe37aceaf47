"""kcat and the kbroker CLI against a three-node virtual cluster (the other clients:
test_cluster_*.py).

* kcat's idempotent acks=all producer streams records while every partition's leader
  moves and a node stops and starts again; kcat then reads every record exactly once, in
  order per partition, from the moved leaders.
* the CLI, a new process per command that asks Metadata afresh, produces to the leaders,
  produces again after every leader moved, reads everything with the leader of a partition
  stopped, and resumes a group's committed offsets after the group coordinator moved.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from collections import defaultdict

import pytest
from clients import kcat_path
from cluster_process import ClusterProcess, check_exactly_once_in_order, disrupt, next_node
from helpers import unique_topic
from process_clients import KCAT_TIMEOUT_S, cli, kcat_parse, kcat_read_all

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

PARTITIONS = 3
RECORDS = 300
SEND_PAUSE_S = 0.02


@pytest.mark.feature("cluster", client="kcat")
def test_kcat_idempotent_producer_survives_leader_moves_and_a_node_restart(cluster: ClusterProcess) -> None:
    topic = unique_topic("cluster-kcat")
    cluster.create(topic, PARTITIONS)
    cmd = [kcat_path(), "-b", cluster.bootstrap, "-P", "-t", topic, "-K", ":",
           "-X", "broker.address.family=v4", "-X", "enable.idempotence=true", "-X", "acks=all",
           "-X", "linger.ms=5", "-X", "retry.backoff.ms=100"]  # fmt: skip
    done: list[str] = []
    worker = threading.Thread(target=lambda: done.extend(disrupt(cluster, topic, PARTITIONS)))
    with tempfile.TemporaryFile() as stderr:
        producer = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr)
        assert producer.stdin is not None
        try:
            for seq in range(RECORDS):
                producer.stdin.write(b"k%d:%d\n" % (seq % 9, seq))
                producer.stdin.flush()
                if seq == 25:  # the disruption runs while kcat keeps sending
                    worker.start()
                time.sleep(SEND_PAUSE_S)
            worker.join(60)
        finally:
            producer.stdin.close()  # EOF: kcat waits for every delivery, then exits
            producer.wait(KCAT_TIMEOUT_S)
        stderr.seek(0)
        err = stderr.read()
    assert producer.returncode == 0 and b"Delivery failed" not in err, (done, err.decode()[-3000:])

    got: dict[int, list[int]] = defaultdict(list)
    for partition, _, _, value in kcat_read_all(cluster.bootstrap, topic):
        assert value is not None
        got[partition].append(int(value))
    assert sorted(v for vs in got.values() for v in vs) == list(range(RECORDS)), done
    check_exactly_once_in_order({p: vs for p, vs in got.items()}, got)
    assert len(got) == PARTITIONS, f"kcat's partitioner used only partitions {sorted(got)}"
    assert cluster.not_leader_answers() > 0  # kcat did meet the moved leaders
    assert all(cluster.partition(topic, p)["leader_epoch"] >= 1 for p in range(PARTITIONS))


def _cli_produce(bootstrap: str, topic: str, values: range) -> dict[int, int]:
    """Keyed lines through ``kbroker produce``; partition -> records written there."""
    lines = b"".join(b"k%d|%d\n" % (v % 9, v) for v in values)
    summary = json.loads(cli(bootstrap, "produce", topic, "--key-separator", "|", "--json", stdin=lines).stdout)
    assert summary["records"] == len(values), summary
    return {row["partition"]: row["records"] for row in summary["partitions"]}


def _cli_values(bootstrap: str, topic: str, *args: str) -> dict[int, list[int]]:
    out = cli(bootstrap, "consume", topic, "--exit", "--format", "%p %o %K %S %k %s\n", *args).stdout
    got: dict[int, list[int]] = defaultdict(list)
    for partition, _, _, value in kcat_parse(out):
        assert value is not None
        got[partition].append(int(value))
    return got


@pytest.mark.feature("cluster", client="kbroker-cli")
def test_cli_follows_leader_moves_a_stopped_node_and_a_coordinator_move(cluster: ClusterProcess) -> None:
    topic, group = unique_topic("cluster-cli"), unique_topic("cluster-cli-group")
    cluster.create(topic, PARTITIONS)
    bootstrap = cluster.bootstrap_of(1)  # the CLI takes one bootstrap address
    first = _cli_produce(bootstrap, topic, range(0, 60))
    assert set(first) == set(range(PARTITIONS)), first

    for p in range(PARTITIONS):
        leader = cluster.partition(topic, p)["leader"]
        cluster.move_leader(topic, p, next_node(leader))
        assert cluster.partition(topic, p)["leader"] != leader
    _cli_produce(bootstrap, topic, range(60, 120))

    victim = cluster.partition(topic, 0)["leader"]
    cluster.stop_node(victim)
    try:
        alive = next_node(victim)
        assert cluster.partition(topic, 0)["leader"] != victim
        got = _cli_values(cluster.bootstrap_of(alive), topic, "--from-beginning", "--group", group)
        check_exactly_once_in_order({p: vs for p, vs in got.items()}, got)
        assert sorted(v for vs in got.values() for v in vs) == list(range(120))
    finally:
        cluster.start_node(victim)

    before = cluster.coordinator_of(group)
    after = cluster.move_coordinator(group)
    assert after != before
    _cli_produce(bootstrap, topic, range(120, 150))
    # The group's offsets, committed at the old coordinator, are read at the new one.
    resumed = _cli_values(bootstrap, topic, "--group", group)
    assert sorted(v for vs in resumed.values() for v in vs) == list(range(120, 150))
    assert cluster.coordinator_of(group) == after
