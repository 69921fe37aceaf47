"""The log cleaner: compaction of ``cleanup.policy=compact`` partitions, as Kafka does it.

Theory of operation
-------------------
A compacted log is split at the *first dirty offset* (the ``cleaner-offset-checkpoint``
of the data directory: everything below it was cleaned before) and the *first
uncleanable offset*: the smallest of the active segment's base (never cleaned), the
last stable offset (open transactions) and the base of the first segment holding a
record younger than ``min.compaction.lag.ms`` -- rounded down to the base of the
segment holding it, as Kafka does.  A log is worth cleaning when the dirty bytes are
at least ``min.cleanable.dirty.ratio`` of the total, or when its first dirty segment
is older than ``max.compaction.lag.ms``.

One cleaning pass runs in three steps, so that the slow middle one can run on a
worker thread while the log's owner keeps appending and serving reads:

1. :func:`plan_clean` (owner thread) copies what the pass needs: the segments from
   the log start up to the first uncleanable offset (paths, sizes, aborted
   transactions from their ``.txnindex``), the last data offset and epoch of every
   producer, the config and the time.
2. :func:`build_clean` (any thread) reads only immutable segment files through its own
   descriptors.  It fills an :class:`~log.offset_map.OffsetMap` with the latest
   offset of every key in the dirty section -- skipping aborted transactions and
   control batches -- and stops early when the map is full: the pass then ends at
   that batch (``end_offset``) and the next pass continues from there ("rounds").
   It groups the segments below ``end_offset`` by size (at most ``segment.bytes``, an
   index that fits ``segment.index.bytes``, offsets within 2^31 of the group base) and
   writes each group as one ``<base>.log.cleaned`` segment with rebuilt indexes.
3. :meth:`PartitionLog.replace_segments` (owner thread) swaps each cleaned segment in
   with the crash-safe protocol of ``log.swap``, unless retention or DeleteRecords
   removed one of its segments meanwhile (the cleaned files are then discarded).

Per batch (Kafka's ``LogCleaner.cleanInto`` / ``MemoryRecords.filterTo``):

* a data batch of an aborted transaction is dropped whole;
* a record is kept if it is at or past ``end_offset``, or has a key whose latest
  offset in the map is not after it -- and, if it is a tombstone (no value), only
  while its batch has no *delete horizon* yet or the horizon is still in the future;
  records without a key are dropped;
* a COMMIT/ABORT marker may go once no batch of its transaction was seen in this
  pass, and only after its batch's delete horizon;
* the batch holding a live producer's last data offset (or its latest marker) stays,
  empty if need be, so the producer's sequence and epoch survive (KIP-98);
* a batch whose records all survive and needs no horizon is copied byte for byte;
  otherwise its kept records are copied into a batch with the same base offset, last
  offset delta, leader epoch, producer id/epoch/sequence, flags and codec (compressed
  again); record timestamps are kept (only the base they are relative to may change,
  so only each record's timestamp delta is re-encoded);
* the first time a batch with tombstones or a removable marker is written, its base
  timestamp becomes the delete horizon ``now + delete.retention.ms`` and the
  attribute bit 6 is set (KIP-534); a later pass removes them once that has passed.

A group of one segment in which every batch stays byte for byte is not written at all
(Kafka rewrites it to the same bytes: the log reads the same, only the files are not
replaced); until its first change, a group of one is not written either, and that
unchanged prefix is then copied from the segment in the kernel (``copy_file_range``).

Records are never decoded in full: the per-record loops (key scan with the map lookup,
record filtering) are ``log.cleaner_scan``'s, in C when it is built; with the C offset
table (``log.offset_map``) mapping a batch and judging a batch are one call each, with
no Python object per record.  Segments are read
and the cleaned one written through buffers of half a thread's share of
``log.cleaner.io.buffer.size`` each, as in Kafka.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import and_, gt
from typing import TYPE_CHECKING

from crc32c import crc32c
from kbroker.log.cleaner_io import CleanedSegmentWriter, Throttler
from kbroker.log.cleaner_scan import filter_records, judge, map_records, scan_keys
from kbroker.log.config import LogConfig
from kbroker.log.offset_map import OffsetMap
from kbroker.log.segment import iter_file_batches
from kbroker.log.swap import discard_cleaned
from kbroker.log.txn_index import AbortedTxn
from kbroker.wire.compression import Compression, compress
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    ControlRecordType,
    CorruptRecordBatch,
    Record,
    RecordBatchView,
    TimestampType,
    build_record_batch,
    decode_records,
    parse_control_record,
    records_section,
)

if TYPE_CHECKING:
    from kbroker.log.partition_log import PartitionLog

_INT32_MAX = 2**31 - 1
_OFFSET_INDEX_ENTRY_BYTES = 8
_DELETE_HORIZON_BIT = 0x40
_ATTRIBUTES_POS = 21
_CRC_POS = 17
_ATTRIBUTES = struct.Struct(">h")
_CRC = struct.Struct(">I")
# A v2 batch header: base offset, batch length, leader epoch, magic, crc, attributes,
# last offset delta, base/max timestamp, producer id/epoch, base sequence, record count.
_HEADER = struct.Struct(">qiibIhiqqqhii")
_LOG_OVERHEAD = 12
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
# log.cleaner.io.buffer.size's default (Kafka: split between the threads, half for
# reading and half for writing).
DEFAULT_IO_BUFFER_BYTES = 512 * 1024


class CleanerBufferTooSmallError(Exception):
    """One batch holds more distinct keys than the whole offset map (raise the
    ``log.cleaner.dedupe.buffer.size``)."""


# -- the plan (owner thread) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SegmentToClean:
    """What a cleaning pass needs of one segment, copied on the owner thread."""

    base_offset: int
    log_path: str
    size_bytes: int
    end_offset: int  # the next segment's base offset
    index_entries: int
    max_timestamp: int


@dataclass(frozen=True, slots=True)
class CleanPlan:
    """One pass over one partition (see the module doc, step 1)."""

    directory: str
    config: LogConfig
    segments: tuple[SegmentToClean, ...]
    first_dirty_offset: int
    first_uncleanable_offset: int
    aborted: tuple[AbortedTxn, ...]  # by first offset
    # producer id -> (last data offset or -1, epoch) of every producer the log remembers
    producers: dict[int, tuple[int, int]]
    now_ms: int


@dataclass(frozen=True, slots=True)
class CleanableStats:
    first_dirty_offset: int
    first_uncleanable_offset: int
    clean_bytes: int
    dirty_bytes: int
    must_clean: bool  # max.compaction.lag.ms has passed for the first dirty segment

    @property
    def dirty_ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


def _first_batch_timestamp(path: str) -> int:
    try:
        with open(path, "rb") as f:
            header = f.read(BATCH_HEADER_SIZE)
    except OSError:
        return -1
    if len(header) < BATCH_HEADER_SIZE:
        return -1
    return RecordBatchView(header).max_timestamp


def cleanable_stats(log: PartitionLog, checkpoint_offset: int, now_ms: int) -> CleanableStats:
    """Where the dirty section of ``log`` starts and ends, and how big it is."""
    cfg = log.config
    first_dirty = checkpoint_offset
    if first_dirty < log.log_start_offset or first_dirty > log.log_end_offset:
        first_dirty = log.log_start_offset
    segments = log.segments
    uncleanable = min(log.active_segment.base_offset, log.last_stable_offset)
    if cfg.min_compaction_lag_ms > 0:
        for seg in segments[:-1]:
            if (
                seg.next_offset > first_dirty
                and seg.max_timestamp > now_ms - cfg.min_compaction_lag_ms
            ):
                uncleanable = min(uncleanable, seg.base_offset)
                break
    # Rounded down to the base of the segment holding it (Kafka's calculateCleanableBytes).
    for seg in reversed(segments):
        if seg.base_offset <= uncleanable:
            uncleanable = seg.base_offset
            break
    clean = dirty = 0
    first_dirty_segment = None
    for i, seg in enumerate(segments):
        end = segments[i + 1].base_offset if i + 1 < len(segments) else log.log_end_offset
        if seg.base_offset >= uncleanable:
            break
        if end <= first_dirty:
            clean += seg.size_bytes
        else:
            dirty += seg.size_bytes
            if first_dirty_segment is None:
                first_dirty_segment = seg
    must = False
    if first_dirty_segment is not None and cfg.max_compaction_lag_ms < now_ms:
        first_ts = _first_batch_timestamp(first_dirty_segment.log_path)
        if first_ts < 0:
            first_ts = first_dirty_segment.max_timestamp
        must = 0 <= first_ts < now_ms - cfg.max_compaction_lag_ms
    return CleanableStats(first_dirty, uncleanable, clean, dirty, must)


def plan_clean(
    log: PartitionLog, checkpoint_offset: int, now_ms: int, *, force: bool = False
) -> CleanPlan | None:
    """Copy what a pass needs (owner thread); None if nothing is cleanable, or the dirty
    ratio is below ``min.cleanable.dirty.ratio`` and max.compaction.lag.ms has not
    passed.  ``force`` ignores both and plans a pass even over an empty dirty section:
    it still removes tombstones and markers whose delete horizon has passed."""
    stats = cleanable_stats(log, checkpoint_offset, now_ms)
    if not force and (
        stats.dirty_bytes == 0
        or (not stats.must_clean and stats.dirty_ratio < log.config.min_cleanable_dirty_ratio)
    ):
        return None
    if stats.first_uncleanable_offset <= log.segments[0].base_offset:
        return None
    segments = []
    aborted: list[AbortedTxn] = []
    for i, seg in enumerate(log.segments):
        aborted += [t for t in seg.txn_index.entries if t.last_offset >= log.log_start_offset]
        if seg.base_offset >= stats.first_uncleanable_offset:
            continue
        segments.append(
            SegmentToClean(
                seg.base_offset,
                seg.log_path,
                seg.size_bytes,
                log.segments[i + 1].base_offset,
                len(seg.index.keys),
                seg.max_timestamp,
            )
        )
    producers = {
        pid: (e.batches[-1].last_offset if e.batches else -1, e.producer_epoch)
        for pid, e in log.producer_state.producers.items()
    }
    return CleanPlan(
        log.directory,
        log.config,
        tuple(segments),
        min(stats.first_dirty_offset, stats.first_uncleanable_offset),
        stats.first_uncleanable_offset,
        tuple(sorted(aborted, key=lambda t: t.first_offset)),
        producers,
        now_ms,
    )


# -- transactions ----------------------------------------------------------------------


@dataclass(slots=True)
class _AbortedState:
    txn: AbortedTxn
    has_data: bool = False


class _TxnTracker:
    """Which transactions the batches being read belong to (Kafka's
    CleanedTransactionMetadata).  Feed it every batch in offset order."""

    def __init__(self, aborted: Sequence[AbortedTxn]) -> None:
        self._pending = deque(aborted)
        self._ongoing_aborted: dict[int, _AbortedState] = {}
        self._ongoing_committed: set[int] = set()

    def _consume_up_to(self, offset: int) -> None:
        while self._pending and self._pending[0].first_offset <= offset:
            txn = self._pending.popleft()
            self._ongoing_aborted[txn.producer_id] = _AbortedState(txn)

    def on_data_batch(self, view: RecordBatchView) -> bool:
        """True if the batch belongs to an aborted transaction."""
        self._consume_up_to(view.last_offset)
        if not view.is_transactional:
            return False
        state = self._ongoing_aborted.get(view.producer_id)
        if state is not None:
            state.has_data = True
            return True
        self._ongoing_committed.add(view.producer_id)
        return False

    def on_control_batch(self, view: RecordBatchView, kind: ControlRecordType | None) -> bool:
        """True if the marker may be removed (no data of its transaction seen)."""
        self._consume_up_to(view.last_offset)
        pid = view.producer_id
        if kind is ControlRecordType.ABORT:
            state = self._ongoing_aborted.pop(pid, None)
            return state is None or not state.has_data
        if kind is ControlRecordType.COMMIT:
            if pid in self._ongoing_committed:
                self._ongoing_committed.discard(pid)
                return False
            return True
        return False


def _marker_kind(records: list[Record]) -> ControlRecordType | None:
    if len(records) != 1:
        return None
    try:
        return parse_control_record(records[0])[0]
    except CorruptRecordBatch:
        return None


# -- reading segments (worker) -----------------------------------------------------------


def _segment_batches(seg: SegmentToClean, read_buffer_bytes: int) -> Iterator[RecordBatchView]:
    """Every batch of a segment, read in chunks of ``read_buffer_bytes`` (a larger batch
    is read whole, as Kafka grows its buffer) through a descriptor of our own (the owner
    may rename or close its own meanwhile)."""
    fd = os.open(seg.log_path, os.O_RDONLY)
    try:
        for _, view in iter_file_batches(fd, 0, seg.size_bytes, read_buffer_bytes):
            yield view
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _Scanned:
    """A data batch's records section (decompressed) and what :func:`scan_keys` found."""

    data: bytes | memoryview
    offsets: list[int]
    digests: list[bytes | None]
    tombstones: bytes
    keep: bytes  # see cleaner_scan.scan_keys (empty without ``latest``)


