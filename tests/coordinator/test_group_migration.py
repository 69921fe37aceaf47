"""Online migration classic <-> consumer group (group.consumer.migration.policy)."""

from __future__ import annotations

from uuid import UUID

import pytest
from kbroker.coordinator.consumer_group import ConsumerGroup, MemberState
from kbroker.coordinator.consumer_testing import ConsumerGroupTestContext, SimConsumer
from kbroker.coordinator.migration_testing import (
    SimClassic,
    classic_group,
    finish_classic_rebalance,
)
from kbroker.coordinator.state import GroupState
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest

GROUP = "g"
TOPIC = "t"
PARTITIONS = 6


def owners(ctx: ConsumerGroupTestContext, clients: list[SimClassic | SimConsumer]) -> dict[tuple[UUID, int], int]:
    counts: dict[tuple[UUID, int], int] = {}
    for c in clients:
        for tp in c.owned_ids() if isinstance(c, SimClassic) else c.owned_set():
            counts[tp] = counts.get(tp, 0) + 1
    return counts


def check_disjoint(group: ConsumerGroup) -> None:
    seen: set[tuple[UUID, int]] = set()
    for m in group.members.values():
        for parts in (m.assigned, m.pending_revocation):
            for t, ps in parts.items():
                for p in ps:
                    assert (t, p) not in seen, f"{(t, p)} held twice"
                    seen.add((t, p))


def settle(ctx: ConsumerGroupTestContext, clients: list[SimClassic | SimConsumer], rounds: int = 12) -> None:
    for _ in range(rounds):
        for c in clients:
            c.step() if isinstance(c, SimClassic) else c.heartbeat()
        group = ctx.coord.consumer_groups.get(GROUP)
        if group is not None:
            check_disjoint(group)
        assert all(n == 1 for n in owners(ctx, clients).values())


def commit(ctx: ConsumerGroupTestContext, member_id: str, generation: int, offset: int) -> int:
    request = OffsetCommitRequest(
        group_id=GROUP,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        topics=[
            OffsetCommitRequestTopic(
                name=TOPIC,
                partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=offset)],
            )
        ],
    )
    response = ctx.finish(ctx.coord.commit_offsets(request, api_version=8))
    return int(response.topics[0].partitions[0].error_code)


def committed(coord: object, offset_partition: int = 0) -> int:
    from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequestTopic

    request = OffsetFetchRequest(
        group_id=GROUP, topics=[OffsetFetchRequestTopic(name=TOPIC, partition_indexes=[offset_partition])]
    )
    result = coord.fetch_offsets(request, api_version=7)  # type: ignore[attr-defined]
    return int(result.response.topics[0].partitions[0].committed_offset)


def group_type(ctx_coord: object) -> str:
    result = ctx_coord.list_groups(ListGroupsRequest(), api_version=5)  # type: ignore[attr-defined]
    (listed,) = [g for g in result.response.groups if g.group_id == GROUP]
    return str(listed.group_type)


@pytest.fixture
def ctx() -> ConsumerGroupTestContext:
    c = ConsumerGroupTestContext()
    c.create_topic(TOPIC, PARTITIONS)
    return c


def test_upgrade_keeps_assignments_then_classic_members_leave_one_by_one(ctx: ConsumerGroupTestContext) -> None:
    classics = classic_group(ctx, GROUP, TOPIC, 3)
    before = {c.member_id: dict(c.owned) for c in classics}
    assert commit(ctx, classics[0].member_id, classics[0].generation, 42) == 0
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    response = new.heartbeat()
    assert response.error_code == 0, response
    group = ctx.group(GROUP)
    assert group_type(ctx.coord) == "consumer"
    # the classic members kept their partitions at their generation
    for c in classics:
        m = group.members[c.member_id]
        assert m.uses_classic_protocol
        assert {ctx.topic_name(t): p for t, p in m.assigned.items()} == before[c.member_id] or m.pending_revocation
    clients: list[SimClassic | SimConsumer] = [*classics, new]
    settle(ctx, clients)
    assert ctx.group(GROUP).state.value == "Stable"
    assert sum(len(p) for p in new.owned.values()) >= 1
    # ConsumerGroupDescribe v1: MemberType 0 for the classic members, 1 for the new one
    described = ctx.coord.consumer_group_describe(
        ConsumerGroupDescribeRequest(group_ids=[GROUP]), api_version=1
    ).response
    types = {m.member_id: m.member_type for m in described.groups[0].members}
    assert types == {**{c.member_id: 0 for c in classics}, "c1": 1}
    # DescribeGroups (the classic view) shows the consumer group and all four members
    classic_view = ctx.coord.describe_groups(DescribeGroupsRequest(groups=[GROUP]), api_version=5)
    assert classic_view.response.groups[0].protocol_type == "consumer"
    assert len(classic_view.response.groups[0].members) == 4
    assert len(owners(ctx, clients)) == PARTITIONS
    # a restart mid-migration rebuilds the same group, classic metadata included
    replayed = ctx.replayed()
    assert replayed.consumer_groups.get(GROUP) is not None
    live = {m.member_id: (m.metadata_key(), m.assignment_key()) for m in group.members.values()}
    again = replayed.consumer_groups.get(GROUP)
    assert again is not None
    assert {m.member_id: (m.metadata_key(), m.assignment_key()) for m in again.members.values()} == live
    # classic members commit with their generation (= member epoch) through OffsetCommit v8
    assert commit(ctx, classics[1].member_id, classics[1].generation, 43) == 0
    assert commit(ctx, classics[1].member_id, classics[1].generation + 7, 44) == ErrorCode.STALE_MEMBER_EPOCH
    # the classic members leave one by one; the consumer member ends up with everything
    for c in list(classics):
        assert c.leave().members[0].error_code == 0
        clients.remove(c)
        settle(ctx, clients)
    assert sum(len(p) for p in new.owned.values()) == PARTITIONS
    assert committed(ctx.coord) == 43
    assert committed(ctx.replayed()) == 43


