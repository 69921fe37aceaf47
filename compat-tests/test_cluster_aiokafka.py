"""aiokafka against a three-node virtual cluster: leader moves, a node stop/start, a coordinator move."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cluster_process import ClusterProcess, check_exactly_once_in_order, disrupt
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

RECORDS = 300
PARTITIONS = 3
SEND_PAUSE_S = 0.02
CONSUME_TIMEOUT_S = 60.0


async def _consume(consumer: AIOKafkaConsumer, want: int, got: dict[int, list[int]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONSUME_TIMEOUT_S
    while sum(len(v) for v in got.values()) < want and loop.time() < deadline:
        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
            got[tp.partition].extend(int(r.value) for r in records)


@pytest.mark.feature("cluster", client="aiokafka")
def test_idempotent_acks_all_producer_survives_leader_moves_and_a_node_restart(
    cluster: ClusterProcess,
) -> None:
    topic = unique_topic("cluster-aio")
    cluster.create(topic, PARTITIONS)

    async def run() -> tuple[dict[int, list[int]], dict[int, list[int]], list[str]]:
        producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10000,
            retry_backoff_ms=100,
            linger_ms=5,
        )
        await producer.start()
        sends = []
        try:
            disruption = asyncio.ensure_future(
                asyncio.to_thread(disrupt, cluster, topic, PARTITIONS)
            )
            await asyncio.sleep(0.5)
            for seq in range(RECORDS):
                sends.append(
                    (
                        seq % PARTITIONS,
                        seq,
                        await producer.send(topic, str(seq).encode(), partition=seq % PARTITIONS),
                    )
                )
                await asyncio.sleep(SEND_PAUSE_S)
            done = await disruption
            results = await asyncio.gather(*(f for _, _, f in sends), return_exceptions=True)
        finally:
            await producer.stop()
        acked: dict[int, list[int]] = defaultdict(list)
        for (partition, seq, _), result in zip(sends, results, strict=True):
            if not isinstance(result, BaseException):
                acked[partition].append(seq)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cluster.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        got: dict[int, list[int]] = defaultdict(list)
        try:
            consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            await _consume(consumer, RECORDS, got)
        finally:
            await consumer.stop()
        return acked, got, done

    acked, got, done = asyncio.run(run())
    assert sum(len(v) for v in acked.values()) == RECORDS, f"after {done}: some sends failed"
    check_exactly_once_in_order(acked, got)
    assert cluster.not_leader_answers() > 0  # the client did meet the moved leaders


@pytest.mark.feature("cluster", client="aiokafka")
def test_group_consumer_survives_a_coordinator_move(cluster: ClusterProcess) -> None:
    topic, group = unique_topic("cluster-aio-group"), unique_topic("group")
    cluster.create(topic, PARTITIONS)

    async def produce(producer: AIOKafkaProducer, seqs: range) -> None:
        futures = [
            await producer.send(topic, str(s).encode(), partition=s % PARTITIONS) for s in seqs
        ]
        await asyncio.gather(*futures)

    async def run() -> tuple[dict[int, list[int]], dict[TopicPartition, int], int]:
        producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=cluster.bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        got: dict[int, list[int]] = defaultdict(list)
        try:
            await produce(producer, range(30))
            await _consume(consumer, 30, got)
            await consumer.commit()
            target = await asyncio.to_thread(cluster.move_coordinator, group)
            await produce(producer, range(30, 60))
            await _consume(consumer, 60, got)
            await consumer.commit()  # reaches the new coordinator
            committed = {tp: await consumer.committed(tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()
            await producer.stop()
        return got, committed, target

    got, committed, target = asyncio.run(run())
    check_exactly_once_in_order({p: list(range(p, 60, PARTITIONS)) for p in range(PARTITIONS)}, got)
    assert sum(len(v) for v in got.values()) == 60
    assert sum(committed.values()) == 60
    assert cluster.coordinator_of(group) == target
