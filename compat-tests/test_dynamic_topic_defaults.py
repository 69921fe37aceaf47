"""A broker-wide topic default changed live with kafka-python's admin client (BROKER resource
"1"; kafka-python refuses the cluster-default name ""): topics without an override report it
with source DYNAMIC_BROKER_CONFIG, also to confluent-kafka, and it survives a restart."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin import ConfigResource as CkResource
from helpers import unique_topic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]
DYNAMIC_BROKER_CONFIG = 2


def _topic_retention(bootstrap: str, topic: str) -> tuple[str, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    [f] = admin.describe_configs([CkResource(CkResource.Type.TOPIC, topic)], request_timeout=15).values()
    entry = f.result(30)["retention.ms"]
    return entry.value, entry.source


def test_broker_retention_default_reaches_topics_live_and_persists(broker) -> None:
    topic = unique_topic("dyn-default")
    kp = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-dyn", request_timeout_ms=10_000)
    try:
        kp.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)], timeout_ms=10_000)
        result = kp.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", {"log.retention.ms": "3600000"})])
        assert list(result["broker"].values()) == ["OK"], result
    finally:
        kp.close()
    assert _topic_retention(broker.bootstrap, topic) == ("3600000", DYNAMIC_BROKER_CONFIG)
    broker.restart()
    assert _topic_retention(broker.bootstrap, topic) == ("3600000", DYNAMIC_BROKER_CONFIG)
