"""Broker-wide defaults of topic configs (log.retention.ms, message.max.bytes, ...) are dynamic
BROKER configs, as Kafka's DynamicLogConfig makes them: set per broker or as the cluster
default, applied at once to the logs of every topic without its own override, shown with
their source in DescribeConfigs, and kept across restarts."""

from __future__ import annotations

from pathlib import Path

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)

from kbroker.testing import BrokerThread

TOPIC, BROKER = 2, 4
DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG, DEFAULT_CONFIG = 2, 3, 5
SET, DELETE = 0, 1


def set_broker(c: RawClient, name: str, key: str, op: int, value: str | None) -> int:
    req = IncrementalAlterConfigsRequest(
        resources=[AlterConfigsResource(resource_type=BROKER, resource_name=name, configs=[AlterableConfig(name=key, config_operation=op, value=value)])]
    )
    code: int = c.request(req, 1).responses[0].error_code
    return code


def topic_config(c: RawClient, topic: str, key: str) -> tuple[str | None, int, list[tuple[str, str | None, int]]]:
    req = DescribeConfigsRequest(resources=[DescribeConfigsResource(resource_type=TOPIC, resource_name=topic, configuration_keys=[key])], include_synonyms=True)
    [entry] = c.request(req, 4).results[0].configs
    return entry.value, entry.config_source, [(s.name, s.value, s.source) for s in entry.synonyms]


def test_topic_defaults_change_live_by_scope_and_persist(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        topics = [
            CreatableTopic(name="plain", num_partitions=1, replication_factor=-1),
            CreatableTopic(name="own", num_partitions=1, replication_factor=-1, configs=[CreatableTopicConfig(name="retention.ms", value="777")]),
        ]
        assert all(t.error_code == ErrorCode.NONE for t in c.request(CreateTopicsRequest(topics=topics, timeout_ms=5000), 7).topics)
        assert set_broker(c, "", "log.retention.ms", SET, "5000") == ErrorCode.NONE
        assert bt.broker is not None
        assert bt.broker.topics.log("plain", 0).config.retention_ms == 5000  # applied to the live log
        assert bt.broker.topics.log("own", 0).config.retention_ms == 777  # its override wins
        value, source, chain = topic_config(c, "plain", "retention.ms")
        assert (value, source) == ("5000", DYNAMIC_DEFAULT_BROKER_CONFIG)
        assert chain[0] == ("log.retention.ms", "5000", DYNAMIC_DEFAULT_BROKER_CONFIG) and chain[-1][2] == DEFAULT_CONFIG
        # the broker's own scope wins over the cluster default
        assert set_broker(c, "1", "log.retention.ms", SET, "6000") == ErrorCode.NONE
        assert topic_config(c, "plain", "retention.ms")[:2] == ("6000", DYNAMIC_BROKER_CONFIG)
        # a bad value is refused and changes nothing
        assert set_broker(c, "1", "message.max.bytes", SET, "-5") == ErrorCode.INVALID_CONFIG
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        assert bt.broker.topics.log("plain", 0).config.retention_ms == 6000
        assert set_broker(c, "1", "log.retention.ms", DELETE, None) == ErrorCode.NONE
        assert bt.broker.topics.log("plain", 0).config.retention_ms == 5000
        assert set_broker(c, "", "log.retention.ms", DELETE, None) == ErrorCode.NONE
        assert topic_config(c, "plain", "retention.ms")[:2] == ("604800000", DEFAULT_CONFIG)
        assert bt.broker.topics.log("plain", 0).config.retention_ms == 604800000
        c.close()
    finally:
        bt.close()
