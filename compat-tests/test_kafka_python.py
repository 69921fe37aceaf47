"""kafka-python 3.0.12 against a real broker process: admin, produce in every codec, consume by assignment."""

from __future__ import annotations

import pytest
from helpers import (
    CODECS,
    PARTITIONS,
    Got,
    check_acks,
    check_roundtrip,
    check_time_answers,
    consume_bounded,
    make_messages,
    time_queries,
    unique_topic,
    wait_until,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TIMEOUTS = {"request_timeout_ms": 10_000}


def admin_for(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-admin", **TIMEOUTS)


def consumer_for(bootstrap: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        **TIMEOUTS,
    )


def consume_all(bootstrap: str, topic: str, want: int, partitions: int = PARTITIONS) -> list[Got]:
    """Read every partition from the beginning by manual assignment (no group)."""
    consumer = consumer_for(bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)

        def poll() -> list[Got]:
            batches = consumer.poll(timeout_ms=500)
            return [
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
            ]

        got = consume_bounded(poll, want)
        # Nothing beyond what we expect shows up either.
        got.extend(poll())
        return got
    finally:
        consumer.close()


def produce(bootstrap: str, topic: str, sent, **config) -> dict[bytes, tuple[int, int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_block_ms=10_000, **TIMEOUTS, **config)
    try:
        futures = [
            (
                s.value,
                producer.send(
                    topic,
                    key=s.key,
                    value=s.value,
                    headers=list(s.headers),
                    timestamp_ms=s.timestamp,
                ),
            )
            for s in sent
        ]
        producer.flush(timeout=20)
        acked = {}
        for value, fut in futures:
            md = fut.get(timeout=10)
            acked[value] = (md.partition, md.offset)
        return acked
    finally:
        producer.close(timeout=5)


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.feature("produce", "consume", "admin", "compression:{codec}", client="kafka-python")
def test_admin_produce_consume_list_offsets_delete(broker, codec: str) -> None:
    topic = unique_topic(f"kp-{codec}")
    admin = admin_for(broker.bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)], timeout_ms=10_000
        )
        wait_until(lambda: topic in admin.list_topics(), 10, f"{topic} in the topic list")
        described = admin.describe_topics([topic])
        assert len(described[0]["partitions"]) == PARTITIONS, described

        sent = make_messages(f"kp-{codec}")
        acked = produce(
            broker.bootstrap,
            topic,
            sent,
            acks="all",
            linger_ms=20,
            compression_type=None if codec == "none" else codec,
        )
        got = consume_all(broker.bootstrap, topic, len(sent))
        by_partition = check_roundtrip(sent, got)
        check_acks(acked, by_partition)

        consumer = consumer_for(broker.bootstrap)
        try:
            tps = {p: TopicPartition(topic, p) for p in range(PARTITIONS)}
            queries = time_queries(by_partition)
            found = {
                q: consumer.offsets_for_times({tps[q.partition]: q.timestamp})[tps[q.partition]]
                for q in queries
            }
            check_time_answers(queries, lambda q: None if found[q] is None else found[q].offset)
            # The answer also carries the found record's own timestamp.
            stamps = {
                (r.partition, r.offset): r.timestamp for recs in by_partition.values() for r in recs
            }
            for q, ot in found.items():
                if ot is not None:
                    assert ot.timestamp == stamps[q.partition, ot.offset], f"{q}: answered {ot}"
            ends = consumer.end_offsets(list(tps.values()))
            assert {tp.partition: o for tp, o in ends.items()} == {
                p: len(by_partition.get(p, [])) for p in tps
            }, "high watermarks (ListOffsets latest)"
        finally:
            consumer.close()

        admin.delete_topics([topic], timeout_ms=10_000)
        wait_until(
            lambda: topic not in admin.list_topics(), 10, f"{topic} gone from the topic list"
        )
    finally:
        admin.close()
