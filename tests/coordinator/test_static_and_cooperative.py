"""Static membership (KIP-345) and cooperative rebalancing as clients drive it."""

from __future__ import annotations

from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext, subscription
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

S = GroupState
G = "group"


def static_stable_group(ctx: CoordinatorTestContext, *instances: str) -> tuple[int, dict[str, str]]:
    boxes = {i: ctx.join(G, instance_id=i) for i in instances}  # static: no MEMBER_ID_REQUIRED
    for _ in range(20):
        if all(b.done for b in boxes.values()):
            break
        ctx.sleep(3_000)
    ids = {i: b.response.member_id for i, b in boxes.items()}
    gen = next(iter(boxes.values())).response.generation_id
    leader = next(iter(boxes.values())).response.leader
    for i, m in ids.items():
        if m != leader:
            ctx.sync(G, m, gen, instance_id=i)
    leader_instance = next(i for i, m in ids.items() if m == leader)
    ctx.sync(G, leader, gen, {m: i.encode() for i, m in ids.items()}, instance_id=leader_instance)
    assert ctx.state(G) is S.STABLE
    return gen, ids


def test_static_member_rejoins_without_rebalance_and_old_id_is_fenced() -> None:
    ctx = CoordinatorTestContext()
    gen, ids = static_stable_group(ctx, "i1", "i2")
    assert ids["i1"].startswith("i1-")
    old = ids["i2"]
    records_before = len(ctx.log)
    response = ctx.join(G, instance_id="i2", version=7).response  # restart: unknown member id
    assert response.error_code == 0
    assert response.generation_id == gen
    assert response.member_id != old and response.member_id.startswith("i2-")
    assert response.members == []
    assert ctx.state(G) is S.STABLE
    assert len(ctx.log) == records_before + 1  # the new member id is persisted
    # The old incarnation is fenced, the new one works with the old assignment.
    assert ctx.heartbeat(G, old, gen, "i2") == ErrorCode.FENCED_INSTANCE_ID
    assert ctx.heartbeat(G, response.member_id, gen, "i2") == 0
    assert ctx.sync(G, response.member_id, gen, instance_id="i2").response.assignment == b"i2"
    assert (
        ctx.sync(G, old, gen, instance_id="i2").response.error_code == ErrorCode.FENCED_INSTANCE_ID
    )
    replayed = ctx.replayed().groups.get(G)
    assert replayed is not None and replayed.static_members["i2"] == response.member_id


def test_static_leader_rejoin_v9_skips_assignment_v7_hides_leadership() -> None:
    ctx = CoordinatorTestContext()
    gen, ids = static_stable_group(ctx, "i1", "i2")
    group = ctx.coord.groups.groups[G]
    leader_instance = next(i for i, m in ids.items() if m == group.leader_id)
    v9 = ctx.join(G, instance_id=leader_instance, version=9).response
    assert v9.skip_assignment and v9.leader == v9.member_id and len(v9.members) == 2
    v7 = ctx.join(G, instance_id=leader_instance, version=7).response
    assert not v7.skip_assignment and v7.members == []
    assert v7.leader == v9.member_id != v7.member_id  # the leader as it was before
    assert ctx.state(G) is S.STABLE and group.leader_id == v7.member_id


def test_static_rejoin_with_other_protocols_rebalances() -> None:
    ctx = CoordinatorTestContext()
    gen, ids = static_stable_group(ctx, "i1")
    box = ctx.join(G, instance_id="i1", protocols=[("range", b"x"), ("sticky", b"y")])
    assert ctx.state(G) is S.STABLE  # range still selected: no rebalance
    assert box.response.generation_id == gen
    box = ctx.join(G, instance_id="i1", protocols=[("sticky", b"y")])
    assert ctx.state(G) is S.COMPLETING_REBALANCE  # only member, completed at once
    assert box.response.generation_id == gen + 1 and box.response.protocol_name == "sticky"


def test_static_member_fences_parked_join_of_old_incarnation() -> None:
    ctx = CoordinatorTestContext()
    gen, ids = static_stable_group(ctx, "i1", "i2")
    leader = ctx.coord.groups.groups[G].leader_id
    assert leader is not None
    ctx.join(G, leader, instance_id=next(i for i, m in ids.items() if m == leader))
    assert ctx.state(G) is S.PREPARING_REBALANCE
    follower_instance = next(i for i, m in ids.items() if m != leader)
    parked = ctx.join(G, ids[follower_instance], instance_id=follower_instance)
    assert parked.response.generation_id == gen + 1  # everyone rejoined
    ctx.sleep(0)
    # A second incarnation during CompletingRebalance fences the first's parked SyncGroup.
    sync = ctx.sync(G, ids[follower_instance], gen + 1, instance_id=follower_instance)
    assert not sync.done
    fresh = ctx.join(G, instance_id=follower_instance)
    assert sync.response.error_code == ErrorCode.FENCED_INSTANCE_ID
    assert ctx.state(G) is S.PREPARING_REBALANCE and not fresh.done