def _scan(view: RecordBatchView, latest: dict[bytes, int] | None = None) -> _Scanned:
    section = records_section(view)
    offsets, digests, tombstones, keep = scan_keys(
        section, view.record_count, view.base_offset, latest
    )
    return _Scanned(section, offsets, digests, tombstones, keep)


def build_offset_map(
    plan: CleanPlan,
    offset_map: OffsetMap,
    throttler: Throttler | None = None,
    read_buffer_bytes: int = DEFAULT_IO_BUFFER_BYTES // 2,
) -> int:
    """Fill ``offset_map`` from the dirty section; returns the end offset of this pass
    (the first offset not mapped)."""
    offset_map.clear()
    txns = _TxnTracker(plan.aborted)
    start = plan.first_dirty_offset
    end = plan.first_uncleanable_offset
    mapped_any = False
    for seg in plan.segments:
        if seg.end_offset <= start:
            for view in _segment_batches(seg, read_buffer_bytes):
                _track_only(txns, view)
            continue
        for view in _segment_batches(seg, read_buffer_bytes):
            if throttler is not None:
                throttler.maybe_throttle(view.size_bytes)
            if view.is_control:
                _track_only(txns, view)
                continue
            if txns.on_data_batch(view) or view.last_offset < start:
                continue
            section = records_section(view)
            if not map_records(offset_map, section, view.record_count, view.base_offset, start):
                if not mapped_any:
                    raise CleanerBufferTooSmallError(
                        f"batch at offset {view.base_offset} of {plan.directory} has more"
                        f" keys than the offset map holds ({offset_map.capacity})"
                    )
                return view.base_offset
            offset_map.update_latest_offset(view.last_offset)
            mapped_any = True
    return end


