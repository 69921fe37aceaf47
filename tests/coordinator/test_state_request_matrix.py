"""Each (state, request) pair, table-driven: the answer and the state the group ends in.

This is the per-state "action:" documentation of ``GroupState`` written down as data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext, subscription
from kbroker.wire.errors import ErrorCode as E
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

S = GroupState
G = "g"
PARKED = "parked"


@dataclass
class World:
    ctx: CoordinatorTestContext
    leader: str
    follower: str
    generation: int


def in_stable() -> World:
    ctx = CoordinatorTestContext()
    gen, [a, b] = ctx.stable_group(G, 2)
    return World(ctx, a, b, gen)


def in_completing() -> World:
    ctx = CoordinatorTestContext()
    a, box_a = ctx.join_new_dynamic_member(G)
    b, _ = ctx.join_new_dynamic_member(G)
    ctx.sleep(6_000)
    assert ctx.state(G) is S.COMPLETING_REBALANCE and box_a.response.leader == a
    return World(ctx, a, b, box_a.response.generation_id)


def in_preparing() -> World:
    world = in_stable()
    world.ctx.join_new_dynamic_member(G)
    assert world.ctx.state(G) is S.PREPARING_REBALANCE
    return world


def in_empty() -> World:
    world = in_stable()
    world.ctx.sleep(10_000)  # both sessions expire
    assert world.ctx.state(G) is S.EMPTY
    return world


SETUPS: dict[S, Callable[[], World]] = {
    S.EMPTY: in_empty,
    S.PREPARING_REBALANCE: in_preparing,
    S.COMPLETING_REBALANCE: in_completing,
    S.STABLE: in_stable,
}


def join_new_v3(w: World) -> object:
    box = w.ctx.join(G, version=3)
    return box.response.error_code if box.done else PARKED


def join_leader(w: World) -> object:
    box = w.ctx.join(G, w.leader)
    return box.response.error_code if box.done else PARKED


def join_follower(w: World) -> object:
    box = w.ctx.join(G, w.follower)
    return box.response.error_code if box.done else PARKED


def join_follower_changed(w: World) -> object:
    box = w.ctx.join(G, w.follower, protocols=[("range", subscription("topic", "more"))])
    return box.response.error_code if box.done else PARKED


def sync_leader(w: World) -> object:
    box = w.ctx.sync(G, w.leader, w.generation, {w.leader: b"1", w.follower: b"2"})
    return box.response.error_code if box.done else PARKED


def sync_follower(w: World) -> object:
    box = w.ctx.sync(G, w.follower, w.generation)
    return box.response.error_code if box.done else PARKED


def heartbeat(w: World) -> object:
    return w.ctx.heartbeat(G, w.follower, w.generation)


def leave(w: World) -> object:
    request = LeaveGroupRequest(group_id=G, members=[MemberIdentity(member_id=w.follower)])
    response = w.ctx.finish(w.ctx.coord.leave_group(request, api_version=3))
    assert response is not None
    return response.members[0].error_code


def _commit(w: World, generation: int, member_id: str) -> object:
    request = OffsetCommitRequest(
        group_id=G,
        generation_id_or_member_epoch=generation,
        member_id=member_id,
        topics=[
            OffsetCommitRequestTopic(name="topic", partitions=[OffsetCommitRequestPartition()])
        ],
    )
    response = w.ctx.finish(w.ctx.coord.commit_offsets(request, api_version=8))
    assert response is not None
    return response.topics[0].partitions[0].error_code


def commit_member(w: World) -> object:
    return _commit(w, w.generation, w.follower)


def commit_simple(w: World) -> object:
    return _commit(w, -1, "")


REQUESTS = {
    "join_new_v3": join_new_v3,
    "join_leader": join_leader,
    "join_follower": join_follower,
    "join_follower_changed": join_follower_changed,
    "sync_leader": sync_leader,
    "sync_follower": sync_follower,
    "heartbeat": heartbeat,
    "leave": leave,
    "commit_member": commit_member,
    "commit_simple": commit_simple,
}

UNKNOWN = E.UNKNOWN_MEMBER_ID
REBALANCING = E.REBALANCE_IN_PROGRESS
P, C, ST, EM = S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.STABLE, S.EMPTY

# (state, request) -> (answer, state afterwards)
MATRIX: dict[tuple[S, str], tuple[object, S]] = {
    (EM, "join_new_v3"): (PARKED, P),
    (EM, "join_leader"): (UNKNOWN, EM),
    (EM, "join_follower"): (UNKNOWN, EM),
    (EM, "join_follower_changed"): (UNKNOWN, EM),
    (EM, "sync_leader"): (UNKNOWN, EM),
    (EM, "sync_follower"): (UNKNOWN, EM),
    (EM, "heartbeat"): (UNKNOWN, EM),
    (EM, "leave"): (UNKNOWN, EM),
    (EM, "commit_member"): (UNKNOWN, EM),
    (EM, "commit_simple"): (E.NONE, EM),
    (P, "join_new_v3"): (PARKED, P),
    (P, "join_leader"): (PARKED, P),
    (P, "join_follower"): (PARKED, P),
    (P, "join_follower_changed"): (PARKED, P),
    (P, "sync_leader"): (REBALANCING, P),
    (P, "sync_follower"): (REBALANCING, P),
    (P, "heartbeat"): (REBALANCING, P),
    (P, "leave"): (E.NONE, P),
    (P, "commit_member"): (E.NONE, P),
    (P, "commit_simple"): (UNKNOWN, P),
    (C, "join_new_v3"): (PARKED, P),
    (C, "join_leader"): (E.NONE, C),
    (C, "join_follower"): (E.NONE, C),
    (C, "join_follower_changed"): (PARKED, P),
    (C, "sync_leader"): (E.NONE, ST),
    (C, "sync_follower"): (PARKED, C),
    (C, "heartbeat"): (E.NONE, C),
    (C, "leave"): (E.NONE, P),
    (C, "commit_member"): (REBALANCING, C),
    (C, "commit_simple"): (UNKNOWN, C),
    (ST, "join_new_v3"): (PARKED, P),
    (ST, "join_leader"): (PARKED, P),
    (ST, "join_follower"): (E.NONE, ST),
    (ST, "join_follower_changed"): (PARKED, P),
    (ST, "sync_leader"): (E.NONE, ST),
    (ST, "sync_follower"): (E.NONE, ST),
    (ST, "heartbeat"): (E.NONE, ST),
    (ST, "leave"): (E.NONE, P),
    (ST, "commit_member"): (E.NONE, ST),
    (ST, "commit_simple"): (UNKNOWN, ST),
}


@pytest.mark.parametrize(
    ("state", "request_name"), sorted(MATRIX, key=lambda k: (k[0].value, k[1]))
)
def test_state_request_matrix(state: S, request_name: str) -> None:
    world = SETUPS[state]()
    answer, after = MATRIX[(state, request_name)]
    assert REQUESTS[request_name](world) == answer
    assert world.ctx.state(G) is after
    for group in world.ctx.coord.groups.groups.values():
        group.check_invariants()


def test_matrix_is_complete() -> None:
    assert set(MATRIX) == {(s, r) for s in SETUPS for r in REQUESTS}
