"""Scenarios for the classic group protocol with a fake clock (JoinGroup/SyncGroup/Heartbeat/LeaveGroup)."""

from __future__ import annotations

from kbroker.coordinator.group_manager import heartbeat_key, join_key, sync_key
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext, subscription
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity

S = GroupState
G = "group"


def test_member_id_required_then_join_after_initial_delay_then_sync_and_heartbeat() -> None:
    ctx = CoordinatorTestContext()
    first = ctx.join(G).response
    assert first.error_code == ErrorCode.MEMBER_ID_REQUIRED
    assert first.member_id == "client-u1"
    assert ctx.state(G) is S.EMPTY
    box = ctx.join(G, first.member_id)
    assert not box.done and ctx.state(G) is S.PREPARING_REBALANCE
    ctx.sleep(2_999)
    assert not box.done
    ctx.sleep(1)
    response = box.response
    assert response.error_code == 0
    assert response.generation_id == 1
    assert response.leader == first.member_id
    assert response.protocol_name == "range" and response.protocol_type == "consumer"
    assert [m.member_id for m in response.members] == [first.member_id]
    assert ctx.state(G) is S.COMPLETING_REBALANCE
    assert ctx.heartbeat(G, first.member_id, 1) == 0  # heartbeats allowed while completing
    sync = ctx.sync(G, first.member_id, 1, {first.member_id: b"a"})
    assert sync.response.error_code == 0 and sync.response.assignment == b"a"
    assert sync.response.protocol_name == "range"
    assert ctx.state(G) is S.STABLE
    assert ctx.heartbeat(G, first.member_id, 1) == 0
    assert ctx.heartbeat(G, first.member_id, 0) == ErrorCode.ILLEGAL_GENERATION
    assert ctx.heartbeat(G, "nobody", 1) == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.heartbeat("other", first.member_id, 1) == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.transitions == [
        (S.EMPTY, S.PREPARING_REBALANCE),
        (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE),
        (S.COMPLETING_REBALANCE, S.STABLE),
    ]


def test_join_v3_needs_no_member_id_round_trip() -> None:
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=0)
    box = ctx.join(G, version=3)
    ctx.sleep(0)
    assert box.response.error_code == 0 and box.response.member_id == "client-u1"


def test_join_validation_errors() -> None:
    ctx = CoordinatorTestContext()
    assert ctx.join("").response.error_code == ErrorCode.INVALID_GROUP_ID
    assert (
        ctx.join(G, session_timeout_ms=10).response.error_code == ErrorCode.INVALID_SESSION_TIMEOUT
    )
    assert (
        ctx.join(G, session_timeout_ms=10**8).response.error_code
        == ErrorCode.INVALID_SESSION_TIMEOUT
    )
    assert ctx.join(G, "ghost").response.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.join(G, protocols=[]).response.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_protocol_selection_is_common_to_all_members_and_voted() -> None:
    ctx = CoordinatorTestContext()
    a, box_a = ctx.join_new_dynamic_member(
        G, protocols=[("roundrobin", b"1"), ("range", b"2"), ("sticky", b"3")]
    )
    b, box_b = ctx.join_new_dynamic_member(G, protocols=[("range", b"4"), ("sticky", b"5")])
    c, box_c = ctx.join_new_dynamic_member(G, protocols=[("sticky", b"6"), ("range", b"7")])
    # A protocol no member shares is rejected once the group is not Empty.
    assert (
        ctx.join(G, protocols=[("foo", b"")]).response.error_code
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )
    assert (
        ctx.join(G, protocol_type="connect").response.error_code
        == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    )
    ctx.sleep(3_000)  # b and c arrived during the delay: it is extended once
    assert not box_a.done
    ctx.sleep(3_000)
    # candidates: range, sticky (roundrobin only A). votes: A range, B range, C sticky.
    assert box_a.response.protocol_name == "range"
    leader = box_a.response
    assert {m.member_id: m.metadata for m in leader.members} == {a: b"2", b: b"4", c: b"7"}
    assert box_b.response.members == [] and box_c.response.members == []


