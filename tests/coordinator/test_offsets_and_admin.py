"""OffsetCommit / OffsetFetch / OffsetDelete, DeleteGroups, ListGroups, DescribeGroups, retention."""

from __future__ import annotations

from uuid import UUID

from kbroker.coordinator.group_coordinator import CLEANUP_KEY
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext, subscription
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
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
from kbroker.wire.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

S = GroupState
G = "group"
DAY_MS = 24 * 3600 * 1000


def commit(
    ctx: CoordinatorTestContext,
    group: str,
    offsets: dict[tuple[str, int], int],
    *,
    generation: int = -1,
    member_id: str = "",
    instance_id: str | None = None,
    metadata: str | None = "meta",
    retention_ms: int = -1,
    version: int = 8,
) -> dict[tuple[str, int], int]:
    topics: dict[str, list[OffsetCommitRequestPartition]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(
            OffsetCommitRequestPartition(
                partition_index=partition,
                committed_offset=offset,
                committed_leader_epoch=3,
                committed_metadata=metadata,
            )
        )
    response = ctx.finish(
        ctx.coord.commit_offsets(
            OffsetCommitRequest(
                group_id=group,
                generation_id_or_member_epoch=generation,
                member_id=member_id,
                group_instance_id=instance_id,
                retention_time_ms=retention_ms,
                topics=[OffsetCommitRequestTopic(name=t, partitions=p) for t, p in topics.items()],
            ),
            api_version=version,
        )
    )
    assert response is not None
    return {
        (t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions
    }


def fetch(
    ctx: CoordinatorTestContext, group: str, wanted: dict[str, list[int]] | None, version: int = 8
) -> dict[tuple[str, int], tuple[int, int, str | None, int]]:
    if version >= 8:
        request = OffsetFetchRequest(
            groups=[
                OffsetFetchRequestGroup(
                    group_id=group,
                    topics=None
                    if wanted is None
                    else [
                        OffsetFetchRequestTopics(name=t, partition_indexes=p)
                        for t, p in wanted.items()
                    ],
                )
            ]
        )
    else:
        request = OffsetFetchRequest(
            group_id=group,
            topics=None
            if wanted is None
            else [OffsetFetchRequestTopic(name=t, partition_indexes=p) for t, p in wanted.items()],
        )
    response = ctx.finish(ctx.coord.fetch_offsets(request, api_version=version))
    assert response is not None
    if version >= 8:
        assert response.topics == []
        topics = response.groups[0].topics
    else:
        assert response.groups == []
        topics = response.topics  # type: ignore[assignment]
    return {
        (t.name, p.partition_index): (
            p.committed_offset,
            p.committed_leader_epoch,
            p.metadata,
            p.error_code,
        )
        for t in topics
        for p in t.partitions
    }


def test_simple_group_commit_with_generation_minus_one_and_fetch() -> None:
    ctx = CoordinatorTestContext()
    assert commit(ctx, G, {("t", 0): 5, ("t", 1): 7}) == {("t", 0): 0, ("t", 1): 0}
    assert ctx.state(G) is S.EMPTY
    assert fetch(ctx, G, {"t": [0, 1, 2]}) == {
        ("t", 0): (5, 3, "meta", 0),
        ("t", 1): (7, 3, "meta", 0),
        ("t", 2): (-1, -1, "", 0),
    }
    assert fetch(ctx, G, None, version=7) == {
        ("t", 0): (5, 3, "meta", 0),
        ("t", 1): (7, 3, "meta", 0),
    }
    assert fetch(ctx, "unknown", {"t": [0]}) == {("t", 0): (-1, -1, "", 0)}
    # Null metadata is stored as "", too-long metadata is refused per partition.
    assert commit(ctx, G, {("t", 0): 6}, metadata=None) == {("t", 0): 0}
    assert fetch(ctx, G, {"t": [0]})[("t", 0)][2] == ""
    assert commit(ctx, G, {("t", 0): 9}, metadata="x" * 4097) == {
        ("t", 0): ErrorCode.OFFSET_METADATA_TOO_LARGE
    }
    assert fetch(ctx, G, {"t": [0]})[("t", 0)][0] == 6
    # A member generation for a group that does not exist is rejected.
    assert commit(ctx, "nope", {("t", 0): 1}, generation=3, member_id="m") == {
        ("t", 0): ErrorCode.ILLEGAL_GENERATION
    }
    assert commit(ctx, "", {("t", 0): 1}) == {("t", 0): ErrorCode.INVALID_GROUP_ID}


def test_multi_group_fetch_and_require_stable() -> None:
    ctx = CoordinatorTestContext()
    commit(ctx, "g1", {("a", 0): 1})
    commit(ctx, "g2", {("b", 0): 2})
    txn_commit(ctx, "g2", producer_id=7, offsets={("b", 0): 3})
    request = OffsetFetchRequest(
        groups=[
            OffsetFetchRequestGroup(group_id="g1", topics=None),
            OffsetFetchRequestGroup(
                group_id="g2", topics=[OffsetFetchRequestTopics(name="b", partition_indexes=[0])]
            ),
        ],
        require_stable=True,
    )
    response = ctx.finish(ctx.coord.fetch_offsets(request, api_version=8))
    assert response is not None
    assert [g.group_id for g in response.groups] == ["g1", "g2"]
    assert response.groups[0].topics[0].partitions[0].committed_offset == 1
    unstable = response.groups[1].topics[0].partitions[0]
    assert (
        unstable.error_code == ErrorCode.UNSTABLE_OFFSET_COMMIT and unstable.committed_offset == -1
    )
    request.require_stable = False
    response = ctx.finish(ctx.coord.fetch_offsets(request, api_version=8))
    assert response is not None and response.groups[1].topics[0].partitions[0].committed_offset == 2


def txn_commit(
    ctx: CoordinatorTestContext,
    group: str,
    *,
    producer_id: int,
    offsets: dict[tuple[str, int], int],
    generation: int = -1,
    member_id: str = "",
) -> dict[tuple[str, int], int]:
    topics: dict[str, list[TxnOffsetCommitRequestPartition]] = {}
    for (topic, partition), offset in offsets.items():
        topics.setdefault(topic, []).append(
            TxnOffsetCommitRequestPartition(partition_index=partition, committed_offset=offset)
        )
    request = TxnOffsetCommitRequest(
        transactional_id="tx",
        group_id=group,
        producer_id=producer_id,
        producer_epoch=0,
        generation_id=generation,
        member_id=member_id,
        topics=[TxnOffsetCommitRequestTopic(name=t, partitions=p) for t, p in topics.items()],
    )
    response = ctx.finish(ctx.coord.commit_transactional_offsets(request, api_version=3))
    assert response is not None
    return {
        (t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions
    }


def test_transactional_offsets_wait_for_the_commit_marker() -> None:
    ctx = CoordinatorTestContext()
    commit(ctx, G, {("t", 0): 1})
    assert txn_commit(ctx, G, producer_id=5, offsets={("t", 0): 10, ("t", 1): 11}) == {
        ("t", 0): 0,
        ("t", 1): 0,
    }
    record = ctx.log[-1]
    assert (record.producer_id, record.producer_epoch) == (5, 0)
    assert fetch(ctx, G, {"t": [0, 1]}) == {("t", 0): (1, 3, "meta", 0), ("t", 1): (-1, -1, "", 0)}
    stable = ctx.finish(
        ctx.coord.fetch_offsets(
            OffsetFetchRequest(
                group_id=G,
                topics=[OffsetFetchRequestTopic(name="t", partition_indexes=[0])],
                require_stable=True,
            ),
            api_version=7,
        )
    )
    assert stable is not None
    assert stable.topics[0].partitions[0].error_code == ErrorCode.UNSTABLE_OFFSET_COMMIT
    assert ctx.replayed().offsets.store.pending[5][G][("t", 0)].committed_offset == 10
    ctx.end_transaction(5, committed=True)
    assert fetch(ctx, G, {"t": [0, 1]}) == {("t", 0): (10, -1, "", 0), ("t", 1): (11, -1, "", 0)}
    # An aborted transaction leaves nothing behind.
    txn_commit(ctx, G, producer_id=6, offsets={("t", 0): 99})
    ctx.end_transaction(6, committed=False)
    assert fetch(ctx, G, {"t": [0]})[("t", 0)][0] == 10
    replayed = ctx.replayed()
    assert replayed.offsets.store.offsets == ctx.coord.offsets.store.offsets
    assert replayed.offsets.store.pending == {}


def test_a_plain_commit_written_after_a_transactional_one_wins() -> None:
    ctx = CoordinatorTestContext()
    txn_commit(ctx, G, producer_id=5, offsets={("t", 0): 10})
    commit(ctx, G, {("t", 0): 20})
    ctx.end_transaction(5, committed=True)
    assert fetch(ctx, G, {"t": [0]})[("t", 0)][0] == 20
    assert ctx.replayed().offsets.store.get(G, "t", 0) == ctx.coord.offsets.store.get(G, "t", 0)


def test_transactional_commit_validation() -> None:
    ctx = CoordinatorTestContext()
    assert txn_commit(
        ctx, "nope", producer_id=1, offsets={("t", 0): 1}, generation=2, member_id="m"
    ) == {("t", 0): ErrorCode.ILLEGAL_GENERATION}
    gen, [a] = ctx.stable_group(G)
    # Old TxnOffsetCommit versions carry no member: accepted even while the group has members.
    assert txn_commit(ctx, G, producer_id=1, offsets={("t", 0): 1}) == {("t", 0): 0}
    assert txn_commit(
        ctx, G, producer_id=1, offsets={("t", 0): 1}, generation=gen + 1, member_id=a
    ) == {("t", 0): ErrorCode.ILLEGAL_GENERATION}
    b, _ = ctx.join_new_dynamic_member(G)
    ctx.join(G, a)
    assert ctx.state(G) is S.COMPLETING_REBALANCE
    assert txn_commit(
        ctx, G, producer_id=1, offsets={("t", 0): 2}, generation=gen + 1, member_id=a
    ) == {("t", 0): 0}


def test_pending_transactions_block_expiry_and_group_deletion() -> None:
    ctx = CoordinatorTestContext(offsets_retention_minutes=1)
    ctx.finish(ctx.coord.on_loaded())
    txn_commit(ctx, G, producer_id=5, offsets={("t", 0): 10})
    ctx.sleep(3_600_000)
    assert ctx.state(G) is S.EMPTY
    ctx.end_transaction(5, committed=True)
    ctx.sleep(3_600_000)
    assert ctx.state(G) is None


def test_member_commits_are_checked_against_generation_and_membership() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    ok = {("topic", 0): 0}
    assert commit(ctx, G, {("topic", 0): 1}, generation=gen, member_id=a) == ok
    assert commit(ctx, G, {("topic", 0): 1}, generation=gen + 1, member_id=a) == {
        ("topic", 0): ErrorCode.ILLEGAL_GENERATION
    }
    assert commit(ctx, G, {("topic", 0): 1}, generation=gen, member_id="x") == {
        ("topic", 0): ErrorCode.UNKNOWN_MEMBER_ID
    }
    # generation -1 without member id on a non-empty group (v0-style commit)
    assert commit(ctx, G, {("topic", 0): 1}) == {("topic", 0): ErrorCode.UNKNOWN_MEMBER_ID}
    # A commit keeps the session alive.
    ctx.sleep(9_000)
    commit(ctx, G, {("topic", 0): 2}, generation=gen, member_id=a)
    ctx.sleep(9_000)
    assert ctx.state(G) is S.STABLE
    # CompletingRebalance: the member must finish the rebalance first.
    b, box_b = ctx.join_new_dynamic_member(G)
    ctx.join(G, a)
    assert commit(ctx, G, {("topic", 0): 3}, generation=gen + 1, member_id=a) == {
        ("topic", 0): ErrorCode.REBALANCE_IN_PROGRESS
    }


def test_commit_v2_retention_sets_expire_timestamp_and_expires_then() -> None:
    ctx = CoordinatorTestContext()
    commit(ctx, G, {("t", 0): 1}, retention_ms=60_000, version=2)
    offset = ctx.coord.offsets.store.get(G, "t", 0)
    assert offset is not None and offset.expire_timestamp_ms == ctx.clock.ms + 60_000
    assert offset.leader_epoch == -1  # OffsetCommitValue v1 has no leader epoch
    assert ctx.replayed().offsets.store.get(G, "t", 0) == offset  # written as value v1
    ctx.coord.on_loaded()
    ctx.sleep(600_000)
    assert ctx.coord.offsets.store.get(G, "t", 0) is None
    assert ctx.state(G) is None  # Empty and no offsets left: the group is deleted too


def test_offsets_of_an_empty_group_expire_retention_after_it_became_empty() -> None:
    ctx2 = CoordinatorTestContext(offsets_retention_minutes=24 * 60)
    ctx2.finish(ctx2.coord.on_loaded())
    gen, [a] = ctx2.stable_group(G)
    commit(ctx2, G, {("topic", 0): 1}, generation=gen, member_id=a)
    ctx2.sleep(10_000)
    assert ctx2.state(G) is S.EMPTY
    ctx2.sleep(DAY_MS - 600_000)  # retention counts from when the group became empty
    assert ctx2.coord.offsets.store.get(G, "topic", 0) is not None
    ctx2.sleep(3 * 600_000)  # past retention plus a retention check
    assert ctx2.coord.offsets.store.get(G, "topic", 0) is None
    assert ctx2.state(G) is None
    assert ctx2.log[-1].value is None  # group tombstone
    assert ctx2.replayed().groups.get(G) is None


def test_stable_consumer_group_keeps_subscribed_topic_offsets_expires_others() -> None:
    ctx = CoordinatorTestContext(offsets_retention_minutes=60)
    ctx.finish(ctx.coord.on_loaded())
    gen, [a] = ctx.stable_group(G)
    commit(ctx, G, {("topic", 0): 1, ("old", 0): 2}, generation=gen, member_id=a)
    for _ in range(80 * 8):  # keep the member alive for 80 minutes
        ctx.sleep(7_500)
        assert ctx.heartbeat(G, a, gen) in (0, ErrorCode.REBALANCE_IN_PROGRESS)
    assert ctx.state(G) is S.STABLE
    assert ctx.coord.offsets.store.get(G, "old", 0) is None
    assert ctx.coord.offsets.store.get(G, "topic", 0) is not None


def test_offset_delete() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    commit(ctx, G, {("topic", 0): 1, ("other", 0): 2, ("other", 1): 3}, generation=gen, member_id=a)
    request = OffsetDeleteRequest(
        group_id=G,
        topics=[
            OffsetDeleteRequestTopic(
                name="topic", partitions=[OffsetDeleteRequestPartition(partition_index=0)]
            ),
            OffsetDeleteRequestTopic(
                name="other",
                partitions=[
                    OffsetDeleteRequestPartition(partition_index=0),
                    OffsetDeleteRequestPartition(partition_index=9),
                ],
            ),
        ],
    )
    response = ctx.finish(ctx.coord.delete_offsets(request))
    assert response is not None and response.error_code == 0
    by_topic = {
        t.name: [(p.partition_index, p.error_code) for p in t.partitions] for t in response.topics
    }
    assert by_topic == {"topic": [(0, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC)], "other": [(0, 0)]}
    assert ctx.coord.offsets.store.get(G, "other", 0) is None
    assert ctx.coord.offsets.store.get(G, "other", 1) is not None
    assert ctx.replayed().offsets.store.get(G, "other", 0) is None
    missing = ctx.finish(ctx.coord.delete_offsets(OffsetDeleteRequest(group_id="nope")))
    assert missing is not None and missing.error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_offset_delete_on_non_consumer_group_with_members_is_non_empty_group() -> None:
    ctx = CoordinatorTestContext()
    ctx.stable_group(G, protocol_type="connect", protocols=[("v1", b"")])
    response = ctx.finish(ctx.coord.delete_offsets(OffsetDeleteRequest(group_id=G)))
    assert response is not None and response.error_code == ErrorCode.NON_EMPTY_GROUP


def test_delete_groups() -> None:
    ctx = CoordinatorTestContext()
    ctx.stable_group("busy")
    commit(ctx, "idle", {("t", 0): 1, ("t", 1): 2})
    response = ctx.finish(
        ctx.coord.delete_groups(
            DeleteGroupsRequest(groups_names=["busy", "idle", "nope"]), api_version=2
        )
    )
    assert response is not None
    assert [(r.group_id, r.error_code) for r in response.results] == [
        ("busy", ErrorCode.NON_EMPTY_GROUP),
        ("idle", 0),
        ("nope", ErrorCode.GROUP_ID_NOT_FOUND),
    ]
    assert ctx.state("idle") is None
    assert [r.value for r in ctx.log[-3:]] == [None, None, None]  # 2 offsets + group
    replayed = ctx.replayed()
    assert (
        replayed.groups.get("idle") is None and replayed.offsets.store.offsets.get("idle") is None
    )
    assert fetch(ctx, "idle", {"t": [0]}) == {("t", 0): (-1, -1, "", 0)}


def test_list_groups_with_state_and_type_filters() -> None:
    ctx = CoordinatorTestContext()
    ctx.stable_group("stable")
    commit(ctx, "simple", {("t", 0): 1})
    ctx.join_new_dynamic_member("joining")

    def listed(states: list[str], types: list[str], version: int = 5) -> list[tuple[str, str, str]]:
        response = ctx.finish(
            ctx.coord.list_groups(
                ListGroupsRequest(states_filter=states, types_filter=types), api_version=version
            )
        )
        assert response is not None and response.error_code == 0
        return [(g.group_id, g.group_state, g.protocol_type) for g in response.groups]

    assert listed([], []) == [
        ("joining", "PreparingRebalance", "consumer"),
        ("simple", "Empty", ""),
        ("stable", "Stable", "consumer"),
    ]
    assert listed(["stable", "EMPTY"], []) == [
        ("simple", "Empty", ""),
        ("stable", "Stable", "consumer"),
    ]
    assert listed([], ["consumer"]) == []
    assert [g for g, _, _ in listed([], ["Classic"])] == ["joining", "simple", "stable"]
    assert len(listed(["Stable"], ["consumer"], version=3)) == 3  # filters need v4/v5


def test_describe_groups() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    ctx.join_new_dynamic_member("joining")
    response = ctx.finish(
        ctx.coord.describe_groups(
            DescribeGroupsRequest(groups=[G, "joining", "nope"]), api_version=0
        )
    )
    assert response is not None
    stable, joining, missing = response.groups
    assert (stable.group_state, stable.protocol_type, stable.protocol_data) == (
        "Stable",
        "consumer",
        "range",
    )
    member = stable.members[0]
    assert (
        member.member_id == a
        and member.client_id == "client"
        and member.client_host == "/127.0.0.1"
    )
    assert (
        member.member_metadata == subscription("topic")
        and member.member_assignment == f"assignment-{a}".encode()
    )
    assert joining.group_state == "PreparingRebalance" and joining.protocol_data == ""
    assert joining.members[0].member_metadata == b"" and joining.members[0].member_assignment == b""
    assert (missing.group_state, missing.error_code) == ("Dead", 0)
    v6 = ctx.finish(
        ctx.coord.describe_groups(DescribeGroupsRequest(groups=["nope"]), api_version=6)
    )
    assert v6 is not None and v6.groups[0].error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_commit_v10_resolves_topic_ids() -> None:
    ctx = CoordinatorTestContext()
    known = UUID(int=7)
    ctx.coord.offsets.topic_name_for_id = lambda topic_id: "t" if topic_id == known else None
    request = OffsetCommitRequest(
        group_id=G,
        topics=[
            OffsetCommitRequestTopic(
                topic_id=known, partitions=[OffsetCommitRequestPartition(committed_offset=4)]
            ),
            OffsetCommitRequestTopic(
                topic_id=UUID(int=8), partitions=[OffsetCommitRequestPartition()]
            ),
        ],
    )
    response = ctx.finish(ctx.coord.commit_offsets(request, api_version=10))
    assert response is not None
    assert [t.partitions[0].error_code for t in response.topics] == [0, ErrorCode.UNKNOWN_TOPIC_ID]
    offset = ctx.coord.offsets.store.get(G, "t", 0)
    assert offset is not None and offset.committed_offset == 4


def test_cleanup_cycle_is_rescheduled() -> None:
    ctx = CoordinatorTestContext(offsets_retention_check_interval_ms=1_000)
    ctx.finish(ctx.coord.on_loaded())
    assert ctx.timer.deadline_of(CLEANUP_KEY) == ctx.clock.ms + 1_000
    ctx.sleep(1_000)
    assert ctx.timer.deadline_of(CLEANUP_KEY) == ctx.clock.ms + 1_000
