"""What the console shows, read in-process from the broker's state (never over the wire).

Each function takes the :class:`~kbroker.server.Broker` and returns plain dataclasses for the
templates and the JSON endpoints.  All of it runs on the event loop and touches only
in-memory state (metadata, log offsets and sizes, the group coordinator's tables), except
the message browser (``kbroker.console.records``), which is bounded.  Lag is computed as
kafka-exporter (and ``kbroker.metrics``) does: high watermark minus the committed offset,
never below zero, for every committed partition of a group, with members or not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import kbroker
from kbroker.config import TOPIC_CONFIGS
from kbroker.coordinator.group import CONSUMER_PROTOCOL_TYPE, ClassicGroup
from kbroker.coordinator.state import GroupState
from kbroker.wire.codec import decode_from
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.messages.consumer_protocol_assignment import ConsumerProtocolAssignment

if TYPE_CHECKING:
    from kbroker.coordinator.group_coordinator import GroupCoordinator
    from kbroker.server import Broker


@dataclass(slots=True)
class PartitionInfo:
    partition: int
    log_start_offset: int
    high_watermark: int
    last_stable_offset: int
    size_bytes: int
    segments: int
    leader_epoch: int

    @property
    def records(self) -> int:
        """Offsets between the log start and the high watermark (an upper bound on records)."""
        return self.high_watermark - self.log_start_offset


@dataclass(slots=True)
class TopicInfo:
    name: str
    topic_id: str
    internal: bool
    partitions: list[PartitionInfo]
    configs: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, source

    @property
    def size_bytes(self) -> int:
        return sum(p.size_bytes for p in self.partitions)

    @property
    def records(self) -> int:
        return sum(p.records for p in self.partitions)


@dataclass(slots=True)
class MemberInfo:
    member_id: str
    client_id: str
    client_host: str
    group_instance_id: str | None
    assignment: list[tuple[str, list[int]]]  # topic, partitions ("" topic: not decodable)


@dataclass(slots=True)
class OffsetLag:
    topic: str
    partition: int
    committed_offset: int
    high_watermark: int | None  # None: the partition no longer exists

    @property
    def lag(self) -> int | None:
        if self.high_watermark is None:
            return None
        return max(self.high_watermark - self.committed_offset, 0)


@dataclass(slots=True)
class GroupInfo:
    group_id: str
    state: str
    protocol_type: str
    protocol: str
    generation_id: int
    members: list[MemberInfo]
    offsets: list[OffsetLag]

    @property
    def total_lag(self) -> int:
        return sum(o.lag or 0 for o in self.offsets)

    @property
    def can_reset(self) -> bool:
        """Offsets may be reset only while no member is active (as kafka-consumer-groups.sh)."""
        return self.state in (str(GroupState.EMPTY), str(GroupState.DEAD))

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group_id,
            "state": self.state,
            "protocol": f"{self.protocol_type} {self.protocol}".strip() or "-",
            "generation": self.generation_id,
            "members": len(self.members),
            "member_list": [
                {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
                 "client_host": m.client_host, "assignment": [[t, ps] for t, ps in m.assignment]}
                for m in self.members
            ],
            "total_lag": self.total_lag,
            "partitions": [
                {"topic": o.topic, "partition": o.partition, "committed_offset": o.committed_offset,
                 "high_watermark": o.high_watermark, "lag": o.lag}
                for o in self.offsets
            ],
        }  # fmt: skip


@dataclass(slots=True)
class Overview:
    cluster_id: str
    node_id: int
    version: str
    kafka_address: str
    topics: int
    internal_topics: int
    partitions: int
    size_bytes: int
    groups: int
    connections: int
    uptime_s: float


def coordinator(broker: Broker) -> GroupCoordinator | None:
    """The group coordinator if it has started (the console never starts it)."""
    runtime = broker.group_runtime_if_started
    return runtime.coordinator if runtime is not None else None


def overview(broker: Broker, started_monotonic: float) -> Overview:
    topics = list(broker.metadata)
    logs = broker.topics.logs
    coord = coordinator(broker)
    host, port = broker.listen_address
    return Overview(
        cluster_id=broker.metadata.cluster_id,
        node_id=broker.config.node_id,
        version=kbroker.__version__,
        kafka_address=f"{host}:{port}",
        topics=sum(1 for t in topics if not t.is_internal),
        internal_topics=sum(1 for t in topics if t.is_internal),
        partitions=sum(t.num_partitions for t in topics),
        size_bytes=sum(log.size_bytes for log in logs.logs.values()) if logs is not None else 0,
        groups=len(coord.groups.groups) if coord is not None else 0,
        connections=broker.connection_count,
        uptime_s=time.monotonic() - started_monotonic,
    )


def topic_info(broker: Broker, name: str, *, with_configs: bool = False) -> TopicInfo | None:
    topic = broker.metadata.get(name)
    if topic is None:
        return None
    partitions = []
    for p in range(topic.num_partitions):
        log = broker.topics.log(name, p)
        if log is None:
            continue
        partitions.append(
            PartitionInfo(
                p, log.log_start_offset, log.high_watermark, log.last_stable_offset,
                log.size_bytes, len(log.segments), topic.leader_epochs[p],
            )
        )  # fmt: skip
    info = TopicInfo(topic.name, str(topic.topic_id), topic.is_internal, partitions)
    if with_configs:
        effective = broker.topics.effective_configs(topic)
        for key, value in sorted(effective.items()):
            if key in topic.configs:
                source = "topic"
            else:
                broker_name = TOPIC_CONFIGS[key][0] if key in TOPIC_CONFIGS else None
                source = str(broker.config.source_of(broker_name or key).name).lower().replace("_", " ")
            info.configs.append((key, value, source))
    return info


def topics(broker: Broker) -> list[TopicInfo]:
    found = (topic_info(broker, t.name) for t in sorted(broker.metadata, key=lambda t: (t.is_internal, t.name)))
    return [t for t in found if t is not None]


def _assignment(group: ClassicGroup, assignment: bytes) -> list[tuple[str, list[int]]]:
    if not assignment or group.protocol_type != CONSUMER_PROTOCOL_TYPE:
        return []
    try:
        version = int.from_bytes(assignment[:2], "big", signed=True)
        decoded, _ = decode_from(ConsumerProtocolAssignment, max(0, min(version, 3)), memoryview(assignment), 2)
    except (DecodeError, ValueError, IndexError):
        return [("", [])]
    return [(tp.topic, sorted(tp.partitions)) for tp in decoded.assigned_partitions]


def group_ids(broker: Broker) -> list[str]:
    """Groups the coordinator knows, and groups that only have committed offsets."""
    coord = coordinator(broker)
    if coord is None:
        return []
    return sorted(set(coord.groups.groups) | set(coord.offsets.store.offsets))


def group_info(broker: Broker, group_id: str) -> GroupInfo | None:
    coord = coordinator(broker)
    if coord is None:
        return None
    group = coord.groups.get(group_id)
    committed = coord.offsets.store.offsets.get(group_id, {})
    if group is None and not committed:
        return None
    offsets = []
    for topic, partitions in sorted(committed.items()):
        for partition, value in sorted(partitions.items()):
            log = broker.topics.log(topic, partition)
            offsets.append(OffsetLag(topic, partition, value.committed_offset, log.high_watermark if log is not None else None))
    if group is None:
        return GroupInfo(group_id, str(GroupState.EMPTY), "", "", 0, [], offsets)
    members = [
        MemberInfo(m.member_id, m.client_id, m.client_host, m.group_instance_id, _assignment(group, m.assignment))
        for m in group.members.values()
    ]
    return GroupInfo(
        group_id, str(group.state), group.protocol_type or "", group.protocol_name or "",
        group.generation_id, members, offsets,
    )  # fmt: skip


def throughput(broker: Broker) -> dict[str, object]:
    """Cumulative counters for the live charts; the page turns successive samples into rates."""
    stats = broker.stats
    return {
        "time_ms": int(time.time() * 1000),
        "messages_in": sum(stats.messages_in.values()),
        "bytes_in": sum(stats.bytes_in.values()),
        "bytes_out": sum(stats.bytes_out.values()),
        "requests": sum(s.count for s in stats.requests.values()),
        "connections": broker.connection_count,
    }
