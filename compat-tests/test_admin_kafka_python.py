"""kafka-python 3.0.12's KafkaAdminClient (and its producer/consumer where the admin API
has effects on them) against a real broker process: issue 4's topic and config admin.

Expected behaviour is Kafka 4.x's for a single-node cluster.
"""

from __future__ import annotations

import time
import uuid

import kafka.errors as Errors
import pytest
from helpers import unique_topic, wait_until
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    AlterConfigOp,
    ConfigResource,
    ConfigResourceType,
    NewPartitions,
    NewTopic,
)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

TIMEOUTS = {"request_timeout_ms": 10_000}
LOG_APPEND_TIME = 1


def admin_for(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-admin4", **TIMEOUTS)


def producer_for(bootstrap: str, **config) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=bootstrap, **{"max_block_ms": 10_000, **TIMEOUTS, **config})


def consumer_for(bootstrap: str, **config) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
        **TIMEOUTS,
        **config,
    )


def read(bootstrap: str, tps: list[TopicPartition], want: int, *, from_beginning: bool = True, timeout: float = 20.0):
    consumer = consumer_for(bootstrap)
    try:
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < want and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=300).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


def topic_configs(admin: KafkaAdminClient, topic: str, synonyms: bool = False) -> dict:
    got = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=synonyms, config_filter="all"
    )
    return got["topic"][topic]


def topic_names(admin: KafkaAdminClient) -> set[str]:
    return set(admin.list_topics())


