"""Every response the coordinator builds encodes at the API version it was asked for.

The generated codec refuses non-default values a version cannot carry (e.g. SkipAssignment
before JoinGroup v9, Members before LeaveGroup v3), so this catches version mistakes.
"""

from __future__ import annotations

from typing import Any

import pytest
from kbroker.coordinator.testing import CoordinatorTestContext
from kbroker.wire.codec import decode, encode
from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_delete_request import (
    OffsetDeleteRequest,
    OffsetDeleteRequestPartition,
    OffsetDeleteRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopic,
    OffsetFetchRequestTopics,
)


def round_trip(response: Any, version: int) -> None:
    assert response is not None
    data = encode(response, version)
    decode(type(response), version, data)


@pytest.mark.parametrize("version", range(0, 10))
def test_join_and_sync_responses_encode(version: int) -> None:
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=0)
    instance = "i1" if version >= 5 else None
    box = ctx.join("g", instance_id=instance, version=version)
    if box.done and box.response.error_code == 79:
        round_trip(box.response, version)
        box = ctx.join("g", box.response.member_id, version=version)
    ctx.sleep(0)
    joined = box.response
    round_trip(joined, version)
    sync_version = min(version, 5)
    sync = ctx.sync(
        "g", joined.member_id, joined.generation_id, {joined.member_id: b"a"}, instance_id=instance
    )
    round_trip(sync.response, sync_version)
    round_trip(ctx.join("g", "bogus", version=version).response, version)
    if instance is not None:  # static rejoin: skip_assignment on v9
        again = ctx.join("g", instance_id=instance, version=version).response
        assert again.skip_assignment == (version >= 9)
        round_trip(again, version)


@pytest.mark.parametrize("version", range(0, 6))
def test_leave_responses_encode(version: int) -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group("g")
    request = LeaveGroupRequest(group_id="g", member_id=a, members=[MemberIdentity(member_id=a)])
    round_trip(ctx.finish(ctx.coord.leave_group(request, api_version=version)), version)
    round_trip(ctx.finish(ctx.coord.leave_group(request, api_version=version)), version)


@pytest.mark.parametrize("version", range(2, 11))
def test_offset_commit_and_fetch_responses_encode(version: int) -> None:
    ctx = CoordinatorTestContext()
    ctx.coord.offsets.topic_name_for_id = lambda _id: "t"
    commit = OffsetCommitRequest(
        group_id="g",
        topics=[
            OffsetCommitRequestTopic(
                name="t",
                partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=5)],
            )
        ],
    )
    round_trip(ctx.finish(ctx.coord.commit_offsets(commit, api_version=version)), version)
    for fetch_version in (version, min(version, 7), max(1, version - 9)):
        if fetch_version >= 8:
            request = OffsetFetchRequest(
                groups=[
                    OffsetFetchRequestGroup(
                        group_id="g",
                        topics=[OffsetFetchRequestTopics(name="t", partition_indexes=[0, 1])],
                    ),
                    OffsetFetchRequestGroup(group_id="g", topics=None),
                ],
                require_stable=True,
            )
        else:
            request = OffsetFetchRequest(
                group_id="g", topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0, 1])]
            )
        round_trip(
            ctx.finish(ctx.coord.fetch_offsets(request, api_version=fetch_version)), fetch_version
        )


@pytest.mark.parametrize("version", range(0, 7))
def test_admin_responses_encode(version: int) -> None:
    ctx = CoordinatorTestContext()
    ctx.stable_group("busy")
    ctx.join_new_dynamic_member("joining")
    described = ctx.coord.describe_groups(
        DescribeGroupsRequest(groups=["busy", "joining", "nope"]), api_version=version
    )
    round_trip(ctx.finish(described), version)
    list_version = min(version, 5)
    listed = ctx.coord.list_groups(ListGroupsRequest(), api_version=list_version)
    round_trip(ctx.finish(listed), list_version)
    delete_version = min(version, 2)
    deleted = ctx.coord.delete_groups(
        DeleteGroupsRequest(groups_names=["busy", "nope"]), api_version=delete_version
    )
    round_trip(ctx.finish(deleted), delete_version)
    offset_delete = OffsetDeleteRequest(
        group_id="busy",
        topics=[
            OffsetDeleteRequestTopic(
                name="topic", partitions=[OffsetDeleteRequestPartition(partition_index=0)]
            )
        ],
    )
    round_trip(ctx.finish(ctx.coord.delete_offsets(offset_delete)), 0)


@pytest.mark.parametrize("version", range(0, 6))
def test_txn_offset_commit_responses_encode(version: int) -> None:
    from kbroker.wire.messages.txn_offset_commit_request import (
        TxnOffsetCommitRequest,
        TxnOffsetCommitRequestPartition,
        TxnOffsetCommitRequestTopic,
    )

    ctx = CoordinatorTestContext()
    request = TxnOffsetCommitRequest(
        transactional_id="tx",
        group_id="g",
        producer_id=3,
        topics=[
            TxnOffsetCommitRequestTopic(name="t", partitions=[TxnOffsetCommitRequestPartition()])
        ],
    )
    round_trip(
        ctx.finish(ctx.coord.commit_transactional_offsets(request, api_version=version)), version
    )
