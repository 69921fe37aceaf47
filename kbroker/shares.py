"""The share coordinator's runtime (KIP-932): its log, its timers, and share sessions.

``coordinator.ShareCoordinator`` is pure; this module supplies the I/O around it:

- **Load.** Started by the group runtime (share groups live in the group coordinator):
  every partition of ``__share_group_state`` is read from its log start and each
  ShareSnapshot/ShareUpdate record is replayed.
- **Append.** ``finish(result)`` writes the records to ``__share_group_state`` (created on
  first use, ``share.coordinator.state.topic.num.partitions`` partitions, compacted), the
  partition chosen from Kafka's key ``group:topic-id:partition``.
- **Time.** Acquisition locks run on the group runtime's timer through a ``RoutedTimer``
  whose results come back here.
- **Wake-ups.** Records released (RELEASE, a member leaving, an expired lock) wake parked
  ShareFetches through ``broker.waiters`` on that partition.
- **Share sessions.** ShareFetch/ShareAcknowledge carry a share-session epoch per (group,
  member, node): 0 opens a session, -1 closes it (the member's records in it come back), any other
  value must be the next one.  Sessions live in memory; after a restart a client's next
  request gets SHARE_SESSION_NOT_FOUND and it opens a new one, as with Kafka.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from kbroker.clock import now_ms
from kbroker.config import share_group_settings
from kbroker.coordinator.records import partition_for
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_coordinator import (
    RoutedTimer,
    ShareCoordinator,
    ShareListenerAdapter,
)
from kbroker.coordinator.share_records import decode_share_state_record
from kbroker.internal_topics import append_records, ensure_topic, replay_topic
from kbroker.metadata import SHARE_GROUP_STATE_TOPIC
from kbroker.wire.records import RecordBatchView, decode_records

if TYPE_CHECKING:
    from kbroker.groups import GroupRuntime
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

MAX_SHARE_SESSIONS = 2000
"""Open share sessions per broker (Kafka's ``group.share.max.share.sessions`` default);
a new session past it is SHARE_SESSION_LIMIT_REACHED."""
INT32_MAX = 2**31 - 1


@dataclass(slots=True)
class ShareSession:
    epoch: int
    partitions: set[tuple[UUID, int]] = field(default_factory=set)

    def next_epoch(self) -> int:
        return 1 if self.epoch >= INT32_MAX else self.epoch + 1


class _Listener(ShareListenerAdapter):
    """Membership changes: the share coordinator's records, and a leaving member's share
    session closed."""

    def __init__(self, runtime: ShareRuntime, coordinator: ShareCoordinator) -> None:
        super().__init__(coordinator, runtime.finish)
        self.runtime = runtime

    def member_left(self, group_id: str, member_id: str) -> None:
        super().member_left(group_id, member_id)
        for key in [k for k in self.runtime.sessions if k[:2] == (group_id, member_id)]:
            del self.runtime.sessions[key]

    def group_deleted(self, group_id: str) -> None:
        super().group_deleted(group_id)
        for key in [k for k in self.runtime.sessions if k[0] == group_id]:
            del self.runtime.sessions[key]


class ShareRuntime:
    def __init__(self, broker: Broker, groups: GroupRuntime) -> None:
        self.broker = broker
        config = broker.config
        self.config = ShareConfig(**share_group_settings(config))
        self.num_partitions = config.get_int("share.coordinator.state.topic.num.partitions")
        assert groups.timer is not None
        self.coordinator: ShareCoordinator = ShareCoordinator(
            self.config,
            now_ms,
            RoutedTimer(groups.timer, self.finish),
            self.log_offsets,
            groups.group_configs.get,
            self.offset_for_timestamp,
        )
        self.coordinator.released = self._released
        self.listener = _Listener(self, self.coordinator)
        # (group, member, node id) -> session: each node of a virtual cluster keeps its own,
        # as each Kafka broker has its own share-session cache
        self.sessions: dict[tuple[str, str, int], ShareSession] = {}

    def log_offsets(self, topic_id: UUID, partition: int) -> tuple[int, int] | None:
        topic = self.broker.metadata.by_id(topic_id)
        if topic is None:
            return None
        log = self.broker.topics.log(topic.name, partition)
        if log is None:
            return None
        return log.log_start_offset, log.high_watermark

    def offset_for_timestamp(self, topic_id: UUID, partition: int, timestamp_ms: int) -> int | None:
        topic = self.broker.metadata.by_id(topic_id)
        log = self.broker.topics.log(topic.name, partition) if topic is not None else None
        if log is None:
            return None
        found = log.offset_for_timestamp(max(timestamp_ms, 0))
        return found.offset if found is not None else None

    def _released(self, topic_id: UUID, partition: int) -> None:
        topic = self.broker.metadata.by_id(topic_id)
        if topic is not None:
            self.broker.waiters.notify((topic.name, partition))

    def load(self) -> None:
        replayed = 0

        def on_batch(view: RecordBatchView, from_offset: int) -> None:
            nonlocal replayed
            if view.is_control:
                return
            for record in decode_records(view):
                if view.base_offset + record.offset_delta >= from_offset and record.key is not None:
                    decoded = decode_share_state_record(record.key, record.value)
                    if decoded is not None:
                        self.coordinator.replay(decoded)
                        replayed += 1

        replay_topic(self.broker, SHARE_GROUP_STATE_TOPIC, on_batch)
        if replayed:
            logger.info("replayed %d __share_group_state records", replayed)

    def close(self) -> None:
        self.coordinator.on_unloaded()
        self.sessions.clear()

    def append(self, records: list[Record]) -> None:
        segment_bytes = (
            self.broker.config.get("share.coordinator.state.topic.segment.bytes") or "104857600"
        )
        configs = {
            "cleanup.policy": "compact",
            "segment.bytes": segment_bytes,
            "compression.type": "producer",
        }
        ensure_topic(self.broker, SHARE_GROUP_STATE_TOPIC, self.num_partitions, configs, now_ms())
        batches: dict[int, list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for r in records:
            batches[partition_for(r.group_id, self.num_partitions)].append((r.key, r.value))
        now = now_ms()
        for partition, recs in batches.items():
            append_records(self.broker, SHARE_GROUP_STATE_TOPIC, partition, recs, now)

    def finish(self, result: Result[Any]) -> Any:
        return apply_result(result, self.append)