@pytest.mark.feature("admin", client="kafka-python")
def test_create_topics_options_and_errors(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        base = unique_topic("kpa")
        res = admin.create_topics(
            [
                NewTopic(f"{base}-rf1", num_partitions=2, replication_factor=1),
                NewTopic(f"{base}-rfdef", num_partitions=4),  # replication factor -1
                NewTopic(
                    f"{base}-cfg",
                    num_partitions=1,
                    replication_factor=1,
                    topic_configs={
                        "retention.ms": "3600000",
                        "cleanup.policy": "compact",
                        "max.message.bytes": "65536",
                        "message.timestamp.type": "LogAppendTime",
                    },
                ),
            ]
        )
        assert [t["error_code"] for t in res["topics"]] == [0, 0, 0], res
        by_name = {t["name"]: t for t in res["topics"]}
        assert (by_name[f"{base}-rfdef"]["num_partitions"], by_name[f"{base}-rfdef"]["replication_factor"]) == (4, 1)
        assert all(uuid.UUID(t["topic_id"]).int != 0 for t in res["topics"])
        described = {t["name"]: t for t in admin.describe_topics([f"{base}-rf1", f"{base}-rfdef"])}
        assert len(described[f"{base}-rf1"]["partitions"]) == 2
        assert len(described[f"{base}-rfdef"]["partitions"]) == 4
        assert all(p["replica_nodes"] == [p["leader_id"]] for t in described.values() for p in t["partitions"])

        cfg = topic_configs(admin, f"{base}-cfg")
        for name, value in (
            ("retention.ms", "3600000"),
            ("cleanup.policy", "compact"),
            ("max.message.bytes", "65536"),
            ("message.timestamp.type", "LogAppendTime"),
        ):
            assert (cfg[name]["value"], cfg[name]["config_source"]) == (value, "DYNAMIC_TOPIC_CONFIG"), name

        with pytest.raises(Errors.InvalidReplicationFactorError):
            admin.create_topics([NewTopic(f"{base}-rf3", num_partitions=1, replication_factor=3)])
        with pytest.raises(Errors.InvalidConfigurationError):
            admin.create_topics([NewTopic(f"{base}-unknown", 1, 1, topic_configs={"no.such.config": "x"})])
        with pytest.raises(Errors.TopicAlreadyExistsError):
            admin.create_topics([NewTopic(f"{base}-rf1", num_partitions=2, replication_factor=1)])
        with pytest.raises(Errors.InvalidTopicError):
            admin.create_topics([NewTopic("bad/name", num_partitions=1, replication_factor=1)])

        res = admin.create_topics([NewTopic(f"{base}-dry", num_partitions=3, replication_factor=1)], validate_only=True)
        assert res["topics"][0]["error_code"] == 0
        with pytest.raises(Errors.InvalidReplicationFactorError):
            admin.create_topics([NewTopic(f"{base}-dry", 1, 3)], validate_only=True)
        names = topic_names(admin)
        assert {f"{base}-rf1", f"{base}-rfdef", f"{base}-cfg"} <= names
        assert not {f"{base}-rf3", f"{base}-unknown", f"{base}-dry"} & names
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_delete_topics_by_name_and_by_id(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        a, b = unique_topic("kpa-del"), unique_topic("kpa-delid")
        res = admin.create_topics([NewTopic(a, 1, 1), NewTopic(b, 2, 1)])
        ids = {t["name"]: uuid.UUID(t["topic_id"]) for t in res["topics"]}
        admin.delete_topics([a])
        admin.delete_topics([ids[b]])
        wait_until(lambda: not {a, b} & topic_names(admin), 10, "both topics gone")
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.delete_topics([unique_topic("kpa-never")])
        with pytest.raises(Errors.UnknownTopicIdError):
            admin.delete_topics([uuid.uuid4()])
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_create_partitions_then_produce_and_consume_the_new_one(broker) -> None:
    admin = admin_for(broker.bootstrap)
    topic = unique_topic("kpa-grow")
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
        admin.create_partitions({topic: NewPartitions(total_count=5)})
        wait_until(lambda: len(admin.describe_topics([topic])[0]["partitions"]) == 5, 10, "5 partitions")
        with pytest.raises(Errors.InvalidPartitionsError):
            admin.create_partitions({topic: NewPartitions(total_count=3)})
        with pytest.raises(Errors.InvalidPartitionsError):
            admin.create_partitions({topic: NewPartitions(total_count=5)})
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.create_partitions({unique_topic("kpa-none"): NewPartitions(total_count=2)})
    finally:
        admin.close()
    producer = producer_for(broker.bootstrap)
    try:
        md = producer.send(topic, value=b"in partition 4", partition=4).get(timeout=10)
        assert (md.partition, md.offset) == (4, 0)
    finally:
        producer.close(timeout=5)
    got = read(broker.bootstrap, [TopicPartition(topic, 4)], 1)
    assert [(r.partition, r.offset, r.value) for r in got] == [(4, 0, b"in partition 4")]


@pytest.mark.feature("admin", client="kafka-python")
def test_delete_records_moves_the_low_watermark(broker) -> None:
    topic = unique_topic("kpa-dr")
    admin = admin_for(broker.bootstrap)
    producer = producer_for(broker.bootstrap, linger_ms=0)
    tp = TopicPartition(topic, 0)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        for i in range(10):
            producer.send(topic, value=f"v{i}".encode(), partition=0).get(timeout=10)
        res = admin.delete_records({tp: 6})
        assert (res[tp]["error_code"], res[tp]["low_watermark"]) == (0, 6), res
        consumer = consumer_for(broker.bootstrap)
        try:
            assert consumer.beginning_offsets([tp]) == {tp: 6}
            assert consumer.end_offsets([tp]) == {tp: 10}
        finally:
            consumer.close()
        got = read(broker.bootstrap, [tp], 4)
        assert [(r.offset, r.value) for r in got] == [(i, f"v{i}".encode()) for i in range(6, 10)]
        with pytest.raises(Errors.OffsetOutOfRangeError):
            admin.delete_records({tp: 11})
    finally:
        producer.close(timeout=5)
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_configs_sources_synonyms_and_broker(broker_factory) -> None:
    broker = broker_factory(settings={"log.retention.ms": "7200000"})
    admin = admin_for(broker.bootstrap)
    topic = unique_topic("kpa-cfg")
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"segment.bytes": "1048576"})])
        cfg = topic_configs(admin, topic, synonyms=True)
        seg = cfg["segment.bytes"]
        assert (seg["value"], seg["config_source"]) == ("1048576", "DYNAMIC_TOPIC_CONFIG")
        assert [(s["name"], s["value"], s["source"]) for s in seg["synonyms"]] == [
            ("segment.bytes", "1048576", "DYNAMIC_TOPIC_CONFIG"),
            ("log.segment.bytes", "1073741824", "DEFAULT_CONFIG"),
        ]
        ret = cfg["retention.ms"]
        assert (ret["value"], ret["config_source"]) == ("7200000", "STATIC_BROKER_CONFIG")
        assert ret["synonyms"][0] == {"name": "log.retention.ms", "value": "7200000", "source": "STATIC_BROKER_CONFIG"}
        assert (cfg["cleanup.policy"]["value"], cfg["cleanup.policy"]["config_source"]) == ("delete", "DEFAULT_CONFIG")
        # the default filter ("modified") shows only the dynamic (here: topic) overrides
        modified = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
        assert set(modified) == {"segment.bytes"}

        node = str(admin.describe_cluster()["controller_id"])
        brk = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, node, {"log.retention.ms": None, "log.segment.bytes": None})],
            config_filter="all",
        )["broker"][node]
        assert (brk["log.retention.ms"]["value"], brk["log.retention.ms"]["config_source"]) == ("7200000", "STATIC_BROKER_CONFIG")
        assert (brk["log.segment.bytes"]["value"], brk["log.segment.bytes"]["config_source"]) == ("1073741824", "DEFAULT_CONFIG")
    finally:
        admin.close()


