"""KIP-848 consumer groups, driven through ``GroupCoordinator`` with a fake clock."""

from __future__ import annotations

from uuid import UUID

import pytest
from kbroker.coordinator.assignors import (
    AssignorMember,
    check_assignment,
    range_assign,
    uniform_assign,
)
from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_group import (
    ConsumerGroup,
    ConsumerGroupState,
    IllegalTransition,
    MemberState,
    assert_valid_transition,
)
from kbroker.coordinator.consumer_testing import (
    ConsumerGroupTestContext,
    SimConsumer,
    group_snapshot,
)
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import (
    OffsetFetchRequest,
    OffsetFetchRequestGroup,
    OffsetFetchRequestTopics,
)

G = "g"


def settle(members: list[SimConsumer], rounds: int = 10) -> None:
    for _ in range(rounds):
        for m in members:
            m.heartbeat()


def owned_disjoint_and_complete(members: list[SimConsumer], topic_id: UUID, n: int) -> None:
    seen: set[tuple[UUID, int]] = set()
    for m in members:
        assert not (m.owned_set() & seen), "a partition owned twice"
        seen |= m.owned_set()
    assert seen == {(topic_id, p) for p in range(n)}


def test_two_members_split_six_partitions_and_reach_stable() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 6)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    assert a.epoch == 1 and a.owned == {tid: frozenset(range(6))}
    b = SimConsumer(ctx, G, "b", topics=["t"])
    settle([a, b])
    owned_disjoint_and_complete([a, b], tid, 6)
    assert len(a.owned_set()) == len(b.owned_set()) == 3
    group = ctx.group(G)
    assert group.state is ConsumerGroupState.STABLE
    assert a.epoch == b.epoch == group.group_epoch == group.assignment_epoch == 2


def test_partitions_are_revoked_before_they_are_given_to_another_member() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 4)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    b = SimConsumer(ctx, G, "b", topics=["t"])
    b.heartbeat()  # target computed: b gets 2 of a's partitions, but a still holds them
    assert b.owned == {} and b.epoch == 2
    assert ctx.group(G).members["b"].state is MemberState.UNRELEASED_PARTITIONS
    response = a.heartbeat()  # a is told to keep 2: revoke the other 2, epoch unchanged
    assert response.member_epoch == 1 and len(a.owned_set()) == 2
    assert ctx.group(G).members["a"].state is MemberState.UNREVOKED_PARTITIONS
    b.heartbeat()  # still pending revocation: nothing for b yet
    assert b.owned == {}
    a.heartbeat()  # a reports it owns only 2: revocation done, a moves to epoch 2
    assert a.epoch == 2
    b.heartbeat()
    assert len(b.owned_set()) == 2
    owned_disjoint_and_complete([a, b], tid, 4)
    assert ctx.group(G).state is ConsumerGroupState.STABLE


def test_clean_leave_bumps_the_epoch_and_gives_the_rest_everything() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 6)
    members = [SimConsumer(ctx, G, f"m{i}", topics=["t"]) for i in range(3)]
    settle(members)
    epoch = ctx.group(G).group_epoch
    response = members[2].leave()
    assert response.error_code == 0 and response.member_epoch == -1
    assert ctx.group(G).group_epoch == epoch + 1
    settle(members[:2])
    owned_disjoint_and_complete(members[:2], tid, 6)


def test_session_timeout_removes_a_silent_member() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 6)
    a, b = SimConsumer(ctx, G, "a", topics=["t"]), SimConsumer(ctx, G, "b", topics=["t"])
    settle([a, b])
    for _ in range(12):  # only a heartbeats, every 5 s, for 60 s (session 45 s)
        ctx.sleep(5_000)
        a.heartbeat()
    assert set(ctx.group(G).members) == {"a"}
    assert a.owned == {tid: frozenset(range(6))}
    assert b.heartbeat().error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_a_member_that_does_not_revoke_is_removed_after_its_rebalance_timeout() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 4)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    b = SimConsumer(ctx, G, "b", topics=["t"])
    b.heartbeat()
    a.heartbeat()  # told to revoke; it never reports the revocation
    for _ in range(8):
        ctx.sleep(4_000)
        a.heartbeat(report_owned=False)
        b.heartbeat()
    assert "a" not in ctx.group(G).members  # 30 s rebalance timeout
    assert len(b.owned_set()) == 4