def test_downgrade_when_last_consumer_member_leaves(ctx: ConsumerGroupTestContext) -> None:
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    assert new.heartbeat().error_code == 0
    clients: list[SimClassic | SimConsumer] = [*classics, new]
    settle(ctx, clients)
    assert commit(ctx, classics[0].member_id, classics[0].generation, 7) == 0
    new.leave()
    # converted back: a classic group rebalancing with the two classic members
    assert ctx.coord.consumer_groups.get(GROUP) is None
    classic = ctx.coord.groups.get(GROUP)
    assert classic is not None and classic.is_in(GroupState.PREPARING_REBALANCE)
    assert set(classic.members) == {c.member_id for c in classics}
    assert group_type(ctx.coord) == "classic"
    # the classic generation is their member epoch: they are told to rejoin, and a commit
    # on revocation at that generation still counts
    assert all(c.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS for c in classics)
    assert commit(ctx, classics[1].member_id, classics[1].generation, 7) == 0
    # they rejoin through the classic protocol
    for c in classics:
        c.join()
    finish_classic_rebalance(classics)
    assert ctx.coord.groups.get(GROUP).is_in(GroupState.STABLE)  # type: ignore[union-attr]
    assert len(owners(ctx, list(classics))) == PARTITIONS
    assert committed(ctx.coord) == 7
    replayed = ctx.replayed()
    assert replayed.consumer_groups.get(GROUP) is None
    again = replayed.groups.get(GROUP)
    assert again is not None and set(again.members) == {c.member_id for c in classics}
    assert committed(replayed) == 7
    described = replayed.describe_groups(DescribeGroupsRequest(groups=[GROUP]), api_version=5)
    assert described.response.groups[0].protocol_type == "consumer"


@pytest.mark.parametrize("policy", ["disabled", "downgrade"])
def test_upgrade_refused_by_policy(policy: str) -> None:
    ctx = ConsumerGroupTestContext(group_consumer_migration_policy=policy)
    ctx.create_topic(TOPIC, PARTITIONS)
    classic_group(ctx, GROUP, TOPIC, 2)
    response = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC]).heartbeat()
    assert response.error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert ctx.coord.groups.get(GROUP).is_in(GroupState.STABLE)  # type: ignore[union-attr]


@pytest.mark.parametrize("policy", ["upgrade", "disabled"])
def test_downgrade_refused_by_policy_keeps_consumer_group(policy: str) -> None:
    ctx = ConsumerGroupTestContext(group_consumer_migration_policy="bidirectional")
    ctx.create_topic(TOPIC, PARTITIONS)
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    new.heartbeat()
    settle(ctx, [*classics, new])
    object.__setattr__(ctx.coord.config, "group_consumer_migration_policy", policy)
    new.leave()
    group = ctx.coord.consumer_groups.get(GROUP)
    assert group is not None and len(group.members) == 2
    settle(ctx, list(classics))
    assert len(owners(ctx, list(classics))) == PARTITIONS


def test_upgrade_of_rebalancing_group_answers_parked_joins(ctx: ConsumerGroupTestContext) -> None:
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    third = SimClassic(ctx, GROUP, [TOPIC])
    third.join()  # a third member starts a rebalance
    assert classics[0].heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS
    classics[0].join()  # parked: the group waits for the others
    assert not classics[0].pending_join
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    assert new.heartbeat().error_code == 0
    assert classics[0].pending_join[0].error_code == ErrorCode.REBALANCE_IN_PROGRESS
    clients: list[SimClassic | SimConsumer] = [*classics, third, new]
    settle(ctx, clients)
    assert len(owners(ctx, clients)) == PARTITIONS


