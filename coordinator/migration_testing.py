"""A classic-protocol client for the migration tests: ``SimClassic`` joins (the KIP-394
two-step join), syncs (as leader it assigns round-robin, like a range/roundrobin
client), heartbeats and rejoins on REBALANCE_IN_PROGRESS, owning nothing while it
rejoins (an eager client).  Works against ``ConsumerGroupTestContext``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from kbroker.coordinator.consumer_testing import ConsumerGroupTestContext
from kbroker.coordinator.state import GroupState
from kbroker.wire.codec import decode_from, encode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
    TopicPartition,
)
from kbroker.wire.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from kbroker.wire.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["SimClassic", "classic_group", "decode_assignment", "finish_classic_rebalance"]

_V0 = b"\x00\x00"


def decode_assignment(data: bytes) -> dict[str, frozenset[int]]:
    if not data:
        return {}
    value, _ = decode_from(ConsumerProtocolAssignment, 0, memoryview(data)[2:])
    return {tp.topic: frozenset(tp.partitions) for tp in value.assigned_partitions if tp.partitions}


@dataclass
class SimClassic:
    ctx: ConsumerGroupTestContext
    group_id: str
    topics: list[str]
    member_id: str = ""
    generation: int = -1
    owned: dict[str, frozenset[int]] = field(default_factory=dict)
    pending_join: list[JoinGroupResponse] = field(default_factory=list)
    pending_sync: list[SyncGroupResponse] = field(default_factory=list)
    session_timeout_ms: int = 30_000

    def _metadata(self) -> bytes:
        return bytes(_V0 + encode(ConsumerProtocolSubscription(topics=sorted(self.topics)), 0))

    def join(self) -> JoinGroupResponse | None:
        """Send a JoinGroup (owning nothing: eager); returns the answer or None if parked."""
        self.owned = {}
        request = JoinGroupRequest(
            group_id=self.group_id,
            session_timeout_ms=self.session_timeout_ms,
            rebalance_timeout_ms=30_000,
            member_id=self.member_id,
            protocol_type="consumer",
            protocols=[JoinGroupRequestProtocol(name="range", metadata=self._metadata())],
        )
        self.pending_join.clear()
        response = self.ctx.finish(
            self.ctx.coord.join_group(
                request, api_version=7, client_id="classic", client_host="/127.0.0.1",
                reply=self.pending_join.append,
            )
        )
        if response is None and self.pending_join:
            response = self.pending_join[0]
        if response is None:
            return None
        if response.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            self.member_id = response.member_id
            return self.join()
        return self.on_joined(response)

    def on_joined(self, response: JoinGroupResponse) -> JoinGroupResponse:
        if response.error_code == ErrorCode.NONE:
            self.member_id = response.member_id
            self.generation = response.generation_id
        return response

    def sync(self, join: JoinGroupResponse) -> SyncGroupResponse | None:
        assignments: list[SyncGroupRequestAssignment] = []
        if join.leader == self.member_id and join.members:
            members = sorted(m.member_id for m in join.members)
            buckets: dict[str, dict[str, list[int]]] = {m: {} for m in members}
            i = 0
            for topic in sorted(self.topics):
                _tid, n, _internal = self.ctx.topics[topic]
                for p in range(n):
                    buckets[members[i % len(members)]].setdefault(topic, []).append(p)
                    i += 1
            for m, parts in buckets.items():
                value = ConsumerProtocolAssignment(
                    assigned_partitions=[TopicPartition(topic=t, partitions=ps) for t, ps in parts.items()]
                )
                assignments.append(SyncGroupRequestAssignment(member_id=m, assignment=_V0 + encode(value, 0)))
        request = SyncGroupRequest(
            group_id=self.group_id,
            generation_id=self.generation,
            member_id=self.member_id,
            protocol_type="consumer",
            protocol_name="range",
            assignments=assignments,
        )
        self.pending_sync.clear()
        response = self.ctx.finish(self.ctx.coord.sync_group(request, api_version=5, reply=self.pending_sync.append))
        if response is None and self.pending_sync:
            response = self.pending_sync[0]  # answered through the reply callback
        return None if response is None else self.on_synced(response)

    def on_synced(self, response: SyncGroupResponse) -> SyncGroupResponse:
        if response.error_code == ErrorCode.NONE:
            self.owned = decode_assignment(bytes(response.assignment))
        return response

    def heartbeat(self) -> int:
        request = HeartbeatRequest(
            group_id=self.group_id, generation_id=self.generation, member_id=self.member_id
        )
        response = self.ctx.finish(self.ctx.coord.heartbeat(request, api_version=4))
        assert response is not None
        return int(response.error_code)

    def rebalance(self) -> None:
        """Rejoin and sync in one go (the answers must not park)."""
        join = self.join()
        assert join is not None and join.error_code == ErrorCode.NONE, join
        sync = self.sync(join)
        assert sync is not None and sync.error_code == ErrorCode.NONE, sync

    def step(self) -> None:
        """One heartbeat; a REBALANCE_IN_PROGRESS/ILLEGAL_GENERATION answer makes it rejoin."""
        code = self.heartbeat()
        if code in (ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION):
            self.rebalance()
        elif code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id = ""
            self.rebalance()
        else:
            assert code == ErrorCode.NONE, code

    def leave(self) -> Any:
        request = LeaveGroupRequest(
            group_id=self.group_id, members=[MemberIdentity(member_id=self.member_id)]
        )
        response = self.ctx.finish(self.ctx.coord.leave_group(request, api_version=3))
        self.owned = {}
        return response

    def owned_ids(self) -> set[tuple[UUID, int]]:
        return {(self.ctx.topics[t][0], p) for t, ps in self.owned.items() for p in ps}


def classic_group(ctx: ConsumerGroupTestContext, group_id: str, topic: str, n: int) -> list[SimClassic]:
    """``n`` classic members, Stable, the leader having spread the 6 partitions."""
    members = [SimClassic(ctx, group_id, [topic]) for _ in range(n)]
    for m in members:
        assert m.join() is None  # parked until the initial rebalance delay ends
    ctx.sleep(ctx.config.group_initial_rebalance_delay_ms * (n + 1))
    finish_classic_rebalance(members)
    classic = ctx.coord.groups.get(group_id)
    assert classic is not None and classic.is_in(GroupState.STABLE)
    return members


def finish_classic_rebalance(members: list[SimClassic]) -> None:
    """Every member's JoinGroup was answered: followers sync, then the leader."""
    joins = []
    for m in members:
        assert len(m.pending_join) == 1, m.pending_join
        joins.append(m.on_joined(m.pending_join[0]))
        assert joins[-1].error_code == 0, joins[-1]
    leader = next(m for m, j in zip(members, joins, strict=True) if j.leader == m.member_id)
    followers = [m for m in members if m is not leader]
    for m in followers:
        assert m.sync(joins[members.index(m)]) is None
    assert leader.sync(joins[members.index(leader)]) is not None
    for m in followers:
        m.on_synced(m.pending_sync[0])