def test_initial_rebalance_delay_is_extended_by_new_members_up_to_rebalance_timeout() -> None:
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=3_000)
    _, box_a = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=7_000)
    ctx.sleep(2_000)
    _, box_b = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=7_000)
    ctx.sleep(1_000)  # first delay over, a member arrived: wait min(3000, 4000) more
    assert not box_a.done
    ctx.sleep(2_500)
    _, box_c = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=7_000)
    ctx.sleep(500)  # second delay over, new member again: remaining 1000
    assert not box_a.done
    ctx.sleep(999)
    assert not box_a.done
    ctx.sleep(1)  # 7000 ms after the first join: the rebalance timeout bounds the delay
    assert box_a.response.error_code == box_b.response.error_code == box_c.response.error_code == 0
    assert len(box_a.response.members) == 3


def test_new_member_triggers_rebalance_and_sync_waits_for_the_leader() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    b, box_b = ctx.join_new_dynamic_member(G)
    assert ctx.state(G) is S.PREPARING_REBALANCE
    assert ctx.heartbeat(G, a, gen) == ErrorCode.REBALANCE_IN_PROGRESS
    assert ctx.sync(G, a, gen).response.error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert not box_b.done
    box_a = ctx.join(G, a)  # the last member rejoins: the join phase completes at once
    assert box_a.response.generation_id == box_b.response.generation_id == gen + 1
    assert box_a.response.leader == a and len(box_a.response.members) == 2
    follower = ctx.sync(G, b, gen + 1)
    assert not follower.done
    leader = ctx.sync(G, a, gen + 1, {a: b"A", b: b"B"})
    assert leader.response.assignment == b"A"
    assert follower.response.assignment == b"B"
    assert ctx.state(G) is S.STABLE
    # Stable: a late SyncGroup gets the current assignment.
    assert ctx.sync(G, b, gen + 1).response.assignment == b"B"


def test_sync_errors() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    assert ctx.sync("nope", a, gen).response.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.sync(G, "x", gen).response.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.sync(G, a, gen + 5).response.error_code == ErrorCode.ILLEGAL_GENERATION
    bad = ctx.sync(G, a, gen, protocol_type="consumer", protocol_name="roundrobin")
    assert bad.response.error_code == ErrorCode.INCONSISTENT_GROUP_PROTOCOL
    assert ctx.sync("", a, gen).response.error_code == ErrorCode.INVALID_GROUP_ID


def test_follower_rejoin_in_stable_returns_current_generation_leader_rejoin_rebalances() -> None:
    ctx = CoordinatorTestContext()
    gen, [a, b] = ctx.stable_group(G, 2)
    same = ctx.join(G, b).response
    assert same.generation_id == gen and same.members == [] and same.leader == a
    assert ctx.state(G) is S.STABLE
    box_a = ctx.join(G, a)
    assert ctx.state(G) is S.PREPARING_REBALANCE and not box_a.done
    box_b = ctx.join(G, b)
    assert box_a.response.generation_id == box_b.response.generation_id == gen + 1


def test_join_with_changed_metadata_during_completing_rebalance_restarts_it() -> None:
    ctx = CoordinatorTestContext()
    a, box_a = ctx.join_new_dynamic_member(G)
    b, box_b = ctx.join_new_dynamic_member(G)
    ctx.sleep(6_000)
    gen = box_a.response.generation_id
    parked = ctx.sync(G, b, gen)
    # Same metadata: the lost answer is simply resent.
    again = ctx.join(G, a).response
    assert again.generation_id == gen and len(again.members) == 2
    changed = ctx.join(G, a, protocols=[("range", subscription("topic", "other"))])
    assert parked.response.error_code == ErrorCode.REBALANCE_IN_PROGRESS
    assert ctx.state(G) is S.PREPARING_REBALANCE and not changed.done
    box_b2 = ctx.join(G, b)
    assert changed.response.generation_id == box_b2.response.generation_id == gen + 1


def test_leave_triggers_rebalance_and_batch_leave_reports_per_member() -> None:
    ctx = CoordinatorTestContext()
    gen, [a, b, c] = ctx.stable_group(G, 3)
    result = ctx.coord.leave_group(
        LeaveGroupRequest(
            group_id=G,
            members=[
                MemberIdentity(member_id=b),
                MemberIdentity(member_id="ghost"),
                MemberIdentity(member_id="", group_instance_id="no-such-instance"),
            ],
        ),
        api_version=5,
    )
    response = ctx.finish(result)
    assert response is not None
    assert [(m.member_id, m.error_code) for m in response.members] == [
        (b, 0),
        ("ghost", ErrorCode.UNKNOWN_MEMBER_ID),
        ("", ErrorCode.UNKNOWN_MEMBER_ID),
    ]
    assert ctx.state(G) is S.PREPARING_REBALANCE
    box_a, box_c = ctx.join(G, a), ctx.join(G, c)
    assert box_a.response.generation_id == box_c.response.generation_id == gen + 1
    assert {m.member_id for m in box_a.response.members} == {a, c}