def _track_only(txns: _TxnTracker, view: RecordBatchView) -> None:
    if view.is_control:
        txns.on_control_batch(view, _marker_kind(decode_records(view)))
    else:
        txns.on_data_batch(view)


def group_segments(
    segments: Sequence[SegmentToClean], max_bytes: int, max_index_bytes: int
) -> list[list[SegmentToClean]]:
    """Consecutive segments merged while the sum stays within ``segment.bytes``, the
    index within ``segment.index.bytes`` and offsets within 2^31 of the group's base
    (Kafka's groupSegmentsBySize)."""
    groups: list[list[SegmentToClean]] = []
    i = 0
    while i < len(segments):
        group = [segments[i]]
        size = segments[i].size_bytes
        index_bytes = segments[i].index_entries * _OFFSET_INDEX_ENTRY_BYTES
        i += 1
        while i < len(segments):
            nxt = segments[i]
            if (
                size + nxt.size_bytes > max_bytes
                or index_bytes + nxt.index_entries * _OFFSET_INDEX_ENTRY_BYTES > max_index_bytes
                or nxt.end_offset - 1 - group[0].base_offset > _INT32_MAX
            ):
                break
            group.append(nxt)
            size += nxt.size_bytes
            index_bytes += nxt.index_entries * _OFFSET_INDEX_ENTRY_BYTES
            i += 1
        groups.append(group)
    return groups