def test_fenced_and_unknown_member_epochs() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 2)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    bad = ctx.heartbeat(group_id=G, member_id="a", member_epoch=7)
    assert bad.error_code == ErrorCode.FENCED_MEMBER_EPOCH
    assert ctx.heartbeat(group_id=G, member_id="zz", member_epoch=1).error_code == (
        ErrorCode.UNKNOWN_MEMBER_ID
    )
    assert ctx.heartbeat(group_id=G, member_id="", member_epoch=0).error_code == (
        ErrorCode.INVALID_REQUEST
    )


def test_v0_join_without_member_id_gets_one_from_the_coordinator() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 2)
    response = ctx.heartbeat(
        version=0,
        group_id=G,
        member_id="",
        member_epoch=0,
        rebalance_timeout_ms=30_000,
        subscribed_topic_names=["t"],
        topic_partitions=[],
    )
    assert response.error_code == 0 and response.member_id and response.member_epoch == 1


def test_static_member_leaves_and_comes_back_with_its_assignment_without_a_new_epoch() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 6)
    a = SimConsumer(ctx, G, "a1", topics=["t"], instance_id="ia")
    b = SimConsumer(ctx, G, "b", topics=["t"])
    settle([a, b])
    before = a.owned
    epoch = ctx.group(G).group_epoch
    assert a.leave(static=True).member_epoch == -2
    a2 = SimConsumer(ctx, G, "a2", topics=["t"], instance_id="ia")
    a2.heartbeat()
    assert ctx.group(G).group_epoch == epoch
    assert a2.owned == before
    assert "a1" not in ctx.group(G).members
    owned_disjoint_and_complete([a2, b], tid, 6)
    # the instance id is in use by a2 now
    a3 = SimConsumer(ctx, G, "a3", topics=["t"], instance_id="ia")
    assert a3.heartbeat().error_code == ErrorCode.UNRELEASED_INSTANCE_ID
    fenced = ctx.heartbeat(group_id=G, member_id="b", member_epoch=b.epoch, instance_id="ia")
    assert fenced.error_code == ErrorCode.FENCED_INSTANCE_ID


def test_regex_subscription_uses_re2_and_picks_up_new_topics() -> None:
    ctx = ConsumerGroupTestContext()
    t1 = ctx.create_topic("orders-1", 2)
    ctx.create_topic("payments", 2)
    ctx.create_topic("__consumer_offsets", 1, internal=True)
    a = SimConsumer(ctx, G, "a", regex="orders-.*")
    a.heartbeat()
    assert a.owned == {t1: frozenset({0, 1})}
    t2 = ctx.create_topic("orders-2", 1)
    a.heartbeat()
    a.heartbeat()
    assert a.owned == {t1: frozenset({0, 1}), t2: frozenset({0})}
    a.heartbeat()
    match_all = SimConsumer(ctx, "g2", "x", regex=".*")
    match_all.heartbeat()
    assert all(ctx.topic_name(t) != "__consumer_offsets" for t in match_all.owned)
    # RE2 has no backreferences: Python's re would accept this, RE2 refuses it
    bad = SimConsumer(ctx, "g3", "y", regex=r"(a)\1")
    assert bad.heartbeat().error_code == ErrorCode.INVALID_REGULAR_EXPRESSION


def test_new_partitions_and_subscription_changes_make_a_new_target() -> None:
    ctx = ConsumerGroupTestContext()
    tid = ctx.create_topic("t", 2)
    other = ctx.create_topic("u", 1)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    epoch = ctx.group(G).group_epoch
    ctx.add_partitions("t", 4)  # CreatePartitions
    a.heartbeat()
    assert ctx.group(G).group_epoch == epoch + 1
    assert a.owned == {tid: frozenset(range(4))}
    response = ctx.heartbeat(
        group_id=G,
        member_id="a",
        member_epoch=a.epoch,
        subscribed_topic_names=["t", "u"],
    )
    assert response.assignment is not None
    got = {tp.topic_id: set(tp.partitions) for tp in response.assignment.topic_partitions}
    assert got == {tid: {0, 1, 2, 3}, other: {0}}


def test_server_assignor_is_selected_by_the_members_and_unknown_ones_are_refused() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 5)
    a = SimConsumer(ctx, G, "a", topics=["t"], assignor="range")
    b = SimConsumer(ctx, G, "b", topics=["t"], assignor="range")
    settle([a, b])
    assert ctx.coord.consumer_groups.select_assignor(ctx.group(G)) == "range"
    assert sorted(p for _, p in a.owned_set()) == [0, 1, 2]  # range: contiguous, first +1
    c = SimConsumer(ctx, G, "c", topics=["t"], assignor="sticky")
    assert c.heartbeat().error_code == ErrorCode.UNSUPPORTED_ASSIGNOR


