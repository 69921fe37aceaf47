"""Compacted topics with kafka-python, aiokafka and confluent-kafka against a real broker.

Each client writes 10,000 updates over 100 keys (every 13th a tombstone) to a compacted
topic with 16 KiB segments; once the cleaner has run (polled with a generous bound), a
fresh consumer of the same client reads the latest value of every key, and far fewer
records than were written.  A read_committed consumer of a compacted topic holding
committed and aborted transactions over the same keys never sees aborted data, before
or after cleaning.  A record without a key is refused (INVALID_RECORD).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from compaction_helpers import (
    BROKER_SETTINGS,
    CLEAN_TIMEOUT_S,
    READ_TIMEOUT_S,
    check_latest,
    ck_read_all,
    create_topic,
    updates,
    wait_until_cleaned,
)
from helpers import unique_topic
from txn_helpers import CLIENT_TIMEOUT_S, ck_common, ck_send, ck_txn_producer

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]


# -- per client: produce the updates, read back from the beginning --------------------------


def kafka_python_roundtrip(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> Any:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in pairs:
            producer.send(topic, key=key, value=value)
        producer.flush(CLIENT_TIMEOUT_S)
    finally:
        producer.close(CLIENT_TIMEOUT_S)

    def read() -> list[tuple[int, bytes, bytes | None]]:
        tp = TopicPartition(topic, 0)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
        try:
            consumer.assign([tp])
            consumer.seek_to_beginning(tp)
            end = consumer.end_offsets([tp])[tp]
            out: list[tuple[int, bytes, bytes | None]] = []
            deadline = time.monotonic() + READ_TIMEOUT_S
            while consumer.position(tp) < end and time.monotonic() < deadline:
                for recs in consumer.poll(timeout_ms=500).values():
                    out += [(r.offset, r.key, r.value) for r in recs]
            assert consumer.position(tp) >= end, "kafka-python did not reach the end"
            return out
        finally:
            consumer.close()

    return read


def aiokafka_roundtrip(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> Any:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v) for k, v in pairs]
            await asyncio.wait_for(asyncio.gather(*futures), 60)
        finally:
            await producer.stop()

    async def consume() -> list[tuple[int, bytes, bytes | None]]:
        tp = TopicPartition(topic, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            out: list[tuple[int, bytes, bytes | None]] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + READ_TIMEOUT_S
            while await consumer.position(tp) < end and loop.time() < deadline:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    out += [(r.offset, r.key, r.value) for r in recs]
            assert await consumer.position(tp) >= end, "aiokafka did not reach the end"
            return out
        finally:
            await consumer.stop()

    asyncio.run(produce())
    return lambda: asyncio.run(consume())


def confluent_roundtrip(bootstrap: str, topic: str, pairs: list[tuple[bytes, bytes | None]]) -> Any:
    from confluent_kafka import Producer

    # librdkafka batches up to 1 MB; a batch must fit a (16 KiB) segment, as in Kafka.
    producer = Producer({**ck_common(bootstrap), "linger.ms": 5, "acks": "all", "batch.size": 8192})
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in pairs:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert not errors, errors[:3]
    return lambda: ck_read_all(bootstrap, topic)


ROUNDTRIPS = {
    "kafka-python": kafka_python_roundtrip,
    "aiokafka": aiokafka_roundtrip,
    "confluent": confluent_roundtrip,
}


@pytest.mark.parametrize("client", list(ROUNDTRIPS))
@pytest.mark.feature("compaction", client="{client}")
def test_fresh_consumer_reads_the_latest_value_per_key(broker_factory: Any, client: str) -> None:
    broker = broker_factory(BROKER_SETTINGS)
    topic = unique_topic("compacted")
    create_topic(broker.bootstrap, topic)
    pairs, latest = updates(client)
    read = ROUNDTRIPS[client](broker.bootstrap, topic, pairs)
    wait_until_cleaned(broker.bootstrap, topic)
    check_latest(read(), latest)


@pytest.mark.feature("compaction", "transactions", client="confluent-kafka")
def test_read_committed_never_sees_aborted_data_of_a_compacted_topic(broker_factory: Any) -> None:
    broker = broker_factory(BROKER_SETTINGS)
    topic = unique_topic("compacted-txn")
    create_topic(broker.bootstrap, topic)
    p = ck_txn_producer(broker.bootstrap, f"compaction-{uuid.uuid4().hex[:8]}")
    committed: dict[bytes, bytes] = {}
    for round_ in range(40):
        pairs = [(b"key-%02d" % (i % 20), f"r{round_}-{i}".encode()) for i in range(50)]
        p.begin_transaction()
        ck_send(p, topic, pairs)
        if round_ % 3 == 1:
            p.abort_transaction(CLIENT_TIMEOUT_S)
        else:
            p.commit_transaction(CLIENT_TIMEOUT_S)
            committed.update(pairs)
    aborted_values = {f"r{r}-{i}".encode() for r in range(40) if r % 3 == 1 for i in range(50)}

    def check() -> list[tuple[int, bytes, bytes | None]]:
        records = ck_read_all(broker.bootstrap, topic, "read_committed")
        assert not [v for _, _, v in records if v in aborted_values], "aborted data read"
        seen = {k: v for _, k, v in records}
        assert seen == committed
        return records

    # (the cleaner may already be at work while the transactions are written)
    written = sum(50 for r in range(40) if r % 3 != 1)
    deadline = time.monotonic() + CLEAN_TIMEOUT_S
    count = len(check())
    while count >= written // 2 and time.monotonic() < deadline:
        time.sleep(1.0)
        count = len(check())
    assert count < written // 2, f"not compacted: {written} committed records, {count} read"
    # the cleaner removed aborted data outside the active segment: read_uncommitted
    # sees at most what the active segment still holds
    still = [v for _, _, v in ck_read_all(broker.bootstrap, topic) if v in aborted_values]
    assert len(still) < len(aborted_values) // 2, f"{len(still)} aborted records remain"


@pytest.mark.feature("compaction", client="confluent-kafka")
def test_keyless_record_is_refused(broker_factory: Any) -> None:
    from confluent_kafka import KafkaError, Producer

    broker = broker_factory(BROKER_SETTINGS)
    topic = unique_topic("compacted-nokey")
    create_topic(broker.bootstrap, topic)
    producer = Producer({**ck_common(broker.bootstrap), "retries": 0})
    errors: list[Any] = []
    producer.produce(topic, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD


def test_cleaner_broker_configs_alter_live_with_admin_clients(broker_factory: Any) -> None:
    from confluent_kafka.admin import (
        AdminClient,
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ConfigSource,
    )

    broker = broker_factory(BROKER_SETTINGS)
    admin = AdminClient(ck_common(broker.bootstrap))
    node = str(admin.describe_cluster(request_timeout=15).result(30).nodes[0].id)
    resource = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[
            ConfigEntry("log.cleaner.backoff.ms", "2500", incremental_operation=AlterConfigOpType.SET)
        ],
    )
    [f] = admin.incremental_alter_configs([resource], request_timeout=15).values()
    f.result(30)
    [f] = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, node)], request_timeout=15).values()
    entry = f.result(30)["log.cleaner.backoff.ms"]
    assert (entry.value, entry.source) == ("2500", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert not entry.is_read_only
    # a static-only property is refused
    bad = ConfigResource(
        ConfigResource.Type.BROKER,
        node,
        incremental_configs=[ConfigEntry("auto.create.topics.enable", "false", incremental_operation=AlterConfigOpType.SET)],
    )
    [f] = admin.incremental_alter_configs([bad], request_timeout=15).values()
    with pytest.raises(Exception, match="dynamically"):
        f.result(30)
    # kafka-python reads the same value and source
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        brk = kp.describe_configs(
            [KpResource(ConfigResourceType.BROKER, node, {"log.cleaner.backoff.ms": None})],
            config_filter="all",
        )["broker"][node]
        got = brk["log.cleaner.backoff.ms"]
        assert (got["value"], got["config_source"]) == ("2500", "DYNAMIC_BROKER_CONFIG")
    finally:
        kp.close()