# The smallest read or write buffer a pass uses (log.cleaner.io.buffer.size may be 0).
MIN_IO_BUFFER_BYTES = 4096


def io_buffers(io_buffer_bytes: int) -> tuple[int, int]:
    """(read, write) buffer sizes: half each of one thread's ``log.cleaner.io.buffer.size``
    share (Kafka's LogCleaner), at least ``MIN_IO_BUFFER_BYTES``."""
    half = max(MIN_IO_BUFFER_BYTES, io_buffer_bytes // 2)
    return half, half


@dataclass(slots=True)
class CleanStats:
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    batches_rewritten: int = 0


@dataclass(frozen=True, slots=True)
class CleanedGroup:
    """A cleaned segment ready to replace ``old_bases`` (``[base_offset, end_offset)``)."""

    base_offset: int
    end_offset: int
    old_bases: tuple[int, ...]


@dataclass(slots=True)
class CleanOutcome:
    end_offset: int
    groups: list[CleanedGroup] = field(default_factory=list)
    stats: CleanStats = field(default_factory=CleanStats)
    latest_delete_horizon: int = -1


class _BatchCleaner:
    """The per-batch rules of the module doc, for one pass."""

    def __init__(self, plan: CleanPlan, offset_map: OffsetMap, end_offset: int) -> None:
        self.plan = plan
        self.map = offset_map
        self.end_offset = end_offset
        self.now_ms = plan.now_ms
        self.txns = _TxnTracker(plan.aborted)
        self.stats = CleanStats()
        # The largest delete horizon of a batch written (-1: none): when it has passed,
        # a pass over an otherwise clean log has something to remove.
        self.latest_delete_horizon = -1
        # Whether the last batch judged stays byte for byte (see :meth:`clean`).
        self.unchanged = False

    def _same(self, view: RecordBatchView) -> memoryview:
        """``view``'s own bytes, noting that the batch stays as it is."""
        self.unchanged = True
        return view.buffer()

    def _is_last_of_producer(self, view: RecordBatchView) -> bool:
        last = self.plan.producers.get(view.producer_id)
        if last is None:
            return False
        last_data_offset, epoch = last
        if last_data_offset >= 0:
            return view.last_offset == last_data_offset
        return view.is_control and view.producer_epoch == epoch

    def _keep_flags(
        self, view: RecordBatchView, section: bytes | memoryview, keep: bytes, tombstones: bytes
    ) -> bytes:
        """One byte per record, 1 if it stays (the module doc's record rule): the key
        rule comes from :func:`judge`; tombstones past their horizon and records past
        the pass's end are adjusted here, without a Python loop in the common case."""
        if (
            1 in tombstones
            and view.has_delete_horizon
            and view.base_timestamp <= self.now_ms
        ):
            keep = bytes(map(gt, keep, tombstones))  # kept and not a tombstone
        if view.last_offset >= self.end_offset:
            offsets = scan_keys(section, view.record_count, view.base_offset)[0]
            keep = bytes(
                o >= self.end_offset or k for k, o in zip(keep, offsets, strict=True)
            )
        return keep

    def clean(self, view: RecordBatchView) -> bytes | bytearray | memoryview | None:
        """The batch to write in place of ``view`` (None: drop it).  Data batches are
        judged on their scanned keys; only a batch that changes is rewritten, by
        copying its kept records (timestamp deltas re-based).  Sets :attr:`unchanged`."""
        self.unchanged = False
        if view.is_control:
            return self._clean_control(view)
        drop_all = self.txns.on_data_batch(view)
        count = view.record_count
        self.stats.records_read += count
        retain_empty = view.has_producer_id and self._is_last_of_producer(view)
        if drop_all:
            if not retain_empty:
                return None
            if not count:
                return self._same(view)
            self.stats.batches_rewritten += 1
            return _empty_batch(view)
        section = records_section(view)
        keep, tombstones = judge(self.map, section, count, view.base_offset)
        keep = self._keep_flags(view, section, keep, tombstones)
        kept_count = keep.count(1)
        self.stats.records_kept += kept_count
        has_tombstones = 1 in tombstones and 1 in tombstones_kept(keep, tombstones)
        set_horizon = has_tombstones and not view.has_delete_horizon
        if has_tombstones and view.has_delete_horizon:
            # only horizons guarding something removable call for a later pass
            self.latest_delete_horizon = max(self.latest_delete_horizon, view.base_timestamp)
        if kept_count == count and not set_horizon:
            return self._same(view)
        self.stats.batches_rewritten += 1
        if not kept_count:
            return _empty_batch(view) if retain_empty else None
        horizon = self.now_ms + self.plan.config.delete_retention_ms if set_horizon else None
        if horizon is not None:
            self.latest_delete_horizon = max(self.latest_delete_horizon, horizon)
        return _filtered_batch(view, section, keep, kept_count, horizon)

    def _clean_control(self, view: RecordBatchView) -> bytes | bytearray | memoryview | None:
        records = decode_records(view)
        self.stats.records_read += len(records)
        can_discard = self.txns.on_control_batch(view, _marker_kind(records))
        horizon_passed = view.has_delete_horizon and view.base_timestamp <= self.now_ms
        retain_empty = view.has_producer_id and self._is_last_of_producer(view)
        if can_discard and horizon_passed:
            if not retain_empty:
                return None
            self.stats.batches_rewritten += 1
            return _empty_batch(view) if records else view.buffer()
        self.stats.records_kept += len(records)
        if not can_discard:
            return self._same(view)
        # A marker with no data of its transaction left: removable once its horizon passes.
        if view.has_delete_horizon:
            self.latest_delete_horizon = max(self.latest_delete_horizon, view.base_timestamp)
            return self._same(view)
        self.stats.batches_rewritten += 1
        horizon = self.now_ms + self.plan.config.delete_retention_ms
        self.latest_delete_horizon = max(self.latest_delete_horizon, horizon)
        return _rebuild(view, records, horizon)


def tombstones_kept(keep: bytes, tombstones: bytes) -> bytes:
    """1 per record that is kept and a tombstone."""
    return bytes(map(and_, keep, tombstones))


def _empty_batch(view: RecordBatchView) -> bytearray:
    """The header of ``view`` with no records (Kafka's writeEmptyHeader)."""
    return build_record_batch(
        [],
        base_offset=view.base_offset,
        base_timestamp=view.max_timestamp,
        max_timestamp=view.max_timestamp,
        last_offset_delta=view.last_offset_delta,
        producer_id=view.producer_id,
        producer_epoch=view.producer_epoch,
        base_sequence=view.base_sequence,
        is_transactional=view.is_transactional,
        is_control=view.is_control,
        partition_leader_epoch=view.partition_leader_epoch,
        timestamp_type=view.timestamp_type,
    )


def _rebuild(view: RecordBatchView, kept: list[Record], new_horizon: int | None) -> bytearray:
    """``kept`` re-encoded in a batch like ``view``; ``new_horizon`` sets a delete
    horizon (an existing one is kept)."""
    old_base_ts = view.base_timestamp
    absolute = [old_base_ts + r.timestamp_delta for r in kept]
    has_horizon = new_horizon is not None or view.has_delete_horizon
    if new_horizon is not None:
        base_ts = new_horizon
    elif view.has_delete_horizon:
        base_ts = old_base_ts
    else:
        base_ts = absolute[0]
    records = [
        Record(r.offset_delta, ts - base_ts, r.key, r.value, r.headers, r.attributes)
        for r, ts in zip(kept, absolute, strict=True)
    ]
    if view.timestamp_type == TimestampType.LOG_APPEND_TIME:
        max_ts = view.max_timestamp
    else:
        max_ts = max(absolute)
    batch = build_record_batch(
        records,
        base_offset=view.base_offset,
        base_timestamp=base_ts,
        compression=view.compression,
        producer_id=view.producer_id,
        producer_epoch=view.producer_epoch,
        base_sequence=view.base_sequence,
        is_transactional=view.is_transactional,
        is_control=view.is_control,
        partition_leader_epoch=view.partition_leader_epoch,
        timestamp_type=view.timestamp_type,
        max_timestamp=max_ts,
        last_offset_delta=view.last_offset_delta,
    )
    if has_horizon:
        attributes = _ATTRIBUTES.unpack_from(batch, _ATTRIBUTES_POS)[0] | _DELETE_HORIZON_BIT
        _ATTRIBUTES.pack_into(batch, _ATTRIBUTES_POS, attributes)
        _CRC.pack_into(batch, _CRC_POS, crc32c(memoryview(batch)[_ATTRIBUTES_POS:]))
    return batch


def _filtered_batch(
    view: RecordBatchView,
    data: bytes | memoryview,
    keep: bytes,
    kept_count: int,
    new_horizon: int | None,
) -> bytearray:
    """The records of ``view`` flagged in ``keep`` in a batch like ``view`` (same base
    offset, last offset delta, leader epoch, producer fields, flags and codec).  The
    base timestamp is ``new_horizon`` (setting the delete-horizon bit), else the
    existing horizon, else the first kept record's timestamp; record bytes are copied
    with only their timestamp delta re-based."""
    has_horizon = new_horizon is not None or view.has_delete_horizon
    if new_horizon is not None:
        base_ts: int | None = new_horizon
    elif view.has_delete_horizon:
        base_ts = view.base_timestamp
    else:
        base_ts = None
    records, base_ts, max_ts = filter_records(
        data, view.record_count, keep, view.base_timestamp, base_ts
    )
    if view.timestamp_type == TimestampType.LOG_APPEND_TIME:
        max_ts = view.max_timestamp
    codec = view.compression
    body = compress(codec, records) if codec is not Compression.NONE else records
    attributes = int(codec)
    if view.timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= _TIMESTAMP_TYPE_BIT
    if view.is_transactional:
        attributes |= _TRANSACTIONAL_BIT
    if has_horizon:
        attributes |= _DELETE_HORIZON_BIT
    batch = bytearray(BATCH_HEADER_SIZE + len(body))
    _HEADER.pack_into(
        batch,
        0,
        view.base_offset,
        len(batch) - _LOG_OVERHEAD,
        view.partition_leader_epoch,
        2,  # magic
        0,  # crc, below
        attributes,
        view.last_offset_delta,
        base_ts,
        max_ts,
        view.producer_id,
        view.producer_epoch,
        view.base_sequence,
        kept_count,
    )
    batch[BATCH_HEADER_SIZE:] = body
    _CRC.pack_into(batch, _CRC_POS, crc32c(memoryview(batch)[_ATTRIBUTES_POS:]))
    return batch


def build_clean(
    plan: CleanPlan,
    offset_map: OffsetMap,
    throttler: Throttler | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    io_buffer_bytes: int = DEFAULT_IO_BUFFER_BYTES,
) -> CleanOutcome | None:
    """Step 2 of the module doc: map the dirty section, write the cleaned groups as
    ``.cleaned`` segments.  None if ``should_stop`` said so midway (files removed).
    ``io_buffer_bytes`` (one thread's share of ``log.cleaner.io.buffer.size``) is split
    into the read and the write buffer, as in Kafka."""
    read_bytes, write_bytes = io_buffers(io_buffer_bytes)
    end_offset = build_offset_map(plan, offset_map, throttler, read_bytes)
    outcome = CleanOutcome(end_offset)
    cleaner = _BatchCleaner(plan, offset_map, end_offset)
    outcome.stats = cleaner.stats
    to_clean = [s for s in plan.segments if s.base_offset < end_offset]
    cfg = plan.config
    groups = group_segments(to_clean, cfg.segment_bytes, cfg.segment_index_bytes)
    aborted_by_marker = {t.last_offset: t for t in plan.aborted}
    for group in groups:
        # A group of one segment is only written from its first changed batch on, and
        # not at all when nothing in it changes (see the module doc).
        source = group[0].log_path if len(group) == 1 else None
        writer = CleanedSegmentWriter(
            plan.directory, group[0].base_offset, cfg, write_bytes, source
        )
        try:
            for seg in group:
                for view in _segment_batches(seg, read_bytes):
                    if should_stop():
                        writer.abandon()
                        for done in outcome.groups:
                            discard_cleaned(plan.directory, done.base_offset)
                        return None
                    if throttler is not None:
                        throttler.maybe_throttle(view.size_bytes)
                    outcome.stats.bytes_read += view.size_bytes
                    cleaned = cleaner.clean(view)
                    if cleaned is None:
                        writer.skip()
                        continue
                    if cleaner.unchanged:
                        writer.append_unchanged(cleaned, view.base_offset, view.max_timestamp)
                    else:
                        max_ts = RecordBatchView(cleaned).max_timestamp
                        writer.append(cleaned, view.base_offset, max_ts)
                    outcome.stats.bytes_written += len(cleaned)
                    txn = aborted_by_marker.get(view.last_offset) if view.is_control else None
                    if txn is not None:
                        writer.txn_index.append(txn)
            writer.finish()
            outcome.latest_delete_horizon = cleaner.latest_delete_horizon
            if writer.unchanged:
                continue
        except BaseException:
            writer.abandon()
            for done in outcome.groups:
                discard_cleaned(plan.directory, done.base_offset)
            raise
        outcome.groups.append(
            CleanedGroup(
                group[0].base_offset, group[-1].end_offset, tuple(s.base_offset for s in group)
            )
        )
    return outcome