def test_group_max_size() -> None:
    ctx = ConsumerGroupTestContext(group_consumer_max_size=2)
    ctx.create_topic("t", 1)
    for name in ("a", "b"):
        assert SimConsumer(ctx, G, name, topics=["t"]).heartbeat().error_code == 0
    assert (
        SimConsumer(ctx, G, "c", topics=["t"]).heartbeat().error_code
        == ErrorCode.GROUP_MAX_SIZE_REACHED
    )


def _commit(ctx: ConsumerGroupTestContext, member: str, epoch: int, version: int = 9) -> int:
    request = OffsetCommitRequest(
        group_id=G,
        member_id=member,
        generation_id_or_member_epoch=epoch,
        topics=[
            OffsetCommitRequestTopic(
                name="t",
                partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=42)],
            )
        ],
    )
    response = ctx.finish(ctx.coord.commit_offsets(request, api_version=version))
    code: int = response.topics[0].partitions[0].error_code
    return code


def _fetch(ctx: ConsumerGroupTestContext, member: str | None, epoch: int) -> tuple[int, int]:
    request = OffsetFetchRequest(
        groups=[
            OffsetFetchRequestGroup(
                group_id=G,
                member_id=member,
                member_epoch=epoch,
                topics=[OffsetFetchRequestTopics(name="t", partition_indexes=[0])],
            )
        ]
    )
    response = ctx.finish(ctx.coord.fetch_offsets(request, api_version=9))
    group = response.groups[0]
    offset = group.topics[0].partitions[0].committed_offset if group.topics else -1
    return group.error_code, offset


def test_offset_commit_and_fetch_check_the_member_epoch() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 2)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    assert _commit(ctx, "a", a.epoch + 5) == ErrorCode.STALE_MEMBER_EPOCH
    assert _commit(ctx, "nobody", a.epoch) == ErrorCode.UNKNOWN_MEMBER_ID
    assert _commit(ctx, "a", a.epoch, version=8) == ErrorCode.UNSUPPORTED_VERSION
    assert _commit(ctx, "a", a.epoch) == ErrorCode.NONE
    assert _fetch(ctx, "a", a.epoch) == (0, 42)
    assert _fetch(ctx, "a", a.epoch - 1)[0] == ErrorCode.STALE_MEMBER_EPOCH
    assert _fetch(ctx, None, -1) == (0, 42)  # admin fetch
    a.leave()
    assert _commit(ctx, "", -1) == ErrorCode.NONE  # admin commit to an empty group
    # offsets survive a restart and still belong to the consumer group
    fresh = ctx.replayed()
    assert fresh.consumer_groups.get(G) is not None and fresh.groups.get(G) is None


def test_state_survives_replay() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 6)
    ctx.create_topic("r-1", 3)
    members = [
        SimConsumer(ctx, G, "a", topics=["t"], instance_id="i1"),
        SimConsumer(ctx, G, "b", regex="r-.*"),
        SimConsumer(ctx, G, "c", topics=["t", "r-1"]),
    ]
    members[0].heartbeat()
    members[1].heartbeat()
    members[2].heartbeat()
    members[0].heartbeat()  # mid-reconciliation
    live = group_snapshot(ctx.group(G))
    fresh = ctx.replayed()
    rebuilt = fresh.consumer_groups.get(G)
    assert rebuilt is not None and group_snapshot(rebuilt) == live


