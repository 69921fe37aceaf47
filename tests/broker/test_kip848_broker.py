"""KIP-848 through a real broker on loopback: ConsumerGroupHeartbeat v0/v1,
ConsumerGroupDescribe, ApiVersions rows, the group.consumer.* start-up checks, and a
restart that replays the group from ``__consumer_offsets``."""

from __future__ import annotations

from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

from kbroker.config import ConfigError, build_config
from kbroker.testing import BrokerThread


@pytest.mark.parametrize(
    "setting",
    [
        "group.consumer.session.timeout.ms=1000",  # below the 45 s minimum
        "group.consumer.heartbeat.interval.ms=20000",  # above the 15 s maximum
        "group.consumer.assignors=sticky",  # not a server assignor
        "group.consumer.max.size=0",
    ],
)
def test_bad_consumer_group_configs_are_refused_at_start_up(setting: str) -> None:
    with pytest.raises(ConfigError):
        build_config(overrides=[setting], environ={})


def _join(c: RawClient, version: int, member_id: str) -> object:
    return c.request(
        ConsumerGroupHeartbeatRequest(
            group_id="g",
            member_id=member_id,
            member_epoch=0,
            rebalance_timeout_ms=30_000,
            subscribed_topic_names=["t"],
            topic_partitions=[],
        ),
        version,
    )


def test_heartbeat_describe_and_restart(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        versions = {k.api_key: (k.min_version, k.max_version) for k in c.request(ApiVersionsRequest(), 3).api_keys}
        assert versions[ApiKey.CONSUMER_GROUP_HEARTBEAT] == (0, 1)
        assert versions[ApiKey.CONSUMER_GROUP_DESCRIBE] == (0, 1)
        topic = CreatableTopic(name="t", num_partitions=4, replication_factor=-1)
        assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == 0
        v0 = _join(c, 0, "")  # v0: the coordinator names the member
        assert v0.error_code == 0 and v0.member_id and v0.member_epoch == 1
        assert v0.assignment is not None
        assert sorted(v0.assignment.topic_partitions[0].partitions) == [0, 1, 2, 3]
        assert _join(c, 1, "").error_code == ErrorCode.INVALID_REQUEST  # v1: the client names it
        v1 = _join(c, 1, "client-made-id")
        assert v1.error_code == 0 and v1.member_id == "client-made-id"
        described = c.request(ConsumerGroupDescribeRequest(group_ids=["g"]), 1).groups[0]
        assert described.error_code == 0 and len(described.members) == 2
        assert described.group_epoch == 2
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        again = c.request(ConsumerGroupDescribeRequest(group_ids=["g"]), 0).groups[0]
        assert again.error_code == 0 and again.group_epoch == 2
        assert sorted(m.member_id for m in again.members) == sorted([v0.member_id, "client-made-id"])
        held = sorted(p for m in again.members for tp in m.assignment.topic_partitions for p in tp.partitions)
        assert held == sorted(set(held))  # replayed assignments are still disjoint
        c.close()
    finally:
        bt.close()


def test_group_config_resource_overrides_the_heartbeat_interval(tmp_path: Path) -> None:
    from kbroker.wire.messages.describe_configs_request import (
        DescribeConfigsRequest,
        DescribeConfigsResource,
    )
    from kbroker.wire.messages.incremental_alter_configs_request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )

    def alter(c: RawClient, name: str, value: str | None, op: int = 0) -> int:
        resource = AlterConfigsResource(
            resource_type=32,
            resource_name="g",
            configs=[AlterableConfig(name=name, config_operation=op, value=value)],
        )
        code: int = c.request(IncrementalAlterConfigsRequest(resources=[resource]), 1).responses[0].error_code
        return code

    def described(c: RawClient) -> dict[str, tuple[str, int]]:
        resource = DescribeConfigsResource(resource_type=32, resource_name="g", configuration_keys=None)
        result = c.request(DescribeConfigsRequest(resources=[resource]), 4).results[0]
        assert result.error_code == 0
        return {e.name: (e.value, e.config_source) for e in result.configs}

    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        c = RawClient(bt.address)
        assert described(c)["consumer.heartbeat.interval.ms"] == ("5000", 5)  # DEFAULT_CONFIG
        assert alter(c, "consumer.heartbeat.interval.ms", "7000") == 0
        assert alter(c, "consumer.heartbeat.interval.ms", "99999") == ErrorCode.INVALID_CONFIG
        assert alter(c, "no.such.config", "1") == ErrorCode.INVALID_CONFIG
        assert described(c)["consumer.heartbeat.interval.ms"] == ("7000", 8)  # GROUP_CONFIG
        topic = CreatableTopic(name="t", num_partitions=1, replication_factor=-1)
        assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == 0
        assert _join(c, 1, "m").heartbeat_interval_ms == 7000
        c.close()
        bt.restart()  # persisted in the data dir
        c = RawClient(bt.address)
        assert described(c)["consumer.heartbeat.interval.ms"] == ("7000", 8)
        assert alter(c, "consumer.heartbeat.interval.ms", None, op=1) == 0
        assert described(c)["consumer.heartbeat.interval.ms"][0] == "5000"
        c.close()
    finally:
        bt.close()


def test_start_up_assignor_names_are_the_coordinators() -> None:
    from kbroker.coordinator.assignors import ASSIGNORS, resolve_assignor_name

    from kbroker.config import CONSUMER_GROUP_ASSIGNOR_NAMES

    assert {resolve_assignor_name(n) for n in CONSUMER_GROUP_ASSIGNOR_NAMES} == set(ASSIGNORS)