@pytest.mark.parametrize("incremental", [True, False])
@pytest.mark.feature("admin", client="kafka-python")
def test_alter_configs_and_the_log_uses_max_message_bytes(broker, incremental: bool) -> None:
    admin = admin_for(broker.bootstrap)
    topic = unique_topic("kpa-alter")
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"retention.ms": "3600000"})])
        changes = {"max.message.bytes": "2048", "cleanup.policy": "compact,delete"}
        res = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, dict(changes))], incremental=incremental)
        assert res["topic"][topic] == "OK", res
        cfg = topic_configs(admin, topic)
        assert cfg["max.message.bytes"]["value"] == "2048"
        assert cfg["cleanup.policy"]["value"] in ("compact,delete", "compact, delete")
        # both kinds keep the other overrides (kafka-python re-sends them for the legacy API)
        assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]) == ("3600000", "DYNAMIC_TOPIC_CONFIG")
        if incremental:
            admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": (AlterConfigOp.DELETE, None)})]
            )
            cfg = topic_configs(admin, topic)
            assert (cfg["retention.ms"]["value"], cfg["retention.ms"]["config_source"]) == ("604800000", "DEFAULT_CONFIG")
        res = admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"retention.ms": "soon"})], incremental=incremental
        )
        assert "InvalidConfiguration" in str(res["topic"][topic]), res
    finally:
        admin.close()

    producer = producer_for(broker.bootstrap, max_request_size=1_000_000, retries=0)
    try:
        # the topic is compact,delete now: records need a key (INVALID_RECORD otherwise)
        assert producer.send(topic, key=b"k", value=b"s" * 100, partition=0).get(timeout=10).offset == 0
        with pytest.raises(Errors.InvalidRecordError):
            producer.send(topic, value=b"s" * 100, partition=0).get(timeout=10)
        with pytest.raises(Errors.MessageSizeTooLargeError):
            producer.send(topic, key=b"k", value=b"L" * 4000, partition=0).get(timeout=10)
    finally:
        producer.close(timeout=5)


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_cluster_stable_across_restart(persistent_broker) -> None:
    admin = admin_for(persistent_broker.bootstrap)
    try:
        first = admin.describe_cluster()
    finally:
        admin.close()
    assert first["cluster_id"]
    assert [b["broker_id"] for b in first["brokers"]] == [first["controller_id"]]
    assert (first["brokers"][0]["host"], first["brokers"][0]["port"]) == ("127.0.0.1", persistent_broker.port)
    persistent_broker.restart()
    admin = admin_for(persistent_broker.bootstrap)
    try:
        again = admin.describe_cluster()
    finally:
        admin.close()
    assert (again["cluster_id"], again["controller_id"]) == (first["cluster_id"], first["controller_id"])


