"""A deterministic harness around ``GroupCoordinator``: fake clock, fake timer, in-memory log.

Used by tests/coordinator and usable by kbroker tests. ``sleep(ms)`` fires due timeouts
and appends their records; every record ever appended is kept in ``log`` so that
``replayed()`` can rebuild a fresh coordinator from it (Kafka's
GroupMetadataManagerTestContext).
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.join_group_request import JoinGroupRequest, JoinGroupRequestProtocol
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.sync_group_request import SyncGroupRequest, SyncGroupRequestAssignment
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["Box", "CoordinatorTestContext", "subscription"]

T = TypeVar("T")


def subscription(*topics: str, version: int = 0) -> bytes:
    """A ConsumerProtocolSubscription (v0 layout, plus v1+ empty owned partitions)."""
    out = struct.pack(">hi", version, len(topics))
    for topic in topics:
        raw = topic.encode()
        out += struct.pack(">h", len(raw)) + raw
    out += struct.pack(">i", -1)  # null user data
    if version >= 1:
        out += struct.pack(">i", 0)  # no owned partitions
    return out


@dataclass
class Box(Generic[T]):
    """Collects the answer of a possibly parked request."""

    responses: list[T] = field(default_factory=list)

    def set(self, response: T) -> None:
        self.responses.append(response)

    @property
    def done(self) -> bool:
        return bool(self.responses)

    @property
    def response(self) -> T:
        assert len(self.responses) == 1, f"expected one answer, got {self.responses}"
        return self.responses[0]


class CoordinatorTestContext:
    def __init__(self, **config: Any) -> None:
        self.clock = ManualClock()
        self.log: list[Record] = []
        self.markers: list[tuple[int, int, bool]] = []
        """(position in ``log``, producer id, committed) of transaction markers written."""
        self.timer = FakeTimer(self.clock, sink=self.finish)
        ids = itertools.count(1)
        self.config = GroupConfig(**config)
        self.transitions: list[tuple[GroupState, GroupState]] = []
        self.coord = GroupCoordinator(
            now_ms=self.clock.now_ms,
            timer=self.timer,
            config=self.config,
            new_uuid=lambda: f"u{next(ids)}",
        )
        self.coord.groups.on_transition = lambda a, b: self.transitions.append((a, b))

    # -- plumbing ------------------------------------------------------------------------
    def finish(self, result: Result[T]) -> T | None:
        return apply_result(result, self.log.extend)

    def end_transaction(self, producer_id: int, committed: bool) -> None:
        """What kbroker does after writing a COMMIT/ABORT marker to ``__consumer_offsets``."""
        self.markers.append((len(self.log), producer_id, committed))
        self.coord.replay_end_transaction(producer_id, committed)

    def sleep(self, ms: int) -> None:
        self.timer.advance(ms)

    def state(self, group_id: str) -> GroupState | None:
        group = self.coord.groups.get(group_id)
        return None if group is None else group.state

    def replayed(self) -> GroupCoordinator:
        """A fresh coordinator rebuilt from every record appended so far."""
        timer = FakeTimer(ManualClock(self.clock.ms))
        fresh = GroupCoordinator(now_ms=timer.clock.now_ms, timer=timer, config=self.config)
        markers = list(self.markers)
        for position, record in enumerate(self.log):
            while markers and markers[0][0] == position:
                fresh.replay_end_transaction(markers[0][1], markers[0][2])
                markers.pop(0)
            fresh.replay(record.key, record.value, producer_id=record.producer_id)
        for _, producer_id, committed in markers:
            fresh.replay_end_transaction(producer_id, committed)
        fresh.on_loaded()
        return fresh

    # -- requests ------------------------------------------------------------------------
    def join(
        self,
        group_id: str,
        member_id: str = "",
        *,
        instance_id: str | None = None,
        protocols: list[tuple[str, bytes]] | None = None,
        protocol_type: str = "consumer",
        session_timeout_ms: int = 10_000,
        rebalance_timeout_ms: int = 30_000,
        version: int = 7,
        client_id: str = "client",
    ) -> Box[JoinGroupResponse]:
        if protocols is None:
            protocols = [("range", subscription("topic"))]
        box: Box[JoinGroupResponse] = Box()
        request = JoinGroupRequest(
            group_id=group_id,
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=protocol_type,
            protocols=[JoinGroupRequestProtocol(name=n, metadata=m) for n, m in protocols],
        )
        result = self.coord.join_group(
            request,
            api_version=version,
            client_id=client_id,
            client_host="/127.0.0.1",
            reply=box.set,
        )
        response = self.finish(result)
        if response is not None:
            box.set(response)
        return box

    def join_new_dynamic_member(
        self, group_id: str, **kwargs: Any
    ) -> tuple[str, Box[JoinGroupResponse]]:
        """The KIP-394 two-step join; returns the member id and the parked second join."""
        first = self.join(group_id, **kwargs).response
        assert first.error_code == 79, first  # MEMBER_ID_REQUIRED
        return first.member_id, self.join(group_id, first.member_id, **kwargs)

    def sync(
        self,
        group_id: str,
        member_id: str,
        generation_id: int,
        assignments: dict[str, bytes] | None = None,
        *,
        instance_id: str | None = None,
        version: int = 5,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> Box[SyncGroupResponse]:
        box: Box[SyncGroupResponse] = Box()
        request = SyncGroupRequest(
            group_id=group_id,
            generation_id=generation_id,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=protocol_type,
            protocol_name=protocol_name,
            assignments=[
                SyncGroupRequestAssignment(member_id=m, assignment=a)
                for m, a in (assignments or {}).items()
            ],
        )
        response = self.finish(self.coord.sync_group(request, api_version=version, reply=box.set))
        if response is not None:
            box.set(response)
        return box

    def heartbeat(
        self, group_id: str, member_id: str, generation_id: int, instance_id: str | None = None
    ) -> int:
        result = self.coord.heartbeat(
            HeartbeatRequest(
                group_id=group_id,
                generation_id=generation_id,
                member_id=member_id,
                group_instance_id=instance_id,
            ),
            api_version=4,
        )
        response = self.finish(result)
        assert response is not None
        return response.error_code

    def stable_group(self, group_id: str, n: int = 1, **kwargs: Any) -> tuple[int, list[str]]:
        """Join ``n`` dynamic members, finish the rebalance; returns (generation, ids)."""
        boxes = [self.join_new_dynamic_member(group_id, **kwargs) for _ in range(n)]
        for _ in range(100):  # new members extend the initial delay
            if all(box.done for _, box in boxes):
                break
            self.sleep(max(1, self.config.group_initial_rebalance_delay_ms))
        responses = [box.response for _, box in boxes]
        assert all(r.error_code == 0 for r in responses), responses
        generation = responses[0].generation_id
        leader = responses[0].leader
        ids = [member_id for member_id, _ in boxes]
        follower_boxes = [self.sync(group_id, m, generation) for m in ids if m != leader]
        leader_box = self.sync(
            group_id, leader, generation, {m: f"assignment-{m}".encode() for m in ids}
        )
        assert leader_box.response.error_code == 0
        assert all(b.response.error_code == 0 for b in follower_boxes)
        assert self.state(group_id) is GroupState.STABLE
        return generation, ids