def test_classic_and_consumer_group_ids_do_not_collide() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 1)
    SimConsumer(ctx, G, "a", topics=["t"]).heartbeat()
    join = JoinGroupRequest(
        group_id=G,
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        member_id="",
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"")],
    )
    result = ctx.coord.join_group(
        join, api_version=7, client_id="c", client_host="/h", reply=lambda r: None
    )
    assert result.response is not None
    assert result.response.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    # a live classic group refuses consumer-protocol heartbeats when the migration policy
    # does not allow upgrades (test_group_migration covers the upgrade itself)
    object.__setattr__(ctx.coord.config, "group_consumer_migration_policy", "downgrade")
    join.group_id = "classic"
    boxes: list[object] = []
    ctx.finish(
        ctx.coord.join_group(
            join, api_version=3, client_id="c", client_host="/h", reply=boxes.append
        )
    )
    ctx.sleep(1)
    response = SimConsumer(ctx, "classic", "x", topics=["t"]).heartbeat()
    assert response.error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_list_groups_type_filter_and_describe() -> None:
    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 2)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    listed = ctx.finish(
        ctx.coord.list_groups(ListGroupsRequest(types_filter=["consumer"]), api_version=5)
    )
    assert [(g.group_id, g.group_type, g.group_state) for g in listed.groups] == [
        (G, "consumer", "Stable")
    ]
    none = ctx.finish(
        ctx.coord.list_groups(ListGroupsRequest(types_filter=["classic"]), api_version=5)
    )
    assert none.groups == []
    described = ctx.finish(
        ctx.coord.describe_groups(DescribeGroupsRequest(groups=[G]), api_version=5)
    )
    assert described.groups[0].protocol_type == "consumer"
    assert described.groups[0].members[0].member_id == "a"
    cg = ctx.finish(
        ctx.coord.consumer_group_describe(
            ConsumerGroupDescribeRequest(group_ids=[G, "nope"]), api_version=1
        )
    )
    first, missing = cg.groups
    assert first.group_epoch == 1 and first.assignor_name == "uniform"
    assert first.members[0].assignment.topic_partitions[0].topic_name == "t"
    assert missing.error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_uniform_is_balanced_and_sticky_and_range_is_contiguous() -> None:
    t1, t2 = UUID(int=1), UUID(int=2)
    members = {f"m{i}": AssignorMember(frozenset({t1, t2})) for i in range(3)}
    topics = {t1: 7, t2: 5}
    first = uniform_assign(members, topics, {})
    check_assignment(members, topics, first)
    loads = sorted(sum(len(p) for p in a.values()) for a in first.values())
    assert loads == [4, 4, 4]
    members["m3"] = AssignorMember(frozenset({t1, t2}))
    second = uniform_assign(members, topics, first)
    check_assignment(members, topics, second)
    kept = sum(len(second[m].get(t, frozenset()) & p) for m in first for t, p in first[m].items())
    assert kept == 9  # 12 partitions, 4 members: each old member keeps 3 of its 4
    ranged = range_assign(members, {t1: 7}, {})
    check_assignment(members, {t1: 7}, ranged)
    assert [sorted(ranged[m].get(t1, ())) for m in sorted(members)] == [
        [0, 1],
        [2, 3],
        [4, 5],
        [6],
    ]


def test_state_table_refuses_unlisted_transitions_and_config_bounds() -> None:
    assert_valid_transition(ConsumerGroupState.EMPTY, ConsumerGroupState.ASSIGNING)
    with pytest.raises(IllegalTransition):
        assert_valid_transition(ConsumerGroupState.DEAD, ConsumerGroupState.STABLE)
    group = ConsumerGroup("x")
    group.transition_to_dead()
    group.update_state()  # Dead stays Dead
    assert group.state is ConsumerGroupState.DEAD
    with pytest.raises(IllegalTransition):
        assert_valid_transition(group.state, ConsumerGroupState.EMPTY)
    with pytest.raises(ValueError, match="session.timeout"):
        GroupConfig(group_consumer_session_timeout_ms=1_000)
    with pytest.raises(ValueError, match="heartbeat.interval"):
        GroupConfig(group_consumer_heartbeat_interval_ms=20_000)


def test_offset_delete_on_a_consumer_group_spares_subscribed_topics() -> None:
    from kbroker.wire.messages.offset_delete_request import (
        OffsetDeleteRequest,
        OffsetDeleteRequestPartition,
        OffsetDeleteRequestTopic,
    )

    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 1)
    a = SimConsumer(ctx, G, "a", topics=["t"])
    a.heartbeat()
    assert _commit(ctx, "a", a.epoch) == ErrorCode.NONE
    request = OffsetDeleteRequest(
        group_id=G,
        topics=[
            OffsetDeleteRequestTopic(
                name="t", partitions=[OffsetDeleteRequestPartition(partition_index=0)]
            )
        ],
    )
    busy = ctx.finish(ctx.coord.delete_offsets(request))
    assert busy.error_code == 0
    assert busy.topics[0].partitions[0].error_code == ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
    a.leave()
    done = ctx.finish(ctx.coord.delete_offsets(request))
    assert done.topics[0].partitions[0].error_code == 0
    assert _fetch(ctx, None, -1) == (0, -1)