def test_static_members_are_not_kicked_at_rebalance_timeout() -> None:
    ctx = CoordinatorTestContext()
    boxes = {
        i: ctx.join(G, instance_id=i, rebalance_timeout_ms=5_000, session_timeout_ms=30_000)
        for i in ("i1", "i2")
    }
    ctx.sleep(5_000)
    ids = {i: b.response.member_id for i, b in boxes.items()}
    gen = boxes["i1"].response.generation_id
    leader = boxes["i1"].response.leader
    ctx.sync(G, leader, gen, {}, instance_id="i1" if ids["i1"] == leader else "i2")
    other = next(m for m in ids.values() if m != leader)
    ctx.sync(G, other, gen, instance_id="i1" if ids["i1"] == other else "i2")
    group = ctx.coord.groups.groups[G]
    leader_instance = "i1" if ids["i1"] == leader else "i2"
    box = ctx.join(
        G,
        leader,
        instance_id=leader_instance,
        rebalance_timeout_ms=5_000,
        session_timeout_ms=30_000,
    )
    ctx.sleep(5_000)  # rebalance timeout: a dynamic laggard would be dropped, a static one stays
    assert box.response.generation_id == gen + 1
    assert other in group.members and ctx.state(G) is S.COMPLETING_REBALANCE
    ctx.sync(G, leader, gen + 1, {}, instance_id=leader_instance)
    ctx.sleep(5_000)  # ...but it must still SyncGroup within the rebalance timeout
    assert other not in group.members
    assert ctx.state(G) is S.PREPARING_REBALANCE


def test_admin_removes_static_member_by_instance_id() -> None:
    ctx = CoordinatorTestContext()
    gen, ids = static_stable_group(ctx, "i1", "i2")
    response = ctx.finish(
        ctx.coord.leave_group(
            LeaveGroupRequest(
                group_id=G, members=[MemberIdentity(member_id="", group_instance_id="i2")]
            ),
            api_version=3,
        )
    )
    assert response is not None and response.members[0].error_code == 0
    assert "i2" not in ctx.coord.groups.groups[G].static_members
    # Leaving with a mismatched member id for an instance is fenced.
    bad = ctx.finish(
        ctx.coord.leave_group(
            LeaveGroupRequest(
                group_id=G, members=[MemberIdentity(member_id="zz", group_instance_id="i1")]
            ),
            api_version=3,
        )
    )
    assert bad is not None and bad.members[0].error_code == ErrorCode.FENCED_INSTANCE_ID


def commit(ctx: CoordinatorTestContext, member: str, gen: int, offset: int) -> int:
    response = ctx.finish(
        ctx.coord.commit_offsets(
            OffsetCommitRequest(
                group_id=G,
                generation_id_or_member_epoch=gen,
                member_id=member,
                topics=[
                    OffsetCommitRequestTopic(
                        name="topic",
                        partitions=[
                            OffsetCommitRequestPartition(partition_index=0, committed_offset=offset)
                        ],
                    )
                ],
            ),
            api_version=8,
        )
    )
    assert response is not None
    return response.topics[0].partitions[0].error_code


def test_cooperative_member_revokes_commits_and_rejoins_for_a_second_rebalance() -> None:
    """cooperative-sticky: rebalance 1 revokes, the client commits and rejoins at once."""
    ctx = CoordinatorTestContext()
    coop = [("cooperative-sticky", subscription("topic", version=1))]
    gen, [a] = ctx.stable_group(G, protocols=coop)
    b, box_b = ctx.join_new_dynamic_member(G, protocols=coop)
    # a keeps consuming and commits during PreparingRebalance (generation unchanged).
    assert commit(ctx, a, gen, 10) == 0
    box_a = ctx.join(G, a, protocols=coop)
    gen2 = box_a.response.generation_id
    assert gen2 == gen + 1 and box_a.response.protocol_name == "cooperative-sticky"
    # Sync: leader a keeps what is not moving, b gets nothing yet (to be revoked first).
    assert commit(ctx, a, gen2, 11) == ErrorCode.REBALANCE_IN_PROGRESS  # CompletingRebalance
    follower = ctx.sync(G, b, gen2)
    ctx.sync(G, a, gen2, {a: b"p0", b: b""})
    assert follower.response.assignment == b""
    # a revoked a partition: it commits with the current generation and rejoins.
    assert commit(ctx, a, gen2, 12) == 0
    box_a = ctx.join(G, a, protocols=coop)
    assert ctx.state(G) is S.PREPARING_REBALANCE
    assert ctx.heartbeat(G, b, gen2) == ErrorCode.REBALANCE_IN_PROGRESS
    box_b = ctx.join(G, b, protocols=coop)
    gen3 = box_b.response.generation_id
    assert gen3 == gen2 + 1
    ctx.sync(G, a, gen3, {a: b"p0", b: b"p1"})
    assert ctx.sync(G, b, gen3).response.assignment == b"p1"
    assert commit(ctx, a, gen2, 13) == ErrorCode.ILLEGAL_GENERATION
