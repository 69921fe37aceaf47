"""The share coordinator: every share-partition's state, its locks, and its durable form.

Kafka splits this between the share-partition leader (in-flight records, locks) and the
share coordinator (the ``__share_group_state`` topic); kbroker has one broker, so one pure
object does both.  Entry points return a ``Result`` whose records go to
``__share_group_state`` (``Record.group_id`` carries ``share_state_key(...)``, the string
Kafka hashes to pick the partition), never to ``__consumer_offsets``.

- **Initialization.** A share-partition gets its start offset when the group first assigns
  it (the group manager calls :meth:`initialize`): the log end for
  ``share.auto.offset.reset=latest`` (the default), the log start for ``earliest``.
- **Acquire.** The ShareFetch handler reads the log from :meth:`fetch_offset` and passes
  the offsets it read to :meth:`acquire`, which locks up to ``max_records`` AVAILABLE ones
  for the member for the lock duration and schedules the lock timer.
- **Acknowledge / release / expire.** Each change writes a ShareSnapshot of the
  partition (start offset, state batches: acquired records are written as AVAILABLE with
  their delivery count, so a restart neither loses an acknowledgement nor resets a count).
- **Wake-ups.** When records become AVAILABLE again (RELEASE, a leaving member, an expired
  lock) :attr:`released` is called with the partition so parked fetches look again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from kbroker.coordinator.result import Effects, Record, Result
from kbroker.coordinator.share_config import ShareConfig, parse_by_duration_ms
from kbroker.coordinator.share_partition import AckRefused, SharePartition
from kbroker.coordinator.share_records import (
    SHARE_SNAPSHOT,
    SHARE_UPDATE,
    ShareStateRecord,
    encode_record,
    share_state_key,
    snapshot_record,
    snapshot_tombstone,
    state_batches_of,
)
from kbroker.wire.errors import ErrorCode

__all__ = ["LogOffsets", "ShareCoordinator"]

LogOffsets = Callable[[UUID, int], tuple[int, int] | None]
"""(topic id, partition) -> (log start offset, high watermark), or None if it is gone."""
GroupStringOverrides = Callable[[str], Mapping[str, str]]
OffsetForTimestamp = Callable[[UUID, int, int], int | None]
"""(topic id, partition, timestamp ms) -> the first offset with a timestamp at or after it."""
PartitionKey = tuple[str, UUID, int]

LOCK_DURATION_OVERRIDE = "share.record.lock.duration.ms"
AUTO_OFFSET_RESET_OVERRIDE = "share.auto.offset.reset"
DELIVERY_COUNT_OVERRIDE = "share.delivery.count.limit"


def lock_key(key: PartitionKey) -> str:
    return f"share-lock-{key[0]}-{key[1]}-{key[2]}"


class ShareCoordinator:
    def __init__(
        self,
        config: ShareConfig,
        now_ms: Callable[[], int],
        timer: Any,
        log_offsets: LogOffsets,
        overrides: GroupStringOverrides | None = None,
        offset_for_timestamp: OffsetForTimestamp | None = None,
    ) -> None:
        self.config = config
        self.now_ms = now_ms
        self.timer = timer
        self.log_offsets = log_offsets
        self.overrides: GroupStringOverrides = overrides or (lambda _g: {})
        self.offset_for_timestamp: OffsetForTimestamp = offset_for_timestamp or (lambda _t, _p, _ts: None)
        self.partitions: dict[PartitionKey, SharePartition] = {}
        self.snapshot_epochs: dict[PartitionKey, int] = {}
        self.released: Callable[[UUID, int], None] = lambda _t, _p: None

    # -- per-group settings --------------------------------------------------------------
    def lock_duration_ms(self, group_id: str) -> int:
        value = self.overrides(group_id).get(LOCK_DURATION_OVERRIDE)
        return int(value) if value is not None else self.config.group_share_record_lock_duration_ms

    def delivery_count_limit(self, group_id: str) -> int:
        value = self.overrides(group_id).get(DELIVERY_COUNT_OVERRIDE)
        return int(value) if value is not None else self.config.group_share_delivery_count_limit

    def auto_offset_reset(self, group_id: str) -> str:
        return self.overrides(group_id).get(
            AUTO_OFFSET_RESET_OVERRIDE, self.config.share_auto_offset_reset
        )

    def _new_partition(self, group_id: str) -> SharePartition:
        return SharePartition(
            self.delivery_count_limit(group_id), self.config.group_share_partition_max_record_locks
        )

    # -- durability ------------------------------------------------------------------------
    def _write(self, fx: Effects, key: PartitionKey) -> None:
        part = self.partitions[key]
        epoch = self.snapshot_epochs.get(key, -1) + 1
        self.snapshot_epochs[key] = epoch
        k, v = encode_record(
            *snapshot_record(
                key[0],
                key[1],
                key[2],
                snapshot_epoch=epoch,
                state_epoch=part.state_epoch,
                start_offset=part.start_offset,
                batches=part.state_batches(),
                now_ms=self.now_ms(),
            )
        )
        fx.records.append(Record(k, v, share_state_key(*key)))

    def replay(self, record: ShareStateRecord) -> None:
        key = (record.group_id, record.topic_id, record.partition)
        if record.value is None:
            self.partitions.pop(key, None)
            self.snapshot_epochs.pop(key, None)
            return
        v = record.value
        if record.record_type == SHARE_SNAPSHOT:
            self.partitions[key] = SharePartition.from_state(
                start_offset=v.start_offset,
                batches=state_batches_of(v),
                delivery_count_limit=self.delivery_count_limit(record.group_id),
                max_in_flight_records=self.config.group_share_partition_max_record_locks,
                state_epoch=v.state_epoch,
            )
            self.snapshot_epochs[key] = v.snapshot_epoch
        elif record.record_type == SHARE_UPDATE and key in self.partitions:
            part = self.partitions[key]
            merged = {b.first_offset: b for b in part.state_batches()}
            for b in state_batches_of(v):
                merged[b.first_offset] = b
            self.partitions[key] = SharePartition.from_state(
                start_offset=max(v.start_offset, part.start_offset),
                batches=sorted(merged.values(), key=lambda b: b.first_offset),
                delivery_count_limit=part.delivery_count_limit,
                max_in_flight_records=part.max_in_flight_records,
                state_epoch=part.state_epoch,
            )

    # -- initialization ------------------------------------------------------------------
    def initialize(self, group_id: str, parts: Mapping[UUID, frozenset[int]]) -> Result[None]:
        fx = Effects()
        reset = self.auto_offset_reset(group_id)
        for topic_id, partitions in parts.items():
            for partition in sorted(partitions):
                key = (group_id, topic_id, partition)
                if key in self.partitions:
                    continue
                offsets = self.log_offsets(topic_id, partition)
                if offsets is None:
                    continue
                part = self.partitions[key] = self._new_partition(group_id)
                part.initialize(self._reset_offset(reset, topic_id, partition, offsets))
                self._write(fx, key)
        return fx.result(None)

    def _reset_offset(self, reset: str, topic_id: UUID, partition: int, offsets: tuple[int, int]) -> int:
        log_start, high_watermark = offsets
        if reset == "earliest":
            return log_start
        duration_ms = parse_by_duration_ms(reset)
        if duration_ms is not None:
            found = self.offset_for_timestamp(topic_id, partition, self.now_ms() - duration_ms)
            if found is not None:
                return min(max(found, log_start), high_watermark)
        return high_watermark

    def partition(self, group_id: str, topic_id: UUID, partition: int) -> SharePartition | None:
        return self.partitions.get((group_id, topic_id, partition))

    # -- ShareFetch / ShareAcknowledge ------------------------------------------------------
    def fetch_offset(self, group_id: str, topic_id: UUID, partition: int) -> Result[int | None]:
        """Where a fetch should read from; None when the partition has nothing to offer
        (gone, or nothing available below the high watermark).  A partition fetched before
        any heartbeat assigned it is initialized here (its records are in the result)."""
        key = (group_id, topic_id, partition)
        offsets = self.log_offsets(topic_id, partition)
        if offsets is None:
            return Result(response=None)
        records = self.initialize(group_id, {topic_id: frozenset({partition})}).records
        result: Result[int | None] = Result(records=records)
        part = self.partitions.get(key)
        if part is None:
            return result
        log_start, high_watermark = offsets
        if part.start_offset < log_start:
            part.reset_start(log_start)
        if part.available_count(high_watermark) > 0:
            result.response = part.first_available_offset()
        return result

    def acquire(
        self,
        group_id: str,
        member_id: str,
        topic_id: UUID,
        partition: int,
        first_offset: int,
        last_offset: int,
        max_records: int,
    ) -> Result[list[tuple[int, int, int]]]:
        """Lock the AVAILABLE records among ``first_offset..last_offset`` for the member."""
        fx = Effects()
        key = (group_id, topic_id, partition)
        part = self.partitions.get(key)
        if part is None or max_records <= 0:
            return fx.result([])
        now = self.now_ms()
        ranges = part.acquire(
            member_id, first_offset, last_offset, max_records, now, self.lock_duration_ms(group_id)
        )
        if ranges:
            self._write(fx, key)  # delivery counts are durable from acquisition on
            self._schedule_lock_timer(key)
        return fx.result(ranges)

    def acknowledge(
        self,
        group_id: str,
        member_id: str,
        topic_id: UUID,
        partition: int,
        batches: list[tuple[int, int, list[int]]],
    ) -> Result[ErrorCode]:
        """Apply acknowledgement batches (first, last, types).  A batch the partition
        refuses is INVALID_RECORD_STATE; the batches before it stay applied, as Kafka."""
        fx = Effects()
        key = (group_id, topic_id, partition)
        part = self.partitions.get(key)
        if part is None:
            return fx.result(ErrorCode.INVALID_RECORD_STATE)
        code = ErrorCode.NONE
        released = False
        changed = False
        start_before = part.start_offset
        now = self.now_ms()
        lock_ms = self.lock_duration_ms(group_id)
        for first, last, types in batches:
            try:
                released = part.acknowledge(member_id, first, last, types, now, lock_ms) or released
                changed = True
            except AckRefused:
                code = ErrorCode.INVALID_RECORD_STATE
                break
        if changed:
            self._write(fx, key)
            self._schedule_lock_timer(key)
        if released or part.start_offset != start_before:
            # records are available again, or the in-flight window moved (room for more)
            self.released(topic_id, partition)
        return fx.result(code)

    def release_member(
        self, group_id: str, member_id: str, only: set[tuple[UUID, int]] | None = None
    ) -> Result[None]:
        """The member left (or closed its share session): its records come back now."""
        fx = Effects()
        for key, part in self.partitions.items():
            if key[0] != group_id or (only is not None and (key[1], key[2]) not in only):
                continue
            if not part.acquired_by(member_id):
                continue
            if part.release_member(member_id):
                self.released(key[1], key[2])
            self._write(fx, key)
            self._schedule_lock_timer(key)
        return fx.result(None)

    def _schedule_lock_timer(self, key: PartitionKey) -> None:
        part = self.partitions.get(key)
        deadline = part.next_lock_deadline_ms() if part is not None else None
        if deadline is None:
            self.timer.cancel(lock_key(key))
            return
        self.timer.schedule(
            lock_key(key), max(0, deadline - self.now_ms()), lambda: self.expire_locks(key)
        )

    def expire_locks(self, key: PartitionKey) -> Result[None]:
        fx = Effects()
        part = self.partitions.get(key)
        if part is not None:
            if part.expire_locks(self.now_ms()):
                self.released(key[1], key[2])
            self._write(fx, key)
            self._schedule_lock_timer(key)
        return fx.result(None)

    def on_unloaded(self) -> None:
        for key in self.partitions:
            self.timer.cancel(lock_key(key))
        self.partitions.clear()

    # -- admin -----------------------------------------------------------------------------
    def start_offsets(self, group_id: str) -> dict[tuple[UUID, int], int]:
        return {
            (k[1], k[2]): p.start_offset for k, p in self.partitions.items() if k[0] == group_id
        }

    def lag(self, group_id: str, topic_id: UUID, partition: int) -> int:
        part = self.partitions.get((group_id, topic_id, partition))
        offsets = self.log_offsets(topic_id, partition)
        if part is None or offsets is None:
            return -1
        done = sum(
            1 for r in part.in_flight.values() if r.state.name in ("ACKNOWLEDGED", "ARCHIVED")
        )
        return max(0, offsets[1] - part.start_offset - done)

    def alter_start_offset(
        self, group_id: str, topic_id: UUID, partition: int, offset: int
    ) -> Result[None]:
        fx = Effects()
        key = (group_id, topic_id, partition)
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = self._new_partition(group_id)
            part.initialize(offset)
        else:
            part.in_flight.clear()
            part.initialize(offset)
        part.state_epoch += 1
        self._write(fx, key)
        return fx.result(None)

    def delete_state(self, group_id: str, topic_ids: set[UUID] | None = None) -> Result[None]:
        """Tombstones for the group's share-partitions (all, or those of ``topic_ids``)."""
        fx = Effects()
        for key in [
            k
            for k in self.partitions
            if k[0] == group_id and (topic_ids is None or k[1] in topic_ids)
        ]:
            self.timer.cancel(lock_key(key))
            del self.partitions[key]
            self.snapshot_epochs.pop(key, None)
            k, v = encode_record(*snapshot_tombstone(*key))
            fx.records.append(Record(k, v, share_state_key(*key)))
        return fx.result(None)


