"""confluent-kafka 2.16.1 (librdkafka 2.16.0) against a real broker process.

Admin create/describe/list_offsets/delete, produce in every codec, consume by assignment.
librdkafka insists on a group.id even for a consumer that only uses assign(); nothing
is committed and no group is joined.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    IsolationLevel,
    KafkaError,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec
from helpers import (
    CODECS,
    PARTITIONS,
    Got,
    Sent,
    check_acks,
    check_roundtrip,
    check_time_answers,
    consume_bounded,
    make_messages,
    time_queries,
    unique_topic,
    wait_until,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TIMEOUT_S = 10.0
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def common(bootstrap: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10_000,
        "broker.address.family": "v4",
        # librdkafka logs go to Python logging (captured per test), not straight to fd 2.
        "logger": LIBRDKAFKA_LOG,
    }


def produce(
    bootstrap: str, topic: str, sent: list[Sent], codec: str
) -> dict[bytes, tuple[int, int]]:
    producer = Producer(
        {
            **common(bootstrap),
            "acks": "all",
            "linger.ms": 20,
            "compression.type": codec,
            "message.timeout.ms": 20_000,
        }
    )
    acked: dict[bytes, tuple[int, int]] = {}
    errors: list[str] = []

    def on_delivery(err, msg) -> None:
        if err is not None:
            errors.append(f"{msg.value()[:20]!r}: {err}")
        else:
            acked[msg.value()] = (msg.partition(), msg.offset())

    for s in sent:
        producer.produce(
            topic,
            key=s.key,
            value=s.value,
            headers=list(s.headers),
            timestamp=s.timestamp,
            on_delivery=on_delivery,
        )
    remaining = producer.flush(25)
    assert remaining == 0, f"{remaining} messages not delivered within 25 s"
    assert not errors, f"delivery failed: {errors[:5]}"
    return acked


def consume_all(bootstrap: str, topic: str, want: int) -> list[Got]:
    consumer = Consumer(
        {
            **common(bootstrap),
            "group.id": f"compat-unused-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "fetch.wait.max.ms": 100,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])

        def poll() -> list[Got]:
            out = []
            for m in consumer.consume(num_messages=500, timeout=0.5):
                assert m.error() is None, f"consume error: {m.error()}"
                ts_type, ts = m.timestamp()
                out.append(
                    Got(
                        m.partition(),
                        m.offset(),
                        m.key(),
                        m.value(),
                        tuple(m.headers() or ()),
                        ts,
                        ts_type - 1,
                    )
                )
            return out

        got = consume_bounded(poll, want)
        got.extend(poll())
        return got
    finally:
        consumer.close()


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.feature("produce", "consume", "admin", "compression:{codec}", client="confluent-kafka")
def test_admin_produce_consume_list_offsets_delete(broker, codec: str) -> None:
    topic = unique_topic(f"ck-{codec}")
    admin = AdminClient(common(broker.bootstrap))

    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1)], operation_timeout=TIMEOUT_S)
    futures[topic].result(TIMEOUT_S)
    md = admin.list_topics(topic, timeout=TIMEOUT_S)
    assert md.topics[topic].error is None, md.topics[topic].error
    assert sorted(md.topics[topic].partitions) == list(range(PARTITIONS))
    assert md.controller_id in md.brokers, f"controller {md.controller_id} not among {md.brokers}"

    sent = make_messages(f"ck-{codec}")
    acked = produce(broker.bootstrap, topic, sent, codec)
    got = consume_all(broker.bootstrap, topic, len(sent))
    by_partition = check_roundtrip(sent, got)
    check_acks(acked, by_partition)

    # ListOffsets by time through the admin API (goes to the partition leader).
    queries = time_queries(by_partition)
    answers = {}
    for q in queries:
        tp = TopicPartition(topic, q.partition)
        res = admin.list_offsets(
            {tp: OffsetSpec.for_timestamp(q.timestamp)},
            isolation_level=IsolationLevel.READ_UNCOMMITTED,
            request_timeout=TIMEOUT_S,
        )
        info = res[tp].result(TIMEOUT_S)
        answers[q] = info.offset
    check_time_answers(queries, answers.__getitem__)
    # ... and through the consumer's offsets_for_times, plus the high watermarks.
    consumer = Consumer(
        {**common(broker.bootstrap), "group.id": f"compat-unused-{uuid.uuid4().hex[:8]}"}
    )
    try:
        for q in queries:
            [tp] = consumer.offsets_for_times(
                [TopicPartition(topic, q.partition, q.timestamp)], timeout=TIMEOUT_S
            )
            assert tp.error is None, tp.error
            answers[q] = tp.offset
        check_time_answers(queries, answers.__getitem__)
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT_S)
            assert (low, high) == (0, len(by_partition.get(p, []))), f"partition {p} watermarks"
    finally:
        consumer.close()

    admin.delete_topics([topic], operation_timeout=TIMEOUT_S)[topic].result(TIMEOUT_S)

    def gone() -> bool:
        t = admin.list_topics(timeout=TIMEOUT_S).topics.get(topic)
        return (
            t is None or t.error is not None and t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        )

    wait_until(gone, TIMEOUT_S, f"{topic} gone from metadata")
