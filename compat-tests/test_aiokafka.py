"""aiokafka 0.14.0 against a real broker process: admin, produce in every codec, consume by assignment."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from helpers import (
    CODECS,
    PARTITIONS,
    Got,
    Sent,
    check_acks,
    check_roundtrip,
    check_time_answers,
    make_messages,
    time_queries,
    unique_topic,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

REQUEST_TIMEOUT_MS = 10_000
CONSUME_TIMEOUT_S = 20.0


async def produce(
    bootstrap: str, topic: str, sent: list[Sent], codec: str
) -> dict[bytes, tuple[int, int]]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        compression_type=None if codec == "none" else codec,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, key=s.key, value=s.value, headers=list(s.headers), timestamp_ms=s.timestamp
            )
            for s in sent
        ]
        metas = await asyncio.wait_for(asyncio.gather(*futures), 20)
        return {s.value: (md.partition, md.offset) for s, md in zip(sent, metas, strict=True)}
    finally:
        await producer.stop()


async def consume_all(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], want: int
) -> list[Got]:
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    got: list[Got] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONSUME_TIMEOUT_S
    while len(got) < want and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        got.extend(
            Got(
                r.partition,
                r.offset,
                r.key,
                r.value,
                tuple(r.headers),
                r.timestamp,
                r.timestamp_type,
            )
            for recs in batches.values()
            for r in recs
        )
    # One more round, so that duplicates or strays would show up too.
    batches = await consumer.getmany(timeout_ms=300)
    got.extend(
        Got(r.partition, r.offset, r.key, r.value, tuple(r.headers), r.timestamp, r.timestamp_type)
        for recs in batches.values()
        for r in recs
    )
    return got


async def scenario(bootstrap: str, codec: str) -> None:
    topic = unique_topic(f"aio-{codec}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
        assert topic in await admin.list_topics()
        described = await admin.describe_topics([topic])
        assert len(described[0]["partitions"]) == PARTITIONS, described

        sent = make_messages(f"aio-{codec}")
        acked = await produce(bootstrap, topic, sent, codec)

        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=100,
            request_timeout_ms=REQUEST_TIMEOUT_MS,
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            got = await consume_all(consumer, tps, len(sent))
            by_partition = check_roundtrip(sent, got)
            check_acks(acked, by_partition)

            queries = time_queries(by_partition)
            found = {}
            for q in queries:
                tp = tps[q.partition]
                found[q] = (await consumer.offsets_for_times({tp: q.timestamp}))[tp]
            check_time_answers(queries, lambda q: None if found[q] is None else found[q].offset)
            stamps = {
                (r.partition, r.offset): r.timestamp for recs in by_partition.values() for r in recs
            }
            for q, ot in found.items():
                if ot is not None:
                    assert ot.timestamp == stamps[q.partition, ot.offset], f"{q}: answered {ot}"

            ends = await consumer.end_offsets(tps)
            assert {tp.partition: o for tp, o in ends.items()} == {
                p: len(by_partition.get(p, [])) for p in range(PARTITIONS)
            }, "high watermarks (ListOffsets latest)"
        finally:
            await consumer.stop()

        await admin.delete_topics([topic])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while topic in await admin.list_topics():
            assert loop.time() < deadline, f"{topic} still listed 10 s after DeleteTopics"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.feature("produce", "consume", "admin", "compression:{codec}", client="aiokafka")
def test_admin_produce_consume_list_offsets_delete(broker, codec: str) -> None:
    asyncio.run(asyncio.wait_for(scenario(broker.bootstrap, codec), 90))
