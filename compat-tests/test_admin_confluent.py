"""confluent-kafka 2.16.1 (librdkafka 2.16.0) AdminClient against a real broker process:
issue 4's topic, config, cluster and offset admin, and the producer/consumer behaviour
those settings drive.  Expected behaviour is Kafka 4.x's for a single-node cluster.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from helpers import unique_topic, wait_until

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

T = 10.0
LOG = logging.getLogger("librdkafka")


def common(bootstrap: str) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10_000,
        "broker.address.family": "v4",
        "logger": LOG,
    }


def error_of(future) -> KafkaError:
    with pytest.raises(KafkaException) as info:
        future.result(T)
    err = info.value.args[0]
    assert isinstance(err, KafkaError), err
    return err


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0, **config) -> list[tuple[KafkaError | None, int, object]]:
    """Produce ``values`` one at a time (one batch each); (error, offset, timestamp) per message."""
    producer = Producer({**common(bootstrap), "linger.ms": 0, "message.timeout.ms": 15_000, **config})
    out: list[tuple[KafkaError | None, int, object]] = []
    for v in values:
        producer.produce(topic, value=v, partition=partition, on_delivery=lambda err, msg: out.append((err, msg.offset(), msg.timestamp())))
        assert producer.flush(20) == 0
    return out


def consume(bootstrap: str, tps: list[TopicPartition], want: int, timeout: float = 20.0) -> list:
    consumer = Consumer(
        {**common(bootstrap), "group.id": f"unused-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False, "fetch.wait.max.ms": 100}
    )
    try:
        consumer.assign([TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING) for tp in tps])
        got: list = []
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=100, timeout=0.3):
                assert m.error() is None, m.error()
                got.append(m)
        return got
    finally:
        consumer.close()


def topic_names(admin: AdminClient) -> set[str]:
    return set(admin.list_topics(timeout=T).topics)


def describe_topic(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    fs = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=T)
    [f] = fs.values()
    result: dict[str, ConfigEntry] = f.result(T)
    return result


@pytest.mark.feature("admin", client="confluent-kafka")
def test_create_topics_options_and_errors(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    base = unique_topic("cka")
    topics = [
        NewTopic(f"{base}-def", 4),  # replication factor -1
        NewTopic(f"{base}-rf1", 2, 1),
        NewTopic(f"{base}-cfg", 1, 1, config={"retention.ms": "3600000", "cleanup.policy": "compact", "max.message.bytes": "65536"}),
    ]
    for t, f in admin.create_topics(topics, operation_timeout=T).items():
        assert f.result(T) is None, t
    md = admin.list_topics(timeout=T)
    assert len(md.topics[f"{base}-def"].partitions) == 4
    assert all(p.replicas == [p.leader] for p in md.topics[f"{base}-def"].partitions.values())
    cfg = describe_topic(admin, f"{base}-cfg")
    for name, value in (("retention.ms", "3600000"), ("cleanup.policy", "compact"), ("max.message.bytes", "65536")):
        assert (cfg[name].value, cfg[name].source) == (value, ConfigSource.DYNAMIC_TOPIC_CONFIG.value), name

    def fails(topic: NewTopic, **kw) -> int:
        [f] = admin.create_topics([topic], operation_timeout=T, **kw).values()
        return error_of(f).code()

    assert fails(NewTopic(f"{base}-rf3", 1, 3)) == KafkaError.INVALID_REPLICATION_FACTOR
    assert fails(NewTopic(f"{base}-unk", 1, 1, config={"no.such.config": "1"})) == KafkaError.INVALID_CONFIG
    assert fails(NewTopic(f"{base}-rf1", 2, 1)) == KafkaError.TOPIC_ALREADY_EXISTS
    assert fails(NewTopic("bad name!", 1, 1)) == KafkaError.TOPIC_EXCEPTION
    [f] = admin.create_topics([NewTopic(f"{base}-dry", 3, 1)], validate_only=True, operation_timeout=T).values()
    assert f.result(T) is None
    assert fails(NewTopic(f"{base}-dry", 3, 3), validate_only=True) == KafkaError.INVALID_REPLICATION_FACTOR
    assert not {f"{base}-rf3", f"{base}-unk", f"{base}-dry"} & topic_names(admin)

    [f] = admin.delete_topics([f"{base}-rf1"], operation_timeout=T).values()
    assert f.result(T) is None
    [f] = admin.delete_topics([unique_topic("cka-never")], operation_timeout=T).values()
    assert error_of(f).code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    wait_until(lambda: f"{base}-rf1" not in topic_names(admin), T, "deleted topic gone")


@pytest.mark.feature("admin", client="confluent-kafka")
def test_create_partitions_and_delete_records(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    topic = unique_topic("cka-grow")
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    f.result(T)
    [f] = admin.create_partitions([NewPartitions(topic, 3)], operation_timeout=T).values()
    assert f.result(T) is None
    [f] = admin.create_partitions([NewPartitions(topic, 2)], operation_timeout=T).values()
    assert error_of(f).code() == KafkaError.INVALID_PARTITIONS
    wait_until(lambda: len(admin.list_topics(topic, timeout=T).topics[topic].partitions) == 3, T, "3 partitions")

    acks = produce(broker.bootstrap, topic, [f"p2-{i}".encode() for i in range(8)], partition=2)
    assert [(e, o) for e, o, _ in acks] == [(None, i) for i in range(8)]
    got = consume(broker.bootstrap, [TopicPartition(topic, 2)], 8)
    assert [(m.partition(), m.offset(), m.value()) for m in got] == [(2, i, f"p2-{i}".encode()) for i in range(8)]

    tp = TopicPartition(topic, 2, 5)
    [f] = admin.delete_records([tp], request_timeout=T, operation_timeout=T).values()
    assert f.result(T).low_watermark == 5
    consumer = Consumer({**common(broker.bootstrap), "group.id": f"unused-{uuid.uuid4().hex[:8]}"})
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 2), timeout=T) == (5, 8)
    finally:
        consumer.close()
    got = consume(broker.bootstrap, [TopicPartition(topic, 2)], 3)
    assert [m.offset() for m in got] == [5, 6, 7]
    [f] = admin.delete_records([TopicPartition(topic, 2, 9)], request_timeout=T, operation_timeout=T).values()
    assert error_of(f).code() == KafkaError.OFFSET_OUT_OF_RANGE


@pytest.mark.feature("admin", client="confluent-kafka")
def test_describe_and_alter_configs(broker_factory) -> None:
    broker = broker_factory(settings={"log.retention.ms": "7200000"})
    admin = AdminClient(common(broker.bootstrap))
    topic = unique_topic("cka-cfg")
    [f] = admin.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": "1048576"})], operation_timeout=T).values()
    f.result(T)
    cfg = describe_topic(admin, topic)
    assert (cfg["segment.bytes"].value, cfg["segment.bytes"].source) == ("1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert set(cfg["segment.bytes"].synonyms) == {"segment.bytes", "log.segment.bytes"}
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("7200000", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert (cfg["cleanup.policy"].value, cfg["cleanup.policy"].source) == ("delete", ConfigSource.DEFAULT_CONFIG.value)
    assert cfg["cleanup.policy"].is_default

    node = admin.describe_cluster(request_timeout=T).result(T).controller.id
    [f] = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, str(node))], request_timeout=T).values()
    brk = f.result(T)
    assert (brk["log.retention.ms"].value, brk["log.retention.ms"].source) == ("7200000", ConfigSource.STATIC_BROKER_CONFIG.value)
    assert brk["log.segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value

    # incremental: SET and DELETE
    res = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry("max.message.bytes", "2048", incremental_operation=AlterConfigOpType.SET),
            ConfigEntry("segment.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
        ],
    )
    [f] = admin.incremental_alter_configs([res], request_timeout=T).values()
    assert f.result(T) is None
    cfg = describe_topic(admin, topic)
    assert (cfg["max.message.bytes"].value, cfg["max.message.bytes"].source) == ("2048", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert (cfg["segment.bytes"].value, cfg["segment.bytes"].source) == ("1073741824", ConfigSource.DEFAULT_CONFIG.value)

    # the log takes the new max.message.bytes at once
    results = produce(broker.bootstrap, topic, [b"s" * 100, b"L" * 4000], **{"message.send.max.retries": 0})
    assert results[0][0] is None
    err = results[1][0]
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err

    # legacy AlterConfigs replaces the whole override set
    [f] = admin.alter_configs([ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"retention.ms": "1000000"})], request_timeout=T).values()
    assert f.result(T) is None
    cfg = describe_topic(admin, topic)
    assert (cfg["retention.ms"].value, cfg["retention.ms"].source) == ("1000000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert cfg["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    bad = ConfigResource(ConfigResource.Type.TOPIC, topic, set_config={"no.such.config": "1"})
    [f] = admin.alter_configs([bad], request_timeout=T).values()
    assert error_of(f).code() == KafkaError.INVALID_CONFIG


@pytest.mark.feature("admin", client="confluent-kafka")
def test_describe_cluster_stable_across_restart(persistent_broker) -> None:
    admin = AdminClient(common(persistent_broker.bootstrap))
    first = admin.describe_cluster(request_timeout=T).result(T)
    assert first.cluster_id
    assert [n.id for n in first.nodes] == [first.controller.id]
    assert (first.controller.host, first.controller.port) == ("127.0.0.1", persistent_broker.port)
    persistent_broker.restart()
    admin = AdminClient(common(persistent_broker.bootstrap))
    again = admin.describe_cluster(request_timeout=T).result(T)
    assert (again.cluster_id, again.controller.id) == (first.cluster_id, first.controller.id)


@pytest.mark.feature("admin", client="confluent-kafka")
def test_list_offsets_earliest_latest_and_max_timestamp(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    topic = unique_topic("cka-lo")
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    f.result(T)
    now = int(time.time() * 1000)
    stamps = [now - 50_000, now - 10_000, now - 40_000, now - 30_000]  # the largest is at offset 1
    producer = Producer({**common(broker.bootstrap), "linger.ms": 0})
    for i, ts in enumerate(stamps):
        producer.produce(topic, value=f"m{i}".encode(), partition=0, timestamp=ts)
        producer.flush(10)
    tp = TopicPartition(topic, 0)

    def ask(spec: OffsetSpec):
        return admin.list_offsets({tp: spec}, request_timeout=T)[tp].result(T)

    assert ask(OffsetSpec.earliest()).offset == 0
    assert ask(OffsetSpec.latest()).offset == 4
    top = ask(OffsetSpec.max_timestamp())
    assert (top.offset, top.timestamp) == (1, stamps[1])
    [f] = admin.delete_records([TopicPartition(topic, 0, 2)], request_timeout=T).values()
    f.result(T)
    assert ask(OffsetSpec.earliest()).offset == 2


@pytest.mark.feature("admin", client="confluent-kafka")
def test_auto_creation(broker_factory) -> None:
    on = broker_factory(settings={"auto.create.topics.enable": "true", "num.partitions": "2"})
    off = broker_factory(settings={"auto.create.topics.enable": "false"})
    for b in (on, off):
        # the consumer asks Metadata with allow_auto_topic_creation=false (allow.auto.create.topics)
        consumer = Consumer({**common(b.bootstrap), "group.id": f"g-{uuid.uuid4().hex[:8]}", "topic.metadata.refresh.interval.ms": 500})
        name = unique_topic("cka-sub")
        try:
            consumer.subscribe([name])
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                consumer.poll(0.2)
        finally:
            consumer.close()
        assert name not in topic_names(AdminClient(common(b.bootstrap)))
    # the producer's Metadata allows it; the broker decides
    name = unique_topic("cka-auto")
    [(err, offset, _)] = produce(on.bootstrap, name, [b"x"], partition=-1)
    assert (err, offset) == (None, 0)
    assert len(AdminClient(common(on.bootstrap)).list_topics(timeout=T).topics[name].partitions) == 2
    [(err, _, _)] = produce(off.bootstrap, name, [b"x"], partition=-1, **{"message.timeout.ms": 3000})
    assert err is not None
    assert name not in topic_names(AdminClient(common(off.bootstrap)))


@pytest.mark.feature("admin", client="confluent-kafka")
def test_log_append_time_topic(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    topic = unique_topic("cka-lat")
    [f] = admin.create_topics([NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})], operation_timeout=T).values()
    f.result(T)
    old = int(time.time() * 1000) - 3_000_000
    before = int(time.time() * 1000)
    producer = Producer({**common(broker.bootstrap), "linger.ms": 0})
    producer.produce(topic, value=b"v", partition=0, timestamp=old)
    assert producer.flush(10) == 0
    after = int(time.time() * 1000)
    [m] = consume(broker.bootstrap, [TopicPartition(topic, 0)], 1)
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME
    assert before <= ts <= after and ts != old
