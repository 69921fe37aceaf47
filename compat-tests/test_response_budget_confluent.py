"""kbroker.queued.max.response.bytes far below one Fetch's worth: librdkafka (confluent-kafka),
with its default 50 MiB fetch.max.bytes, still reads everything, in order (each answer is
trimmed to the budget's room, at least one batch: Kafka's first-batch rule)."""

from __future__ import annotations

import pytest
from broker_process import TARGET
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import unique_topic

pytestmark = pytest.mark.skipif(TARGET != "kbroker", reason="a kbroker property")

BUDGET_BYTES = 8 * 1024
MESSAGES = 300
VALUE_BYTES = 1024  # with batch.size 16 KiB: about 20 batches, each larger than the budget


def test_a_consumer_reads_everything_through_a_small_response_budget(broker_factory) -> None:
    broker = broker_factory({"kbroker.queued.max.response.bytes": str(BUDGET_BYTES)})
    topic = unique_topic("budget")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=20)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "batch.size": 16384, "linger.ms": 5})
    for i in range(MESSAGES):
        producer.produce(topic, value=str(i).encode().ljust(VALUE_BYTES, b"."))
    assert producer.flush(30) == 0
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap, "group.id": topic, "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    got: list[int] = []
    try:
        for _ in range(600):
            if len(got) >= MESSAGES:
                break
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(int(msg.value().rstrip(b".")))
    finally:
        consumer.close()
    assert got == list(range(MESSAGES))
