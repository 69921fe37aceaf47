"""The group coordinator's runtime: its log, its clock and timers, its parked requests.

``coordinator.GroupCoordinator`` is pure: each call returns a ``Result`` (records to append
to ``__consumer_offsets``, replies to deliver once they are durable, the response).  This
module supplies the I/O it leaves out:

- **Load.** At start-up every partition of ``__consumer_offsets`` is read from its log start
  to its end and each record is replayed; then ``on_loaded()`` arms the member timers.
- **Append.** ``finish(result)`` appends the records (one batch per partition, in order),
  then runs the deferred replies, then returns the response.  ``__consumer_offsets`` is
  created the first time a group needs it (FindCoordinator for a group, or a first write),
  with ``offsets.topic.num.partitions`` partitions and ``cleanup.policy=compact`` like Kafka's.
- **Time.** ``coordinator.timer.CallLaterTimer`` over ``loop.call_later`` is the
  coordinator's keyed ``Timer``; a due timeout's result goes through ``finish`` like a
  request's.
- **Parking.** JoinGroup/SyncGroup that must wait get a ``reply`` callback that resolves
  an asyncio future the handler awaits.

Everything runs on the event loop thread; the coordinator is never entered concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from kbroker.clock import now_ms
from kbroker.config import consumer_group_settings, share_group_settings
from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.records import partition_for
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.timer import CallLaterTimer
from kbroker.group_configs import GroupConfigStore
from kbroker.internal_topics import append_records, ensure_topic, replay_topic
from kbroker.metadata import OFFSETS_TOPIC
from kbroker.wire.records import (
    ControlRecordType,
    RecordBatchView,
    decode_records,
    parse_control_record,
)

if TYPE_CHECKING:
    from kbroker.server import Broker
    from kbroker.shares import ShareRuntime

logger = logging.getLogger(__name__)

R = TypeVar("R")


class GroupRuntime:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        config = broker.config
        self.num_partitions = config.get_int("offsets.topic.num.partitions")
        self.group_config = GroupConfig(
            group_min_session_timeout_ms=config.get_int("group.min.session.timeout.ms"),
            group_max_session_timeout_ms=config.get_int("group.max.session.timeout.ms"),
            group_initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
            group_max_size=config.get_int("group.max.size"),
            offsets_retention_minutes=config.get_int("offsets.retention.minutes"),
            offsets_retention_check_interval_ms=config.get_int("offsets.retention.check.interval.ms"),
            offsets_topic_num_partitions=self.num_partitions,
            **consumer_group_settings(config),
        )
        self.timer: CallLaterTimer | None = None
        self.coordinator: GroupCoordinator | None = None
        # KIP-848 per-group configs (the GROUP config resource)
        self.group_configs = GroupConfigStore(Path(config.data_dir))
        # KIP-932: the share coordinator's runtime (started with this one)
        self.shares: ShareRuntime | None = None

    def start(self) -> None:
        """Replay ``__consumer_offsets`` (if it exists) into a new coordinator."""
        def topic_name_for_id(topic_id: Any) -> str | None:
            topic = self.broker.metadata.by_id(topic_id)
            return topic.name if topic is not None else None

        def topics() -> dict[str, tuple[Any, int, bool]]:
            return {t.name: (t.topic_id, t.num_partitions, t.is_internal) for t in self.broker.metadata}

        self.timer = CallLaterTimer(asyncio.get_running_loop().call_later, sink=self.finish)
        coordinator = GroupCoordinator(
            now_ms=now_ms,
            timer=self.timer,
            config=self.group_config,
            topic_name_for_id=topic_name_for_id,
            topics=topics,
            group_overrides=self.group_configs.int_values,
            share_config=ShareConfig(**share_group_settings(self.broker.config)),
        )
        from kbroker.shares import ShareRuntime

        self.shares = ShareRuntime(self.broker, self)
        self.shares.load()
        coordinator.share_groups.listener = self.shares.listener
        replayed = 0

        def on_batch(view: RecordBatchView, from_offset: int) -> None:
            nonlocal replayed
            replayed += self._replay_batch(coordinator, view, from_offset)

        replay_topic(self.broker, OFFSETS_TOPIC, on_batch)
        self.coordinator = coordinator
        self.finish(coordinator.on_loaded())
        if replayed:
            logger.info("replayed %d __consumer_offsets records", replayed)

    @staticmethod
    def _replay_batch(coordinator: GroupCoordinator, view: RecordBatchView, from_offset: int) -> int:
        """Replay one stored batch (records below ``from_offset`` skipped); return the count."""
        records = decode_records(view)
        if view.is_control:
            control_type, _epoch = parse_control_record(records[0])
            coordinator.replay_end_transaction(view.producer_id, control_type == ControlRecordType.COMMIT)
            return 0
        producer_id = view.producer_id if view.is_transactional else -1
        count = 0
        for record in records:
            if view.base_offset + record.offset_delta >= from_offset and record.key is not None:
                coordinator.replay(record.key, record.value, producer_id=producer_id)
                count += 1
        return count

    def close(self) -> None:
        """Answer parked Join/Sync requests (NOT_COORDINATOR) and drop every timer."""
        if self.coordinator is not None:
            self.finish(self.coordinator.on_unloaded())
        if self.shares is not None:
            self.shares.close()

    def ensure_offsets_topic(self) -> None:
        segment_bytes = self.broker.config.get("offsets.topic.segment.bytes") or "104857600"
        configs = {"cleanup.policy": "compact", "segment.bytes": segment_bytes, "compression.type": "producer"}
        ensure_topic(self.broker, OFFSETS_TOPIC, self.num_partitions, configs, now_ms())

    def append(self, records: list[Record]) -> None:
        """Write coordinator records to their ``__consumer_offsets`` partitions: one batch
        per (partition, producer), transactional offset commits in their producer's
        transactional batch so its marker settles them."""
        self.ensure_offsets_topic()
        batches: dict[tuple[int, int, int], list[tuple[bytes, bytes | None]]] = defaultdict(list)
        for r in records:
            partition = partition_for(r.group_id, self.num_partitions)
            batches[(partition, r.producer_id, r.producer_epoch)].append((r.key, r.value))
        now = now_ms()
        for (partition, producer_id, producer_epoch), recs in batches.items():
            append_records(
                self.broker, OFFSETS_TOPIC, partition, recs, now, producer_id=producer_id, producer_epoch=producer_epoch
            )

    def finish(self, result: Result[R]) -> R | None:
        """Append the result's records, deliver its deferred replies, return its response."""
        return apply_result(result, self.append)

    def parked(self) -> tuple[asyncio.Future[Any], Callable[[Any], None]]:
        """A future and the reply callback that resolves it (for JoinGroup/SyncGroup)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def reply(response: Any) -> None:
            if not fut.done():
                fut.set_result(response)

        return fut, reply
