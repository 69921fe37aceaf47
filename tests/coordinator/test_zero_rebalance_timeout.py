"""A rebalance timeout of 0 (issue 10), against Kafka 4's classic-group timer semantics.

Kafka (GroupMetadataManager, classic half) schedules the pending-sync timeout when the
join phase completes, with the group's rebalance timeout: the largest of its members',
no floor.  Timeouts run as events after the operation that scheduled them, so every
parked JoinGroup is answered first; a 0 ms timeout then expires at once and removes the
members that have not sent SyncGroup yet (their SyncGroup gets UNKNOWN_MEMBER_ID) and
the group rebalances.  A member asking for 0 is only safe next to one asking for more.
"""

from __future__ import annotations

from kbroker.coordinator.group_manager import sync_key
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.join_group_response import JoinGroupResponse

S = GroupState
G = "group"


def test_zero_timeout_answers_the_join_then_expires_the_pending_sync_at_once() -> None:
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=0)
    member_id = ctx.join(G, rebalance_timeout_ms=0).response.member_id
    seen: list[tuple[JoinGroupResponse, GroupState | None, bool]] = []

    def reply(response: JoinGroupResponse) -> None:
        # What the group looks like when the answer is handed over.
        group = ctx.coord.groups.get(G)
        seen.append((response, ctx.state(G), group is not None and member_id in group.members))

    request = JoinGroupRequest(
        group_id=G,
        session_timeout_ms=10_000,
        rebalance_timeout_ms=0,
        member_id=member_id,
        protocol_type="consumer",
        protocols=[JoinGroupRequestProtocol(name="range", metadata=b"")],
    )
    assert ctx.finish(ctx.coord.join_group(request, api_version=7, client_id="client", client_host="/127.0.0.1", reply=reply)) is None
    assert seen == []
    ctx.sleep(0)  # the join timeout (initial delay 0) and then the pending-sync timeout (0)
    [(response, state_then, member_then)] = seen
    assert (response.error_code, response.generation_id, response.leader) == (ErrorCode.NONE, 1, member_id)
    assert (state_then, member_then) == (S.COMPLETING_REBALANCE, True)
    # The pending-sync timeout then removed the member and the group rebalanced to Empty.
    group = ctx.coord.groups.get(G)
    assert group is not None and member_id not in group.members
    assert (ctx.state(G), group.generation_id) == (S.EMPTY, 2)
    assert not ctx.timer.is_scheduled(sync_key(G))
    assert ctx.sync(G, member_id, 1, {member_id: b"a"}).response.error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_zero_timeout_member_survives_when_another_member_sets_the_group_timeout() -> None:
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=0)
    zero, zero_box = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=0)
    slow, slow_box = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=20_000)
    ctx.sleep(0)
    generation, leader = zero_box.response.generation_id, zero_box.response.leader
    assert slow_box.response.generation_id == generation
    assert ctx.timer.deadline_of(sync_key(G)) == ctx.clock.ms + 20_000
    ctx.sleep(5_000)  # well past 0 ms, inside the session timeouts
    follower = slow if leader == zero else zero
    follower_box = ctx.sync(G, follower, generation)
    leader_box = ctx.sync(G, leader, generation, {zero: b"z", slow: b"s"})
    assert leader_box.response.error_code == ErrorCode.NONE
    assert follower_box.response.error_code == ErrorCode.NONE
    assert ctx.state(G) is S.STABLE
