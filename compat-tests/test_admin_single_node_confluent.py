"""confluent-kafka 2.16.1 (librdkafka 2.16.0) AdminClient against a real broker process:
issue 12's single-node admin calls it has (elect_leaders; describe_topics, which must keep
working now that DescribeTopicPartitions is advertised).  Expected answers are a single-node
KRaft Kafka 4.1's.

librdkafka 2.16.0 describes topics with Metadata v13 even when the broker advertises
DescribeTopicPartitions (seen with debug=protocol); confluent-kafka has no
partition-reassignment or log-dir calls.
"""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import (
    ElectionType,
    KafkaError,
    KafkaException,
    TopicCollection,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

T = 10.0
NODE_ID = 1
LOG = logging.getLogger("librdkafka")


def admin_for(bootstrap: str) -> AdminClient:
    return AdminClient(
        {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000, "broker.address.family": "v4", "logger": LOG}
    )


def create(admin: AdminClient, name: str, partitions: int) -> None:
    for f in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        f.result(T)


@pytest.mark.feature("admin", client="confluent-kafka")
def test_describe_topics(broker) -> None:
    admin = admin_for(broker.bootstrap)
    topic, missing = unique_topic("ck-dt"), unique_topic("ck-dt-none")
    create(admin, topic, 3)
    futures = admin.describe_topics(TopicCollection([topic, missing]))
    desc = futures[topic].result(T)
    assert (desc.name, desc.is_internal) == (topic, False)
    assert [p.id for p in desc.partitions] == [0, 1, 2]
    for p in desc.partitions:
        assert (p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]) == (NODE_ID, [NODE_ID], [NODE_ID])
    with pytest.raises(KafkaException) as info:
        futures[missing].result(T)
    assert info.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


@pytest.mark.feature("admin", client="confluent-kafka")
def test_elect_leaders(broker) -> None:
    admin = admin_for(broker.bootstrap)
    topic, missing = unique_topic("ck-elect"), unique_topic("ck-elect-none")
    create(admin, topic, 2)
    for election in (ElectionType.PREFERRED, ElectionType.UNCLEAN):
        got = admin.elect_leaders(
            election, [TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(missing, 0)]
        ).result(T)
        codes = {(tp.topic, tp.partition): (err.code() if err is not None else None) for tp, err in got.items()}
        assert codes == {
            (topic, 0): KafkaError.ELECTION_NOT_NEEDED,
            (topic, 1): KafkaError.ELECTION_NOT_NEEDED,
            (missing, 0): KafkaError.UNKNOWN_TOPIC_OR_PART,
        }
    # No partitions named: every partition, and Kafka lists none that needs no election.
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(T) == {}
