"""A deterministic harness for KIP-848 consumer groups: fake clock and timer, in-memory
log, a mutable topic table, and ``SimConsumer`` (a well-behaved client that applies each
assignment it is given, revoking at once).  ``replayed()`` rebuilds a coordinator from
the log, as a restart does.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_group import ConsumerGroup, to_sets
from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.wire.messages.consumer_group_heartbeat_request import (
    ConsumerGroupHeartbeatRequest,
    TopicPartitions,
)
from kbroker.wire.messages.consumer_group_heartbeat_response import (
    ConsumerGroupHeartbeatResponse,
)

__all__ = ["ConsumerGroupTestContext", "SimConsumer", "group_snapshot"]

TEST_CONFIG: dict[str, Any] = {
    "group_consumer_session_timeout_ms": 45_000,
    "group_consumer_heartbeat_interval_ms": 5_000,
}


class ConsumerGroupTestContext:
    def __init__(self, **config: Any) -> None:
        self.clock = ManualClock()
        self.log: list[Record] = []
        self.timer = FakeTimer(self.clock, sink=self.finish)
        self.config = GroupConfig(**{**TEST_CONFIG, **config})
        self.topics: dict[str, tuple[UUID, int, bool]] = {}
        ids = itertools.count(1)
        self._topic_ids = itertools.count(1)
        self.coord = GroupCoordinator(
            now_ms=self.clock.now_ms,
            timer=self.timer,
            config=self.config,
            new_uuid=lambda: f"m{next(ids)}",
            topic_name_for_id=self.topic_name,
            topics=lambda: self.topics,
        )

    def topic_name(self, topic_id: UUID) -> str | None:
        for name, (tid, _n, _i) in self.topics.items():
            if tid == topic_id:
                return name
        return None

    def create_topic(self, name: str, partitions: int, internal: bool = False) -> UUID:
        topic_id = UUID(int=next(self._topic_ids))
        self.topics[name] = (topic_id, partitions, internal)
        return topic_id

    def add_partitions(self, name: str, total: int) -> None:
        topic_id, _n, internal = self.topics[name]
        self.topics[name] = (topic_id, total, internal)

    def finish(self, result: Result[Any]) -> Any:
        return apply_result(result, self.log.extend)

    def sleep(self, ms: int) -> None:
        self.timer.advance(ms)

    def group(self, group_id: str) -> ConsumerGroup:
        group = self.coord.consumer_groups.get(group_id)
        assert group is not None
        return group

    def assert_partitions_held_once(self, group_id: str) -> None:
        """No partition of the consumer group (if there is one) is held (assigned or
        pending revocation) by two of its members at once."""
        group = self.coord.consumer_groups.get(group_id)
        if group is None:
            return
        seen: set[object] = set()
        for m in group.members.values():
            held = to_sets(m.assigned) | to_sets(m.pending_revocation)
            assert not (held & seen), "a partition held by two members"
            seen |= held

    def heartbeat(self, **fields: Any) -> ConsumerGroupHeartbeatResponse:
        version = fields.pop("version", 1)
        request = ConsumerGroupHeartbeatRequest(**fields)
        response = self.finish(
            self.coord.consumer_group_heartbeat(
                request, api_version=version, client_id="client", client_host="/127.0.0.1"
            )
        )
        assert isinstance(response, ConsumerGroupHeartbeatResponse)
        return response

    def replayed(self) -> GroupCoordinator:
        timer = FakeTimer(ManualClock(self.clock.ms))
        fresh = GroupCoordinator(
            now_ms=timer.clock.now_ms,
            timer=timer,
            config=self.config,
            topics=lambda: self.topics,
        )
        for record in self.log:
            fresh.replay(record.key, record.value, producer_id=record.producer_id)
        fresh.on_loaded()
        return fresh


@dataclass
class SimConsumer:
    """A client of the consumer protocol: joins, heartbeats reporting what it owns,
    applies assignments (revoking at once), leaves."""

    ctx: ConsumerGroupTestContext
    group_id: str
    member_id: str
    topics: list[str] | None = None
    regex: str | None = None
    instance_id: str | None = None
    assignor: str | None = None
    epoch: int = 0
    owned: dict[UUID, frozenset[int]] = field(default_factory=dict)
    last_error: int = 0
    joined: bool = False

    def heartbeat(self, *, report_owned: bool = True) -> ConsumerGroupHeartbeatResponse:
        joining = not self.joined
        fields: dict[str, Any] = {
            "group_id": self.group_id,
            "member_id": self.member_id,
            "member_epoch": self.epoch,
            "instance_id": self.instance_id,
        }
        if joining:
            fields.update(
                rebalance_timeout_ms=30_000,
                subscribed_topic_names=self.topics if self.regex is None else None,
                subscribed_topic_regex=self.regex,
                server_assignor=self.assignor,
                topic_partitions=[],
            )
        elif report_owned:
            fields["topic_partitions"] = [
                TopicPartitions(topic_id=t, partitions=sorted(p))
                for t, p in sorted(self.owned.items())
                if p
            ]
        response = self.ctx.heartbeat(**fields)
        self.last_error = response.error_code
        if response.error_code:
            if response.error_code in (25, 110):  # UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH
                self.joined, self.epoch, self.owned = False, 0, {}
            return response
        self.joined = True
        self.epoch = response.member_epoch
        if response.assignment is not None:
            self.owned = {
                tp.topic_id: frozenset(tp.partitions)
                for tp in response.assignment.topic_partitions
                if tp.partitions
            }
        return response

    def leave(self, static: bool = False) -> ConsumerGroupHeartbeatResponse:
        response = self.ctx.heartbeat(
            group_id=self.group_id,
            member_id=self.member_id,
            member_epoch=-2 if static else -1,
            instance_id=self.instance_id,
        )
        self.joined, self.epoch, self.owned = False, 0, {}
        return response

    def owned_set(self) -> set[tuple[UUID, int]]:
        return {(t, p) for t, ps in self.owned.items() for p in ps}


def group_snapshot(group: ConsumerGroup) -> dict[str, Any]:
    """Everything the records must carry (compared live vs replayed)."""
    return {
        "group_epoch": group.group_epoch,
        "assignment_epoch": group.assignment_epoch,
        "state": group.state,
        "subscribed_topics": dict(group.subscribed_topics),
        "static_members": dict(group.static_members),
        "target": {m: dict(p) for m, p in group.target.items() if p},
        "members": {
            m.member_id: (m.metadata_key(), m.assignment_key())
            for m in group.members.values()
        },
    }


def assert_clients_never_share(owned_sets: Iterable[set[tuple[UUID, int]]]) -> None:
    """No two live clients believe they own the same partition."""
    seen: set[object] = set()
    for owned in owned_sets:
        assert not (owned & seen), "two clients own one partition"
        seen |= owned