def test_classic_member_session_expiry_in_consumer_group_downgrades_nothing(ctx: ConsumerGroupTestContext) -> None:
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    new.heartbeat()
    settle(ctx, [*classics, new])
    # classic members stop heartbeating; the consumer member keeps going
    for _ in range(8):
        ctx.sleep(5_000)
        new.heartbeat()
    group = ctx.group(GROUP)
    assert set(group.members) == {"c1"}
    assert sum(len(p) for p in new.owned.values()) == PARTITIONS
    assert group.members["c1"].state is MemberState.STABLE


def test_policy_disabled_refuses_a_new_classic_member_of_a_consumer_group() -> None:
    ctx = ConsumerGroupTestContext(group_consumer_migration_policy="disabled")
    ctx.create_topic(TOPIC, PARTITIONS)
    SimConsumer(ctx, GROUP, "c1", topics=[TOPIC]).heartbeat()
    joiner = SimClassic(ctx, GROUP, [TOPIC])
    response = joiner.join()
    assert response is not None and response.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert set(ctx.group(GROUP).members) == {"c1"}


def test_classic_member_that_never_syncs_is_removed_after_its_rebalance_timeout(
    ctx: ConsumerGroupTestContext,
) -> None:
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    new.heartbeat()
    joiner = SimClassic(ctx, GROUP, [TOPIC])
    join = joiner.join()
    assert join is not None and join.error_code == 0
    assert joiner.member_id in ctx.group(GROUP).members
    for _ in range(7):  # 35 s: past the 30 s rebalance timeout, within the session timeout
        ctx.sleep(5_000)
        new.heartbeat()
    assert joiner.member_id not in ctx.group(GROUP).members
    # one that does sync stays
    other = SimClassic(ctx, GROUP, [TOPIC])
    other.rebalance()
    for _ in range(7):
        ctx.sleep(5_000)
        new.heartbeat()
        other.step()
    assert other.member_id in ctx.group(GROUP).members


def test_classic_heartbeat_asks_to_rejoin_only_when_there_is_something_to_do(
    ctx: ConsumerGroupTestContext,
) -> None:
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    new.heartbeat()  # upgrade; the new member's target takes partitions from the classics
    group = ctx.group(GROUP)
    # the group epoch moved past the classic members' epoch: they must rejoin
    assert all(c.heartbeat() == ErrorCode.REBALANCE_IN_PROGRESS for c in classics)
    settle(ctx, [*classics, new])
    assert ctx.group(GROUP).state.value == "Stable"
    assert all(c.heartbeat() == ErrorCode.NONE for c in classics)
    assert {group.members[c.member_id].member_epoch for c in classics} == {group.group_epoch}


def test_downgrade_bounded_by_classic_group_max_size() -> None:
    ctx = ConsumerGroupTestContext(group_max_size=2)
    ctx.create_topic(TOPIC, PARTITIONS)
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    new = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC])
    new.heartbeat()
    third = SimClassic(ctx, GROUP, [TOPIC])
    third.rebalance()  # the consumer group takes a third classic member
    settle(ctx, [*classics, third, new])
    new.leave()
    group = ctx.coord.consumer_groups.get(GROUP)
    assert group is not None and len(group.members) == 3  # too many for a classic group


def test_upgrade_never_starts_with_a_partition_held_twice(ctx: ConsumerGroupTestContext) -> None:
    """A classic leader that gave one partition to two members (a client bug): after the
    upgrade the partition belongs to one member only."""
    classics = classic_group(ctx, GROUP, TOPIC, 2)
    classic = ctx.coord.groups.get(GROUP)
    assert classic is not None
    both = classic.members[classics[0].member_id].assignment
    classic.members[classics[1].member_id].assignment = both
    assert SimConsumer(ctx, GROUP, "c1", topics=[TOPIC]).heartbeat().error_code == 0
    check_disjoint(ctx.group(GROUP))


def test_upgrade_refused_when_the_consumer_group_would_be_too_big() -> None:
    ctx = ConsumerGroupTestContext(group_consumer_max_size=2)
    ctx.create_topic(TOPIC, PARTITIONS)
    classic_group(ctx, GROUP, TOPIC, 2)
    response = SimConsumer(ctx, GROUP, "c1", topics=[TOPIC]).heartbeat()
    assert response.error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert ctx.coord.consumer_groups.get(GROUP) is None