def test_leave_v0_uses_top_level_error_and_last_leave_empties_group() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    bad = ctx.finish(
        ctx.coord.leave_group(LeaveGroupRequest(group_id=G, member_id="x"), api_version=0)
    )
    assert bad is not None and bad.error_code == ErrorCode.UNKNOWN_MEMBER_ID and bad.members == []
    ok = ctx.finish(
        ctx.coord.leave_group(LeaveGroupRequest(group_id=G, member_id=a), api_version=1)
    )
    assert ok is not None and ok.error_code == 0
    assert ctx.state(G) is S.EMPTY
    group = ctx.coord.groups.get(G)
    assert group is not None and group.generation_id == gen + 1 and group.protocol_name is None
    unknown = ctx.finish(
        ctx.coord.leave_group(LeaveGroupRequest(group_id="nope", member_id="x"), api_version=0)
    )
    assert unknown is not None and unknown.error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_leave_of_a_pending_member_and_of_a_parked_joiner() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    pending = ctx.join(G).response.member_id  # MEMBER_ID_REQUIRED only
    left = ctx.finish(
        ctx.coord.leave_group(
            LeaveGroupRequest(group_id=G, members=[MemberIdentity(member_id=pending)]),
            api_version=3,
        )
    )
    assert left is not None and left.members[0].error_code == 0
    assert not ctx.timer.is_scheduled(heartbeat_key(G, pending))
    b, box_b = ctx.join_new_dynamic_member(G)
    ctx.finish(
        ctx.coord.leave_group(
            LeaveGroupRequest(group_id=G, members=[MemberIdentity(member_id=b)]), api_version=3
        )
    )
    assert box_b.response.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.state(G) is S.PREPARING_REBALANCE
    box_a = ctx.join(G, a)
    assert box_a.response.generation_id == gen + 1


def test_session_timeout_expires_a_silent_member() -> None:
    ctx = CoordinatorTestContext()
    gen, [a, b] = ctx.stable_group(G, 2, session_timeout_ms=10_000)
    for _ in range(2):
        ctx.sleep(4_000)
        assert ctx.heartbeat(G, a, gen) == 0
    ctx.sleep(1_999)
    assert ctx.state(G) is S.STABLE
    ctx.sleep(1)
    # b never heartbeat: it expired 10 s after its SyncGroup answer.
    assert ctx.state(G) is S.PREPARING_REBALANCE
    assert b not in ctx.coord.groups.groups[G].members
    assert ctx.heartbeat(G, a, gen) == ErrorCode.REBALANCE_IN_PROGRESS
    box = ctx.join(G, a)
    assert box.response.generation_id == gen + 1 and box.response.leader == a


def test_session_expiry_of_everyone_leads_to_empty_with_a_record() -> None:
    ctx = CoordinatorTestContext()
    gen, [a] = ctx.stable_group(G)
    records_before = len(ctx.log)
    ctx.sleep(10_000)
    assert ctx.state(G) is S.EMPTY
    assert len(ctx.log) == records_before + 1
    replayed = ctx.replayed().groups.get(G)
    assert replayed is not None and replayed.state is S.EMPTY and replayed.generation_id == gen + 1


def test_pending_member_expires_after_session_timeout() -> None:
    ctx = CoordinatorTestContext()
    pending = ctx.join(G, session_timeout_ms=6_000).response.member_id
    assert ctx.coord.groups.groups[G].is_pending_member(pending)
    ctx.sleep(6_000)
    assert not ctx.coord.groups.groups[G].is_pending_member(pending)
    assert ctx.join(G, pending).response.error_code == ErrorCode.UNKNOWN_MEMBER_ID