@pytest.mark.parametrize("enabled", ["true", "false"])
@pytest.mark.feature("admin", client="kafka-python")
def test_auto_creation_by_metadata(broker_factory, enabled: str) -> None:
    """The producer's Metadata allows auto-creation; the broker setting decides.

    (kafka-python 3.0.12 does not pass ``allow_auto_create_topics`` on to its
    ClusterMetadata (net/manager.py builds it without), so its Metadata requests always
    allow creation; allow_auto_topic_creation=False is tested with confluent-kafka and raw.)
    """
    broker = broker_factory(settings={"auto.create.topics.enable": enabled, "num.partitions": "2"})
    wanted = unique_topic("kpa-auto")
    producer = producer_for(broker.bootstrap, max_block_ms=3_000)
    try:
        if enabled == "true":
            md = producer.send(wanted, value=b"x").get(timeout=10)
            assert md.partition in (0, 1)
        else:
            with pytest.raises(Errors.KafkaTimeoutError):
                producer.send(wanted, value=b"x").get(timeout=10)
    finally:
        producer.close(timeout=5)
    admin = admin_for(broker.bootstrap)
    try:
        assert (wanted in topic_names(admin)) == (enabled == "true")
        if enabled == "true":
            assert len(admin.describe_topics([wanted])[0]["partitions"]) == 2
    finally:
        admin.close()


@pytest.mark.feature("produce", client="kafka-python")
def test_acks_0_is_stored(broker) -> None:
    topic = unique_topic("kpa-acks0")
    producer = producer_for(broker.bootstrap, acks=0, linger_ms=5)
    try:
        for i in range(20):
            producer.send(topic, value=f"a0-{i}".encode(), partition=0)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    got = read(broker.bootstrap, [TopicPartition(topic, 0)], 20)
    assert [r.value for r in got] == [f"a0-{i}".encode() for i in range(20)]


@pytest.mark.feature("admin", client="kafka-python")
def test_log_append_time_topic(broker) -> None:
    topic = unique_topic("kpa-lat")
    admin = admin_for(broker.bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"message.timestamp.type": "LogAppendTime"})])
    finally:
        admin.close()
    producer = producer_for(broker.bootstrap)
    old = int(time.time() * 1000) - 3_600_000  # an hour ago, inside the accepted window
    before = int(time.time() * 1000)
    try:
        md = producer.send(topic, value=b"stamped", partition=0, timestamp_ms=old).get(timeout=10)
    finally:
        producer.close(timeout=5)
    after = int(time.time() * 1000)
    assert before <= md.timestamp <= after, md  # the ack carries the append time
    [rec] = read(broker.bootstrap, [TopicPartition(topic, 0)], 1)
    assert rec.timestamp_type == LOG_APPEND_TIME
    assert rec.timestamp == md.timestamp != old


@pytest.mark.feature("consume", client="kafka-python")
def test_consumer_keeps_consuming_across_a_broker_restart(persistent_broker) -> None:
    """kafka-python validates its position with OffsetForLeaderEpoch when the epoch changes."""
    topic = unique_topic("kpa-restart")
    tp = TopicPartition(topic, 0)
    producer = producer_for(persistent_broker.bootstrap)
    try:
        for i in range(5):
            producer.send(topic, value=f"before-{i}".encode(), partition=0).get(timeout=10)
    finally:
        producer.close(timeout=5)
    consumer = consumer_for(persistent_broker.bootstrap, reconnect_backoff_max_ms=500)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            got += [r.value for recs in consumer.poll(timeout_ms=300).values() for r in recs]
        assert got == [f"before-{i}".encode() for i in range(5)]

        persistent_broker.restart()
        producer = producer_for(persistent_broker.bootstrap)
        try:
            for i in range(5):
                producer.send(topic, value=f"after-{i}".encode(), partition=0).get(timeout=10)
        finally:
            producer.close(timeout=5)
        deadline = time.monotonic() + 30
        while len(got) < 10 and time.monotonic() < deadline:
            got += [r.value for recs in consumer.poll(timeout_ms=300).values() for r in recs]
        assert got == [f"before-{i}".encode() for i in range(5)] + [f"after-{i}".encode() for i in range(5)]
        assert consumer.position(tp) == 10
    finally:
        consumer.close()
