"""confluent-kafka (librdkafka) against a three-node virtual cluster: leader moves, a node
stop/start, a coordinator move."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from cluster_process import ClusterProcess, check_exactly_once_in_order, disrupt, next_node
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

RECORDS = 300
PARTITIONS = 3
SEND_PAUSE_S = 0.02
CONSUME_TIMEOUT_S = 60.0


def _producer(cluster: ClusterProcess) -> Producer:
    return Producer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "retry.backoff.ms": 100,
        }
    )


def _consume(consumer: Consumer, want: int, got: dict[int, list[int]]) -> None:
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    while sum(len(v) for v in got.values()) < want and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=500, timeout=0.5):
            if m.error() is not None:
                continue  # informational (partition EOF, a transient broker error)
            got[m.partition()].append(int(m.value()))


@pytest.mark.feature("cluster", client="confluent-kafka")
def test_idempotent_acks_all_producer_survives_leader_moves_and_a_node_restart(
    cluster: ClusterProcess,
) -> None:
    topic = unique_topic("cluster-ck")
    cluster.create(topic, PARTITIONS)
    producer = _producer(cluster)
    acked: dict[int, list[int]] = defaultdict(list)
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
        else:
            acked[msg.partition()].append(int(msg.value()))

    done: list[str] = []
    disruption = threading.Thread(target=lambda: done.extend(disrupt(cluster, topic, PARTITIONS)))
    disruption.start()
    time.sleep(0.5)
    for seq in range(RECORDS):
        producer.produce(
            topic, str(seq).encode(), partition=seq % PARTITIONS, on_delivery=on_delivery
        )
        producer.poll(0)
        time.sleep(SEND_PAUSE_S)
    disruption.join(60)
    assert producer.flush(60) == 0
    assert not errors, f"after {done}: delivery failed: {errors[:5]}"
    assert sum(len(v) for v in acked.values()) == RECORDS
    for values in acked.values():
        values.sort()  # delivery reports come per partition in order; sorted for the comparison
    consumer = Consumer(
        {"bootstrap.servers": cluster.bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got: dict[int, list[int]] = defaultdict(list)
    try:
        _consume(consumer, RECORDS, got)
    finally:
        consumer.close()
    check_exactly_once_in_order(acked, got)
    assert cluster.not_leader_answers() > 0  # the client did meet the moved leaders


@pytest.mark.feature("cluster", client="confluent-kafka")
def test_group_consumer_survives_a_coordinator_move(cluster: ClusterProcess) -> None:
    topic, group = unique_topic("cluster-ck-group"), unique_topic("group")
    cluster.create(topic, PARTITIONS)
    producer = _producer(cluster)
    for seq in range(30):
        producer.produce(topic, str(seq).encode(), partition=seq % PARTITIONS)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 500,
        }
    )
    consumer.subscribe([topic])
    got: dict[int, list[int]] = defaultdict(list)
    try:
        _consume(consumer, 30, got)
        consumer.commit(asynchronous=False)
        target = cluster.move_coordinator(group)
        for seq in range(30, 60):
            producer.produce(topic, str(seq).encode(), partition=seq % PARTITIONS)
        assert producer.flush(30) == 0
        _consume(consumer, 60, got)
        consumer.commit(asynchronous=False)  # reaches the new coordinator
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10
        )
    finally:
        consumer.close()
    check_exactly_once_in_order({p: list(range(p, 60, PARTITIONS)) for p in range(PARTITIONS)}, got)
    assert sum(len(v) for v in got.values()) == 60
    assert sum(tp.offset for tp in committed) == 60
    assert cluster.coordinator_of(group) == target


@pytest.mark.feature("cluster", client="confluent-kafka")
def test_transactions_commit_and_abort_across_leader_and_coordinator_moves(
    cluster: ClusterProcess,
) -> None:
    topic, tid = unique_topic("cluster-ck-txn"), unique_topic("tid")
    cluster.create(topic, PARTITIONS)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": tid})
    producer.init_transactions(30)
    committed: dict[int, list[int]] = defaultdict(list)
    for round_ in range(4):
        producer.begin_transaction()
        for i in range(30):
            seq = round_ * 100 + i
            producer.produce(topic, str(seq).encode(), partition=i % PARTITIONS)
        if round_ == 1:
            producer.abort_transaction(30)
        else:
            producer.commit_transaction(30)
            for i in range(30):
                committed[i % PARTITIONS].append(round_ * 100 + i)
        if round_ == 0:
            cluster.move_leader(topic, 0, next_node(cluster.partition(topic, 0)["leader"]))
        if round_ == 2:
            cluster.move_txn_coordinator(tid)
    consumer = Consumer(
        {
            "bootstrap.servers": cluster.bootstrap,
            "group.id": "unused",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    got: dict[int, list[int]] = defaultdict(list)
    try:
        _consume(consumer, 90, got)
    finally:
        consumer.close()
    check_exactly_once_in_order(committed, got)
    assert sorted(v for values in got.values() for v in values) == sorted(
        v for values in committed.values() for v in values
    )
