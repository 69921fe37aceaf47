"""Durability and exactly-once-append checks with real clients and a real broker process.

* a graceful restart (SIGTERM, exit 0) between produce and consume loses nothing;
* SIGKILL right after acks=all acknowledgements: nothing acknowledged is lost and
  every record is still at the offset its acknowledgement reported;
* kafka-python's default (idempotent) producer writes no duplicates, also when a
  produce response is lost and the client retries a batch the broker already appended.

Restart tests need a persistent broker and skip on the Tansu stand-in.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from confluent_kafka import Producer
from faultproxy import FaultProxy
from helpers import (
    PARTITIONS,
    check_acks,
    check_roundtrip,
    make_messages,
    unique_topic,
)
from kafka import KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from test_kafka_python import admin_for, consume_all, consumer_for, produce

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]


def create_topic(bootstrap: str, topic: str) -> None:
    admin = admin_for(bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)], timeout_ms=10_000
        )
    finally:
        admin.close()


def high_watermarks(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = consumer_for(bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return {tp.partition: o for tp, o in ends.items()}
    finally:
        consumer.close()


@pytest.mark.feature("durability", client="kafka-python")
def test_restart_between_produce_and_consume(persistent_broker) -> None:
    broker = persistent_broker
    topic = unique_topic("restart")
    create_topic(broker.bootstrap, topic)
    first = make_messages("before-restart", count=120)
    acked = produce(
        broker.bootstrap, topic, first, acks="all", linger_ms=10, compression_type="gzip"
    )
    before = high_watermarks(broker.bootstrap, topic)

    broker.restart()  # SIGTERM, exit code 0, start again on the same port and data dir

    assert high_watermarks(broker.bootstrap, topic) == before
    by_partition = check_roundtrip(first, consume_all(broker.bootstrap, topic, len(first)))
    check_acks(acked, by_partition)

    # Appends after the restart continue the offsets; nothing is overwritten.
    second = make_messages("after-restart", count=60)
    acked.update(produce(broker.bootstrap, topic, second, acks="all", linger_ms=10))
    by_partition = check_roundtrip(first + second, consume_all(broker.bootstrap, topic, 180))
    check_acks(acked, by_partition)


@pytest.mark.parametrize("client", ["kafka-python", "confluent-kafka"])
@pytest.mark.feature("durability", client="{client}")
def test_sigkill_after_acks_all_loses_nothing(persistent_broker, client: str) -> None:
    broker = persistent_broker
    topic = unique_topic("sigkill")
    create_topic(broker.bootstrap, topic)
    sent = make_messages(f"sigkill-{client}", count=300, keys=24)

    if client == "kafka-python":
        acked = produce(broker.bootstrap, topic, sent, acks="all", linger_ms=5)
    else:
        acked = {}
        producer = Producer(
            {
                "bootstrap.servers": broker.bootstrap,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 20_000,
                "logger": logging.getLogger("librdkafka"),  # not straight to fd 2
            }
        )

        def on_delivery(err, msg) -> None:
            assert err is None, err
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
        assert producer.flush(25) == 0
    assert len(acked) == len(sent)
    before = high_watermarks(broker.bootstrap, topic)

    broker.kill()  # SIGKILL: no shutdown path runs
    broker.start()

    assert high_watermarks(broker.bootstrap, topic) == before
    by_partition = check_roundtrip(sent, consume_all(broker.bootstrap, topic, len(sent)))
    check_acks(acked, by_partition)


@pytest.mark.feature("idempotence", client="kafka-python")
def test_kafka_python_default_producer_is_idempotent_and_writes_no_duplicates(broker) -> None:
    topic = unique_topic("idem")
    create_topic(broker.bootstrap, topic)
    sent = make_messages("idem-default", count=300, keys=24)

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    try:
        assert producer.config["enable_idempotence"], (
            "kafka-python's default is no longer idempotent"
        )
        futures = {
            s.value: producer.send(
                topic, key=s.key, value=s.value, headers=list(s.headers), timestamp_ms=s.timestamp
            )
            for s in sent
        }
        producer.flush(timeout=20)
        acked = {
            v: (md.partition, md.offset) for v, f in futures.items() for md in [f.get(timeout=10)]
        }
        pid = producer._transaction_manager.producer_id_and_epoch
        assert pid.is_valid, f"InitProducerId gave no producer id: {pid}"
    finally:
        producer.close(timeout=5)

    by_partition = check_roundtrip(sent, consume_all(broker.bootstrap, topic, len(sent)))
    check_acks(acked, by_partition)


@pytest.mark.feature("idempotence", client="kafka-python")
def test_kafka_python_idempotent_retry_after_lost_produce_response_no_duplicates(
    broker_factory,
) -> None:
    """The broker appends, the response is lost, kafka-python retries the same batch.

    The retry carries the same producer id, epoch and sequence; the broker must answer
    it as a duplicate (or with the original offset) instead of appending again.
    """
    proxy = FaultProxy()
    try:
        broker = broker_factory(advertise=f"127.0.0.1:{proxy.port}")
        proxy.target_port = broker.port
        bootstrap = f"127.0.0.1:{proxy.port}"
        topic = unique_topic("idem-retry")
        create_topic(bootstrap, topic)

        sent = make_messages(f"idem-retry-{uuid.uuid4().hex[:6]}", count=90, keys=12)
        proxy.drop_produce_responses(3)
        acked = produce(bootstrap, topic, sent, linger_ms=5, retry_backoff_ms=100)
        assert proxy.dropped >= 1, (
            "no produce response was dropped: the test did not exercise a retry"
        )

        by_partition = check_roundtrip(sent, consume_all(bootstrap, topic, len(sent)))
        # Kafka answers a retried batch it still remembers with the original offsets.
        unknown = [v for v, (_, offset) in acked.items() if offset < 0]
        assert not unknown, (
            f"{len(unknown)} records acknowledged with offset -1: the retried batch was answered "
            "with DUPLICATE_SEQUENCE_NUMBER instead of the original batch's offsets"
        )
        check_acks(acked, by_partition)
    finally:
        proxy.close()


@pytest.mark.feature("idempotence", client="kafka-python")
def test_kafka_python_idempotent_broker_side_retry_no_duplicates(broker_factory) -> None:
    """The broker stores a batch but answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (a retriable
    error, injected every 2nd partition append; a topic of 3 partitions gets at least 3); kafka-python's default idempotent producer
    retries the same batch, which the broker must recognise as a duplicate."""
    broker = broker_factory(settings={"kbroker.test.fail.produce.after.append.every": "2"})
    topic = unique_topic("idem-broker-retry")
    create_topic(broker.bootstrap, topic)
    sent = make_messages(f"idem-broker-retry-{uuid.uuid4().hex[:6]}", count=90, keys=12)
    acked = produce(broker.bootstrap, topic, sent, linger_ms=5, retry_backoff_ms=50)
    by_partition = check_roundtrip(sent, consume_all(broker.bootstrap, topic, len(sent)))
    unknown = [v for v, (_, offset) in acked.items() if offset < 0]
    assert not unknown, f"{len(unknown)} records acknowledged with offset -1"
    check_acks(acked, by_partition)
