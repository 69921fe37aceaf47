"""kafka-python against a three-node virtual cluster: leader moves, a node stop/start, a coordinator move."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest
from cluster_process import ClusterProcess, check_exactly_once_in_order, disrupt
from helpers import unique_topic, wait_until
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

RECORDS = 300
PARTITIONS = 3
SEND_PAUSE_S = 0.02


def _consume_all(
    consumer: KafkaConsumer, want: int, got: dict[int, list[int]], timeout_s: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(len(v) for v in got.values()) < want and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            got[tp.partition].extend(int(r.value) for r in records)


@pytest.mark.feature("cluster", client="kafka-python")
def test_idempotent_acks_all_producer_survives_leader_moves_and_a_node_restart(
    cluster: ClusterProcess,
) -> None:
    topic = unique_topic("cluster-kp")
    cluster.create(topic, PARTITIONS)
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap,
        acks="all",
        enable_idempotence=True,
        retries=100,
        retry_backoff_ms=100,
        request_timeout_ms=10000,
        linger_ms=5,
    )
    futures = []

    def produce() -> None:
        for seq in range(RECORDS):
            futures.append(
                (
                    seq % PARTITIONS,
                    seq,
                    producer.send(topic, str(seq).encode(), partition=seq % PARTITIONS),
                )
            )
            time.sleep(SEND_PAUSE_S)

    sender = threading.Thread(target=produce)
    sender.start()
    time.sleep(0.5)
    done = disrupt(cluster, topic, PARTITIONS)
    sender.join(60)
    producer.flush(60)
    producer.close()
    acked: dict[int, list[int]] = defaultdict(list)
    for partition, seq, fut in futures:
        if fut.succeeded():
            acked[partition].append(seq)
    assert sum(len(v) for v in acked.values()) == RECORDS, (
        f"after {done}: {RECORDS - sum(map(len, acked.values()))} sends failed"
    )
    consumer = KafkaConsumer(
        bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    got: dict[int, list[int]] = defaultdict(list)
    _consume_all(consumer, RECORDS, got)
    consumer.close()
    check_exactly_once_in_order(acked, got)
    assert cluster.not_leader_answers() > 0  # the client did meet the moved leaders
    # The epochs moved: each partition changed leader at least once.
    assert all(cluster.partition(topic, p)["leader_epoch"] >= 1 for p in range(PARTITIONS))


@pytest.mark.feature("cluster", client="kafka-python")
def test_group_consumer_survives_a_coordinator_move(cluster: ClusterProcess) -> None:
    topic, group = unique_topic("cluster-kp-group"), unique_topic("group")
    cluster.create(topic, PARTITIONS)
    producer = KafkaProducer(
        bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True
    )
    for seq in range(30):
        producer.send(topic, str(seq).encode(), partition=seq % PARTITIONS)
    producer.flush(30)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=cluster.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=10000,
        heartbeat_interval_ms=500,
    )
    got: dict[int, list[int]] = defaultdict(list)
    _consume_all(consumer, 30, got)
    consumer.commit()
    before = cluster.coordinator_of(group)
    after = cluster.move_coordinator(group)
    assert after != before
    for seq in range(30, 60):
        producer.send(topic, str(seq).encode(), partition=seq % PARTITIONS)
    producer.flush(30)
    producer.close()
    _consume_all(consumer, 60, got)
    consumer.commit()  # reaches the new coordinator
    committed = {p: consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    consumer.close()
    check_exactly_once_in_order({p: list(range(p, 60, PARTITIONS)) for p in range(PARTITIONS)}, got)
    assert sum(len(v) for v in got.values()) == 60
    assert sum(committed.values()) == 60
    wait_until(
        lambda: cluster.coordinator_of(group) == after,
        10,
        "the group's coordinator to be the new node",
    )
