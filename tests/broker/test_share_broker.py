"""KIP-932 share groups through a real broker on loopback, with the wire codec: ApiVersions
rows, share sessions (open, next epoch, wrong epoch, close), ShareFetch with piggy-backed
acknowledgements, ShareAcknowledge, the share-group admin calls, the GROUP config
``share.auto.offset.reset``, the group.share.* start-up checks, and a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_share_group_offsets_request import (
    AlterShareGroupOffsetsRequest,
    AlterShareGroupOffsetsRequestPartition,
    AlterShareGroupOffsetsRequestTopic,
)
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.delete_share_group_offsets_request import (
    DeleteShareGroupOffsetsRequest,
    DeleteShareGroupOffsetsRequestTopic,
)
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.describe_share_group_offsets_request import (
    DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequestGroup,
)
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.messages.share_acknowledge_request import (
    AcknowledgementBatch as AckBatch,
)
from kbroker.wire.messages.share_acknowledge_request import (
    AcknowledgePartition,
    AcknowledgeTopic,
    ShareAcknowledgeRequest,
)
from kbroker.wire.messages.share_fetch_request import (
    AcknowledgementBatch,
    FetchPartition,
    FetchTopic,
    ShareFetchRequest,
)
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest
from kbroker.wire.records import build_record_batch

from kbroker.config import ConfigError, build_config
from kbroker.testing import BrokerThread

ACCEPT, RELEASE = 1, 2
GROUP_RESOURCE = 32


@pytest.mark.parametrize(
    "setting",
    [
        "group.share.record.lock.duration.ms=5000",  # below the 15 s minimum
        "group.share.delivery.count.limit=1",  # below Kafka's floor of 2
        "group.share.session.timeout.ms=1000",
    ],
)
def test_bad_share_group_configs_are_refused_at_start_up(setting: str) -> None:
    with pytest.raises(ConfigError):
        build_config(overrides=[setting], environ={})


def _produce(c: RawClient, topic: str, count: int) -> None:
    batch = build_record_batch([(None, f"v{i}".encode(), [], 0) for i in range(count)])
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name=topic, partition_data=[PartitionProduceData(index=0, records=bytes(batch))]
            )
        ],
    )
    assert c.request(req, 9).responses[0].partition_responses[0].error_code == 0


def _fetch(
    c: RawClient,
    topic_id: UUID,
    epoch: int,
    acks: list[tuple[int, int, int]] | None = None,
    **kw: Any,
) -> Any:
    part = FetchPartition(
        partition_index=0,
        acknowledgement_batches=[
            AcknowledgementBatch(first_offset=f, last_offset=la, acknowledge_types=[t])
            for f, la, t in acks or []
        ],
    )
    req = ShareFetchRequest(
        group_id="sg",
        member_id="m1",
        share_session_epoch=epoch,
        max_wait_ms=kw.get("max_wait_ms", 100),
        min_bytes=1,
        max_bytes=1 << 20,
        max_records=kw.get("max_records", 100),
        batch_size=100,
        topics=[FetchTopic(topic_id=topic_id, partitions=[part])],
    )
    return c.request(req, 2)


def _acquired(resp: Any) -> list[tuple[int, int, int]]:
    return [
        (a.first_offset, a.last_offset, a.delivery_count)
        for t in resp.responses
        for p in t.partitions
        for a in p.acquired_records
    ]


def _join(c: RawClient, member: str = "m1") -> Any:
    resp = c.request(
        ShareGroupHeartbeatRequest(
            group_id="sg", member_id=member, member_epoch=0, subscribed_topic_names=["t"]
        ),
        1,
    )
    assert resp.error_code == 0, resp
    return resp


def _start_offset(c: RawClient) -> int:
    resp = c.request(
        DescribeShareGroupOffsetsRequest(
            groups=[DescribeShareGroupOffsetsRequestGroup(group_id="sg", topics=None)]
        ),
        1,
    )
    return int(resp.groups[0].topics[0].partitions[0].start_offset)


def test_share_sessions_fetch_acknowledge_admin_and_restart(tmp_path: Path) -> None:
    bt = BrokerThread(
        tmp_path / "data",
        {"offsets.topic.num.partitions": "1", "share.coordinator.state.topic.num.partitions": "1"},
    )
    bt.start()
    try:
        c = RawClient(bt.address)
        versions = {
            k.api_key: (k.min_version, k.max_version)
            for k in c.request(ApiVersionsRequest(), 3).api_keys
        }
        assert versions[ApiKey.SHARE_GROUP_HEARTBEAT] == (1, 1)
        assert versions[ApiKey.SHARE_FETCH] == (1, 2)
        assert versions[ApiKey.SHARE_ACKNOWLEDGE] == (1, 2)
        assert versions[ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS] == (0, 1)
        topic = CreatableTopic(name="t", num_partitions=1, replication_factor=-1)
        assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == 0
        topic_id = (
            c.request(MetadataRequest(topics=[MetadataRequestTopic(name="t")]), 12)
            .topics[0]
            .topic_id
        )
        _produce(c, "t", 3)  # before the group: the default "latest" skips these
        alter = IncrementalAlterConfigsRequest(
            resources=[
                AlterConfigsResource(
                    resource_type=GROUP_RESOURCE,
                    resource_name="sg",
                    configs=[
                        AlterableConfig(
                            name="share.auto.offset.reset", config_operation=0, value="sideways"
                        )
                    ],
                )
            ]
        )
        assert c.request(alter, 1).responses[0].error_code == ErrorCode.INVALID_CONFIG
        alter.resources[0].resource_name = "other"
        alter.resources[0].configs[0].value = "by_duration:PT1H"
        assert c.request(alter, 1).responses[0].error_code == 0
        described = c.request(
            DescribeConfigsRequest(
                resources=[
                    DescribeConfigsResource(
                        resource_type=GROUP_RESOURCE, resource_name="sg", configuration_keys=None
                    )
                ]
            ),
            4,
        )
        values = {r.name: r.value for r in described.results[0].configs}
        assert values["share.auto.offset.reset"] == "latest"
        assert values["share.record.lock.duration.ms"] == "30000"

        joined = _join(c)
        assert joined.assignment.topic_partitions[0].partitions == [0]
        assert _start_offset(c) == 3
        # a session must be opened (epoch 0) before anything else
        assert _fetch(c, topic_id, 1).error_code == ErrorCode.SHARE_SESSION_NOT_FOUND
        assert _fetch(c, topic_id, 0, [(3, 3, ACCEPT)]).error_code == ErrorCode.INVALID_REQUEST
        assert _acquired(_fetch(c, topic_id, 0)) == []
        _produce(c, "t", 4)
        assert _acquired(_fetch(c, topic_id, 1, max_records=2)) == [(3, 4, 1)]
        assert _fetch(c, topic_id, 3).error_code == ErrorCode.INVALID_SHARE_SESSION_EPOCH
        # accept 3, release 4 and fetch again in one request: 4 comes back with count 2
        resp = _fetch(c, topic_id, 2, [(3, 3, ACCEPT), (4, 4, RELEASE)])
        assert resp.responses[0].partitions[0].acknowledge_error_code == 0
        assert _acquired(resp) == [(4, 4, 2), (5, 6, 1)]
        # acknowledgements only (nothing left to acquire): the partition answers with its
        # acknowledge result and empty records (a null failed to encode at v1+)
        only_acks = _fetch(c, topic_id, 3, [(6, 6, ACCEPT)], max_wait_ms=0)
        assert [
            (p.acknowledge_error_code, p.records) for p in only_acks.responses[0].partitions
        ] == [(0, b"")]
        # acknowledging a record this member does not hold
        bad = c.request(
            ShareAcknowledgeRequest(
                group_id="sg",
                member_id="m1",
                share_session_epoch=4,
                topics=[
                    AcknowledgeTopic(
                        topic_id=topic_id,
                        partitions=[
                            AcknowledgePartition(
                                partition_index=0,
                                acknowledgement_batches=[
                                    AckBatch(
                                        first_offset=0, last_offset=0, acknowledge_types=[ACCEPT]
                                    )
                                ],
                            )
                        ],
                    )
                ],
            ),
            2,
        )
        assert bad.responses[0].partitions[0].error_code == ErrorCode.INVALID_RECORD_STATE
        done = c.request(
            ShareAcknowledgeRequest(
                group_id="sg",
                member_id="m1",
                share_session_epoch=-1,  # closes the session
                topics=[
                    AcknowledgeTopic(
                        topic_id=topic_id,
                        partitions=[
                            AcknowledgePartition(
                                partition_index=0,
                                acknowledgement_batches=[
                                    AckBatch(
                                        first_offset=4, last_offset=5, acknowledge_types=[ACCEPT]
                                    )
                                ],
                            )
                        ],
                    )
                ],
            ),
            2,
        )
        assert done.responses[0].partitions[0].error_code == 0
        assert _start_offset(c) == 7
        # the classic API sees a share group but does not describe it
        assert (
            c.request(DescribeGroupsRequest(groups=["sg"]), 6).groups[0].error_code
            == ErrorCode.GROUP_ID_NOT_FOUND
        )
        # admin on a live group is refused; after the member leaves it works
        alter_offsets = AlterShareGroupOffsetsRequest(
            group_id="sg",
            topics=[
                AlterShareGroupOffsetsRequestTopic(
                    topic_name="t",
                    partitions=[
                        AlterShareGroupOffsetsRequestPartition(partition_index=0, start_offset=1)
                    ],
                )
            ],
        )
        assert c.request(alter_offsets, 0).error_code == ErrorCode.NON_EMPTY_GROUP
        left = c.request(
            ShareGroupHeartbeatRequest(group_id="sg", member_id="m1", member_epoch=-1), 1
        )
        assert left.error_code == 0
        altered = c.request(alter_offsets, 0)
        assert altered.error_code == 0 and altered.responses[0].partitions[0].error_code == 0
        assert _start_offset(c) == 1
        c.close()
        bt.restart()
        c = RawClient(bt.address)
        assert _start_offset(c) == 1  # durable in __share_group_state
        _join(c)
        assert _acquired(_fetch(c, topic_id, 0)) == [(1, 6, 1)]
        c.request(ShareGroupHeartbeatRequest(group_id="sg", member_id="m1", member_epoch=-1), 1)
        deleted = c.request(
            DeleteShareGroupOffsetsRequest(
                group_id="sg", topics=[DeleteShareGroupOffsetsRequestTopic(topic_name="t")]
            ),
            0,
        )
        assert deleted.error_code == 0 and deleted.responses[0].error_code == 0
        after = c.request(
            DescribeShareGroupOffsetsRequest(
                groups=[DescribeShareGroupOffsetsRequestGroup(group_id="sg", topics=None)]
            ),
            1,
        )
        assert after.groups[0].topics == []
        c.close()
    finally:
        bt.close()


def test_share_apis_follow_the_emulated_release() -> None:
    """Share APIs only from releases that had them; share.version finalized by default only
    from 4.2 (a 4.1 cluster had share groups as a preview, off until enabled)."""
    from kbroker.emulation import emulation_for

    share_keys = (76, 77, 78, 79, 90, 91, 92)
    old = emulation_for("4.0")
    assert not any(k in old.api_ranges for k in share_keys) and "share.version" not in old.supported_features
    preview = emulation_for("4.1")
    assert preview.api_ranges[ApiKey.SHARE_FETCH] == (1, 1)
    assert preview.supported_features["share.version"] == (0, 1)
    assert "share.version" not in preview.finalized_features
    newest = emulation_for(None)
    assert newest.api_ranges[ApiKey.SHARE_FETCH] == (1, 2)
    assert newest.finalized_features["share.version"] == 1


def test_share_groups_need_the_share_version_feature(tmp_path: Path) -> None:
    from kbroker.wire.messages.update_features_request import (
        FeatureUpdateKey,
        UpdateFeaturesRequest,
    )

    bt = BrokerThread(tmp_path / "data", {"kbroker.emulate.version": "4.1"})
    bt.start()
    try:
        c = RawClient(bt.address)
        topic = CreatableTopic(name="t", num_partitions=1, replication_factor=-1)
        assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == 0
        join = ShareGroupHeartbeatRequest(group_id="sg", member_id="m1", member_epoch=0, subscribed_topic_names=["t"])
        assert c.request(join, 1).error_code == ErrorCode.UNSUPPORTED_VERSION
        enable = UpdateFeaturesRequest(
            timeout_ms=5000, feature_updates=[FeatureUpdateKey(feature="share.version", max_version_level=1, upgrade_type=1)]
        )
        assert c.request(enable, 1).error_code == 0
        assert c.request(join, 1).error_code == 0
        c.close()
    finally:
        bt.close()


def test_bad_share_requests_get_error_codes(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"offsets.topic.num.partitions": "1", "share.coordinator.state.topic.num.partitions": "1"})
    bt.start()
    try:
        c = RawClient(bt.address)
        topic = CreatableTopic(name="t", num_partitions=1, replication_factor=-1)
        assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == 0
        topic_id = c.request(MetadataRequest(topics=[MetadataRequestTopic(name="t")]), 12).topics[0].topic_id
        no_member = ShareFetchRequest(group_id="sg", member_id=None, share_session_epoch=0, max_wait_ms=0, topics=[])
        assert c.request(no_member, 1).error_code == ErrorCode.INVALID_REQUEST
        assert _fetch(c, topic_id, 0).error_code == ErrorCode.UNKNOWN_MEMBER_ID  # not in the group
        _produce(c, "t", 2)
        _join(c)
        stranger = _fetch(c, UUID(int=12345), 0, max_wait_ms=-5)
        assert stranger.error_code == 0
        assert [p.error_code for t in stranger.responses for p in t.partitions] == [ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
        assert _acquired(_fetch(c, topic_id, 0, max_wait_ms=0)) == []  # latest: nothing yet
        _produce(c, "t", 2)
        assert _acquired(_fetch(c, topic_id, 1, max_wait_ms=0)) == [(2, 3, 1)]
        bad_type = _fetch(c, topic_id, 2, [(2, 3, 9)], max_wait_ms=0)
        assert bad_type.responses[0].partitions[0].acknowledge_error_code == ErrorCode.INVALID_REQUEST
        backwards = _fetch(c, topic_id, 3, [(3, 2, ACCEPT)], max_wait_ms=0)
        assert backwards.responses[0].partitions[0].acknowledge_error_code == ErrorCode.INVALID_REQUEST
        assert _fetch(c, topic_id, 4, [(2, 3, ACCEPT)], max_wait_ms=0).responses[0].partitions[0].acknowledge_error_code == 0
        open_again = ShareAcknowledgeRequest(group_id="sg", member_id="m1", share_session_epoch=0, topics=[])
        assert c.request(open_again, 2).error_code == ErrorCode.INVALID_SHARE_SESSION_EPOCH
        c.close()
    finally:
        bt.close()