def test_rebalance_timeout_kicks_members_that_do_not_rejoin() -> None:
    ctx = CoordinatorTestContext()
    gen, [a, b] = ctx.stable_group(G, 2, rebalance_timeout_ms=20_000, session_timeout_ms=30_000)
    box_b = ctx.join(G, b)  # b (a follower) rejoins with the same metadata: no rebalance
    assert box_b.response.generation_id == gen
    c, box_c = ctx.join_new_dynamic_member(
        G, rebalance_timeout_ms=20_000, session_timeout_ms=30_000
    )
    box_b = ctx.join(G, b, rebalance_timeout_ms=20_000, session_timeout_ms=30_000)
    ctx.sleep(19_999)
    assert not box_c.done
    ctx.sleep(1)
    assert box_b.response.generation_id == box_c.response.generation_id == gen + 1
    assert a not in ctx.coord.groups.groups[G].members
    assert box_b.response.leader in (b, c)
    assert ctx.heartbeat(G, a, gen + 1) == ErrorCode.UNKNOWN_MEMBER_ID


def test_pending_sync_expiry_removes_members_that_never_sync() -> None:
    ctx = CoordinatorTestContext()
    a, box_a = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=15_000)
    b, box_b = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=15_000)
    ctx.sleep(6_000)
    gen = box_a.response.generation_id
    leader = box_a.response.leader
    follower = b if leader == a else a
    assert ctx.timer.is_scheduled(sync_key(G))
    ctx.sync(G, leader, gen, {a: b"x", b: b"y"})
    assert ctx.state(G) is S.STABLE
    for _ in range(3):
        ctx.sleep(5_000)
        ctx.heartbeat(G, leader, gen)
        ctx.heartbeat(G, follower, gen)
    assert follower not in ctx.coord.groups.groups[G].members
    assert ctx.state(G) is S.PREPARING_REBALANCE


def test_new_member_parked_join_times_out_after_the_new_member_join_timeout() -> None:
    ctx = CoordinatorTestContext(group_new_member_join_timeout_ms=60_000)
    gen, [a] = ctx.stable_group(G, rebalance_timeout_ms=300_000)
    b, box_b = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=300_000)
    for _ in range(12):
        ctx.sleep(5_000)
        assert ctx.heartbeat(G, a, gen) == ErrorCode.REBALANCE_IN_PROGRESS
    assert box_b.response.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert b not in ctx.coord.groups.groups[G].members
    assert ctx.timer.is_scheduled(join_key(G))


def test_group_max_size() -> None:
    ctx = CoordinatorTestContext(group_max_size=2)
    a, box_a = ctx.join_new_dynamic_member(G)
    b, box_b = ctx.join_new_dynamic_member(G)
    c = ctx.join(G).response.member_id
    box_c = ctx.join(G, c)
    assert box_c.response.error_code == ErrorCode.GROUP_MAX_SIZE_REACHED
    assert box_c.response.member_id == ""
    ctx.sleep(6_000)
    assert len(box_a.response.members) == 2
    gen = box_a.response.generation_id
    ctx.sync(G, box_a.response.leader, gen, {})
    ctx.sync(G, b if box_a.response.leader == a else a, gen)
    # Stable and full: newcomers are refused, members may rejoin.
    d = ctx.join(G).response.member_id
    assert ctx.join(G, d).response.error_code == ErrorCode.GROUP_MAX_SIZE_REACHED
    assert ctx.join(G, b).response.error_code == 0


def test_dead_letter_heartbeat_on_unknown_group_and_empty_group() -> None:
    ctx = CoordinatorTestContext()
    ctx.join(G)  # creates an Empty group with a pending member
    assert ctx.state(G) is S.EMPTY
    assert ctx.heartbeat(G, "x", 0) == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.heartbeat("", "x", 0) == ErrorCode.INVALID_GROUP_ID


def test_unload_answers_parked_requests_with_not_coordinator_and_cancels_timers() -> None:
    ctx = CoordinatorTestContext()
    ctx.finish(ctx.coord.on_loaded())
    gen, [a, b] = ctx.stable_group(G, 2)
    c, box_c = ctx.join_new_dynamic_member(G)
    box_a = ctx.join(G, a)
    pending = ctx.join("other").response.member_id
    assert not box_c.done and not box_a.done and pending
    ctx.finish(ctx.coord.on_unloaded())
    assert box_c.response.error_code == box_a.response.error_code == ErrorCode.NOT_COORDINATOR
    assert ctx.coord.groups.groups == {} and ctx.timer.keys == []
    assert (S.PREPARING_REBALANCE, S.DEAD) in ctx.transitions
