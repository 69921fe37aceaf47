"""Issue 10's exactness fixes seen through real clients, against a real broker process.

- OffsetCommit for partitions that do not exist: UNKNOWN_TOPIC_OR_PARTITION per partition
  (confluent-kafka's AdminClient.alter_consumer_group_offsets and Consumer.commit);
- IncrementalAlterConfigs SUBTRACT may leave cleanup.policy empty, DescribeConfigs then
  says "" (confluent-kafka and kafka-python);
- DescribeConfigs without include_synonyms carries no synonyms (kafka-python; librdkafka
  always asks for them).
Expected behaviour is Kafka 4.x's for a single-node cluster.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)
from helpers import unique_topic
from kafka import KafkaAdminClient
from kafka.admin import AlterConfigOp
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType as KpConfigResourceType
from kafka.admin import NewTopic as KpNewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

T = 10.0


def common(bootstrap: str) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000, "broker.address.family": "v4"}


def create(admin: AdminClient, topic: str, partitions: int, config: dict[str, str] | None = None) -> None:
    [f] = admin.create_topics([NewTopic(topic, partitions, 1, config=config or {})], operation_timeout=T).values()
    f.result(T)


@pytest.mark.feature("groups", client="confluent-kafka")
def test_confluent_commits_to_missing_partitions_are_refused(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    topic, ghost = unique_topic("cka-commit"), unique_topic("cka-ghost")
    create(admin, topic, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 5), TopicPartition(topic, 7, 5), TopicPartition(ghost, 0, 5)])
    [f] = admin.alter_consumer_group_offsets([request], request_timeout=T).values()
    answers = {(tp.topic, tp.partition): (tp.error.code() if tp.error else None) for tp in f.result(T).topic_partitions}
    assert answers == {
        (topic, 0): None,
        (topic, 7): KafkaError.UNKNOWN_TOPIC_OR_PART,
        (ghost, 0): KafkaError.UNKNOWN_TOPIC_OR_PART,
    }
    [f] = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])], request_timeout=T).values()
    assert [(tp.partition, tp.offset) for tp in f.result(T).topic_partitions] == [(0, 5)]

    consumer = Consumer({**common(broker.bootstrap), "group.id": f"c-{group}", "enable.auto.commit": False})
    try:
        with pytest.raises(KafkaException) as info:
            consumer.commit(offsets=[TopicPartition(ghost, 0, 3)], asynchronous=False)
        assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    finally:
        consumer.close()


@pytest.mark.feature("admin", client="confluent-kafka")
def test_confluent_subtract_may_empty_cleanup_policy(broker) -> None:
    admin = AdminClient(common(broker.bootstrap))
    topic = unique_topic("cka-policy")
    create(admin, topic, 1, {"cleanup.policy": "compact,delete"})
    subtract = ConfigEntry("cleanup.policy", "compact,delete", incremental_operation=AlterConfigOpType.SUBTRACT)
    [f] = admin.incremental_alter_configs([ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[subtract])], request_timeout=T).values()
    assert f.result(T) is None
    [f] = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)], request_timeout=T).values()
    entry = f.result(T)["cleanup.policy"]
    assert (entry.value, entry.is_default) == ("", False)


@pytest.mark.feature("admin", client="kafka-python")
def test_kafka_python_subtract_and_synonyms_on_request(broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    topic = unique_topic("kpa-policy")
    try:
        admin.create_topics([KpNewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "delete", "retention.ms": "5000"})])
        res = admin.alter_configs(
            [KpConfigResource(KpConfigResourceType.TOPIC, topic, {"cleanup.policy": (AlterConfigOp.SUBTRACT, "delete")})]
        )
        assert res["topic"][topic] == "OK", res
        for synonyms in (False, True):
            got = admin.describe_configs(
                [KpConfigResource(KpConfigResourceType.TOPIC, topic)], include_synonyms=synonyms, config_filter="all"
            )["topic"][topic]
            assert (got["cleanup.policy"]["value"], got["cleanup.policy"]["config_source"]) == ("", "DYNAMIC_TOPIC_CONFIG")
            with_synonyms = [name for name, entry in got.items() if entry["synonyms"]]
            if synonyms:
                assert "retention.ms" in with_synonyms
            else:
                assert with_synonyms == []
    finally:
        admin.close()
