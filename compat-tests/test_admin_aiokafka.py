"""aiokafka 0.14.0's AIOKafkaAdminClient against a real broker process: issue 4's topic
and config admin (CreateTopics v3, DeleteTopics v3, CreatePartitions v1, DeleteRecords v2,
DescribeConfigs v2, AlterConfigs v1; aiokafka's DescribeCluster is built on Metadata).
Expected behaviour is Kafka 4.x's for a single-node cluster.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import InvalidPartitionsError
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

RT = 10_000
# Kafka error codes and DescribeConfigs sources, as numbers on the wire.
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC, TOPIC_ALREADY_EXISTS = 3, 17, 36
INVALID_REPLICATION_FACTOR, INVALID_CONFIG = 38, 40
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5


async def describe_topic(admin: AIOKafkaAdminClient, topic: str) -> dict[str, tuple]:
    [resp] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], include_synonyms=True)
    [(error_code, _msg, _type, name, entries)] = resp.resources
    assert (error_code, name) == (0, topic)
    # entry: (name, value, read_only, config_source, is_sensitive, synonyms)
    return {e[0]: e for e in entries}


async def read(bootstrap: str, tp: TopicPartition, want: int) -> list:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, request_timeout_ms=RT, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        out: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while len(out) < want and loop.time() < deadline:
            for recs in (await consumer.getmany(timeout_ms=300)).values():
                out.extend(recs)
        return out
    finally:
        await consumer.stop()


async def _admin_flow(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=RT)
    await admin.start()
    base = unique_topic("aia")
    try:
        resp = await admin.create_topics(
            [
                NewTopic(f"{base}-a", 2, 1, topic_configs={"retention.ms": "3600000", "cleanup.policy": "compact"}),
                NewTopic(f"{base}-b", 1, 1),  # aiokafka refuses -1 locally
                NewTopic(f"{base}-rf3", 1, 3),
                NewTopic(f"{base}-cfg", 1, 1, topic_configs={"no.such.config": "1"}),
                NewTopic("bad name", 1, 1),
            ]
        )
        codes = {t[0]: t[1] for t in resp.topic_errors}
        assert codes == {
            f"{base}-a": 0,
            f"{base}-b": 0,
            f"{base}-rf3": INVALID_REPLICATION_FACTOR,
            f"{base}-cfg": INVALID_CONFIG,
            "bad name": INVALID_TOPIC,
        }, codes
        again = await admin.create_topics([NewTopic(f"{base}-a", 2, 1)])
        assert again.topic_errors[0][1] == TOPIC_ALREADY_EXISTS
        dry = await admin.create_topics([NewTopic(f"{base}-dry", 2, 1)], validate_only=True)
        assert dry.topic_errors[0][1] == 0
        names = set(await admin.list_topics())
        assert {f"{base}-a", f"{base}-b"} <= names
        assert not {f"{base}-rf3", f"{base}-cfg", "bad name", f"{base}-dry"} & names

        cfg = await describe_topic(admin, f"{base}-a")
        assert cfg["retention.ms"][1:4:2] == ("3600000", DYNAMIC_TOPIC_CONFIG)
        assert cfg["retention.ms"][5][0] == ("retention.ms", "3600000", DYNAMIC_TOPIC_CONFIG)
        assert cfg["max.message.bytes"][1:4:2] == ("1048588", DEFAULT_CONFIG)
        # AlterConfigs (v1) replaces the override set: retention.ms goes back to its default
        [resp] = await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, f"{base}-a", {"max.message.bytes": "4096"})])
        assert [r[0] for r in resp.resources] == [0]
        cfg = await describe_topic(admin, f"{base}-a")
        assert cfg["max.message.bytes"][1:4:2] == ("4096", DYNAMIC_TOPIC_CONFIG)
        assert cfg["retention.ms"][3] == DEFAULT_CONFIG
        assert cfg["cleanup.policy"][1] == "delete"

        resp = await admin.create_partitions({f"{base}-a": NewPartitions(4)})
        assert [t[1] for t in resp.topic_errors] == [0]
        with pytest.raises(InvalidPartitionsError):
            await admin.create_partitions({f"{base}-a": NewPartitions(3)})

        cluster = await admin.describe_cluster()
        assert cluster["cluster_id"] and [b["node_id"] for b in cluster["brokers"]] == [cluster["controller_id"]]
    finally:
        await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=RT)
    await producer.start()
    try:
        for i in range(6):
            md = await producer.send_and_wait(f"{base}-a", value=f"v{i}".encode(), partition=3)
            assert (md.partition, md.offset) == (3, i)
    finally:
        await producer.stop()
    tp = TopicPartition(f"{base}-a", 3)
    assert [r.value for r in await read(bootstrap, tp, 6)] == [f"v{i}".encode() for i in range(6)]

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=RT)
    await admin.start()
    try:
        assert await admin.delete_records({tp: RecordsToDelete(4)}) == {tp: 4}
        assert [r.offset for r in await read(bootstrap, tp, 2)] == [4, 5]
        resp = await admin.delete_topics([f"{base}-b", unique_topic("aia-never")])
        assert [t[1] for t in resp.topic_error_codes] == [0, UNKNOWN_TOPIC_OR_PARTITION]
        assert f"{base}-b" not in await admin.list_topics()
    finally:
        await admin.close()


@pytest.mark.feature("admin", client="aiokafka")
def test_admin_topics_configs_partitions_records(broker) -> None:
    asyncio.run(_admin_flow(broker.bootstrap))


async def _static_source(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=RT)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
        cfg = await describe_topic(admin, topic)
        assert cfg["retention.ms"][1:4:2] == ("7200000", STATIC_BROKER_CONFIG)
        assert cfg["retention.ms"][5][0] == ("log.retention.ms", "7200000", STATIC_BROKER_CONFIG)
    finally:
        await admin.close()


@pytest.mark.feature("admin", client="aiokafka")
def test_broker_property_is_a_static_source(broker_factory) -> None:
    broker = broker_factory(settings={"log.retention.ms": "7200000"})
    asyncio.run(_static_source(broker.bootstrap, unique_topic("aia-static")))