class RoutedTimer:
    """A ``Timer`` over another one whose timeouts' results go to ``sink`` (the share
    coordinator's records belong to ``__share_group_state``, not to the group
    coordinator's log that the shared timer's own sink appends to)."""

    def __init__(self, inner: Any, sink: Callable[[Result[Any]], None]) -> None:
        self.inner = inner
        self.sink = sink

    def schedule(self, key: str, delay_ms: int, callback: Callable[[], Result[Any]]) -> None:
        def fire() -> Result[None]:
            self.sink(callback())
            return Result()

        self.inner.schedule(key, delay_ms, fire)

    def cancel(self, key: str) -> None:
        self.inner.cancel(key)


class ShareListenerAdapter:
    """The group manager's ``ShareGroupListener`` over a share coordinator: each event's
    records go to ``sink`` (``__share_group_state``)."""

    def __init__(self, share: ShareCoordinator, sink: Callable[[Result[Any]], None]) -> None:
        self.share = share
        self.sink = sink

    def assigned(self, group_id: str, parts: Mapping[UUID, frozenset[int]]) -> None:
        self.sink(self.share.initialize(group_id, parts))

    def member_left(self, group_id: str, member_id: str) -> None:
        self.sink(self.share.release_member(group_id, member_id))

    def group_deleted(self, group_id: str) -> None:
        self.sink(self.share.delete_state(group_id))
