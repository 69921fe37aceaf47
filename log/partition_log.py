"""PartitionLog: one partition's segments, offsets, producer state and durability.

Theory of operation
-------------------
A partition is a directory of segments (see ``segment.Segment``), oldest first; only
the last one, the *active* segment, is appended to.  The log keeps four offsets:

    log_start_offset <= recovery_point <= log_end_offset,  high_watermark == log_end_offset

(a single node: an append is "replicated" as soon as it is written).  The last stable
offset is the smaller of the high watermark and the first offset of any ongoing
transaction (``ProducerStateManager.first_unstable_offset``).

Transactions: a transactional batch opens its producer's transaction; a marker
(control batch, appended only with ``origin=COORDINATOR``) is decoded to learn
COMMIT/ABORT and the coordinator epoch, and closes it, which moves the LSO.  An ABORT
adds ``(producer_id, first_offset, marker offset, LSO after it)`` to the ``.txnindex``
of the segment receiving the marker; ``aborted_transactions`` answers read_committed
fetches from those indexes, and loading rebuilds any index recovery had to discard
while replaying producer state (``_load_producer_state``).

Append is validate-then-write, and never copies or modifies the caller's bytes (the
broker passes a read-only slice of the request frame).  Each batch of the blob is
checked in one pass (magic 2, sizes, CRC-32C, record count vs. last offset delta,
max.message.bytes, control batches only from the coordinator); its 61-byte header is
copied and the copy patched with the assigned base offset, the leader epoch and (if
the topic says so) LogAppendTime with a recomputed CRC -- the v2 CRC starts at
``attributes``, so offset and epoch need none.  Producer state is checked for every
batch -- duplicates and sequence errors raise before a single byte reaches the file.
Then one ``pwritev`` puts [header copy, caller's body, header copy, body, ...] at the
end of the active segment; if it fails the file is cut back to its previous size and
nothing in memory has changed.  Only after the write succeeds are indexes and
offsets updated, and producer state only after the fsync too when a flush is due
(``flush.messages``): a failed fsync rolls the append back (``Segment.rollback``).
So an exception from ``append`` always means "nothing of this append is in the log".

Full disk and failing I/O: a failed write (ENOSPC, EIO) of the segment, of an index at
roll, or of a new segment's files fails that append with LogStorageError and leaves
the log online: the next append tries again, so appends succeed once space returns.
A producer snapshot that cannot be written is skipped (recovery replays from an older
one).  A failed fsync of a ``.log`` file (LogFsyncError) takes the log offline: the
kernel may have dropped the unsynced pages, so appends are refused until a restart
recovers the log from its last recovery point; reads are still served.

Reads are served straight from the file: the offset index gives a position at or
before the wanted batch, a few 61-byte header reads find the batch holding the
offset, then one ``pread`` of ``max_bytes`` is trimmed to whole batches in memory.
Bytes are never decoded or re-encoded.

Durability follows Kafka: data sits in the page cache and is fsynced on segment roll
(with the indexes, a producer-state snapshot and a recovery-point move), on
``flush.messages`` / ``flush.ms``, optionally after every append, and at clean close.
Recovery after a crash rescans from the recovery point (``recovery.py``).

Not thread-safe: one owner (the broker's event loop) calls everything, except that
``flush()`` may run on another thread while no append, roll or retention is running.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass

from crc32c import crc32c
from kbroker.log import log_retention
from kbroker.log.checkpoints import LeaderEpochCache
from kbroker.log.config import LogConfig
from kbroker.log.errors import (
    CorruptBatchError,
    InvalidRecordError,
    LogFsyncError,
    LogStorageError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    UnsupportedMagicError,
)
from kbroker.log.file_cache import FileCache
from kbroker.log.index import IndexCorruptError

# The ListOffsets constants moved to log_reads with the lookups; re-exported here.
from kbroker.log.log_reads import EARLIEST_LOCAL_TIMESTAMP as EARLIEST_LOCAL_TIMESTAMP
from kbroker.log.log_reads import EARLIEST_TIMESTAMP as EARLIEST_TIMESTAMP
from kbroker.log.log_reads import LATEST_TIERED_TIMESTAMP as LATEST_TIERED_TIMESTAMP
from kbroker.log.log_reads import LATEST_TIMESTAMP as LATEST_TIMESTAMP
from kbroker.log.log_reads import MAX_TIMESTAMP as MAX_TIMESTAMP
from kbroker.log.log_reads import offset_for_timestamp, read_slice
from kbroker.log.producer_state import ProducerEntry, ProducerStateManager, marker_of
from kbroker.log.recovery import LoadReport, delete_segment_files, load_segments, new_segment
from kbroker.log.results import (
    ActiveProducer,
    AppendOrigin,
    AppendResult,
    EpochEndOffset,
    FetchSlice,
    TimestampAndOffset,
)
from kbroker.log.segment import Segment
from kbroker.log.swap import FaultHook, discard_cleaned, swap_in
from kbroker.log.txn_index import AbortedTxn
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    CURRENT_MAGIC,
    LOG_OVERHEAD,
    MIN_BATCH_LENGTH,
    ControlRecordType,
    CorruptRecordBatch,
    RecordBatchView,
)

_BASE_AND_LENGTH = struct.Struct(">qi")
# The v2 batch header (see wire.records), unpacked once per appended batch.
_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == BATCH_HEADER_SIZE
# base_offset, batch_length (rewritten unchanged), partition_leader_epoch from byte 0
_BASE_LENGTH_EPOCH = struct.Struct(">qii")
_ATTRIBUTES = struct.Struct(">h")
_TIMESTAMP = struct.Struct(">q")
_CRC = struct.Struct(">I")
_MAGIC_POS = 16
_CRC_POS = 17
_CRC_START = 21  # the CRC-32C covers attributes .. end of batch
_ATTRIBUTES_POS = 21
_MAX_TIMESTAMP_POS = 35
_TIMESTAMP_TYPE_BIT = 0x08
_CONTROL_BIT = 0x20
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LAST_OFFSET_DELTA_POS = 23
_INT32_MAX = 2**31 - 1


def _marker_of(header: bytearray, body: memoryview) -> tuple[ControlRecordType, int]:
    """The (type, coordinator epoch) of a control batch being appended, or
    InvalidRecordError (control batches are tiny: decoding them is cheap)."""
    try:
        return marker_of(RecordBatchView(bytes(header) + bytes(body)))
    except CorruptRecordBatch as exc:
        raise InvalidRecordError(f"bad control batch: {exc}") from exc


@dataclass(slots=True)
class PendingReplace:
    """A cleaned segment on its way in (see :meth:`PartitionLog.replace_segments`)."""

    base_offset: int
    end_offset: int
    old: list[Segment]
    now_ms: int
    cleaned: Segment | None = None


class PartitionLog:
    """One partition's log.  See the module docstring for the design.

    Invariants:

    * segments are sorted by base offset; each segment's offsets lie in
      [base_offset, next segment's base_offset); the active segment is the last;
    * offsets are contiguous: every appended batch starts at the previous
      ``log_end_offset``;
    * ``log_start_offset`` <= ``log_end_offset``, and ``log_start_offset`` lies in the
      first segment (or equals its base when the first segment is empty);
    * every segment below ``recovery_point`` is fsynced with its indexes.
    """

    def __init__(
        self,
        directory: str,
        config: LogConfig,
        *,
        now_ms: int,
        log_start_offset: int = 0,
        recovery_point: int = 0,
        had_clean_shutdown: bool = False,
        files: FileCache | None = None,
        fsync_on_load: bool = True,
    ) -> None:
        self.directory = directory
        self.config = config
        # The LRU of open segment descriptors shared by a LogManager's logs (None: each
        # segment keeps its file open; see log.file_cache).  ``fsync_on_load`` False: what
        # recovery rewrote is only written, and the caller syncs the file system before
        # it records the recovery point anywhere (LogManager: lazy loads, one sync).
        self.files = files
        self.segments, self.load_report = load_segments(
            directory,
            config,
            recovery_point=recovery_point,
            log_start_offset=log_start_offset,
            had_clean_shutdown=had_clean_shutdown,
            now_ms=now_ms,
            files=files,
            fsync=fsync_on_load,
        )
        self._bases = [s.base_offset for s in self.segments]
        self.log_start_offset = max(log_start_offset, self.segments[0].base_offset)
        if self.log_start_offset > self.log_end_offset:
            self.log_start_offset = self.log_end_offset
        self.recovery_point = self.log_end_offset
        self.epoch_cache = LeaderEpochCache(directory)
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        self.epoch_cache.truncate_from_start(self.log_start_offset)
        self.producer_state = ProducerStateManager(directory)
        self._snapshot_at_end = False
        self._snapshot_leo = -1  # with _snapshot_at_end: close skips an identical snapshot
        self._load_producer_state(fsync=fsync_on_load)
        self._unflushed_messages = 0
        self._last_flush_ms = now_ms
        # Segments renamed *.deleted, with the time (ms) their files may be unlinked.
        self._pending_deletes: list[tuple[int, Segment]] = []
        self._now_ms = now_ms  # the latest time any call told us (for DeleteRecords)
        self._offline: str | None = None
        # Called (by delete_records_before) after DeleteRecords moved the log start
        # offset; the LogManager sets it to write the log-start checkpoint at once.
        self.on_log_start_offset_moved: Callable[[PartitionLog], None] | None = None
        # A cleaned segment being swapped in (begin_replace .. end_replace).
        self._replacing: PendingReplace | None = None

    # -- offsets -------------------------------------------------------------------
    @property
    def active_segment(self) -> Segment:
        return self.segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self.log_end_offset

    @property
    def last_stable_offset(self) -> int:
        first_unstable = self.producer_state.first_unstable_offset()
        hw = self.high_watermark
        return hw if first_unstable is None else min(first_unstable, hw)

    @property
    def size_bytes(self) -> int:
        return sum(s.size_bytes for s in self.segments)

    def _load_producer_state(self, fsync: bool = True) -> None:
        """Load the newest usable producer snapshot and replay the batches after it,
        rebuilding on the way the aborted-txn index of every segment that lost it
        (rescanned by recovery, or its ``.txnindex`` missing or damaged)."""
        ps = self.producer_state
        leo = self.log_end_offset
        rebuild = [s for s in self.segments if s.txn_index.needs_rebuild]
        bound = rebuild[0].base_offset if rebuild else leo
        loaded_at = ps.load(leo, at_most=bound)
        # A snapshot at the log end already describes this state: close() need not write one.
        self._snapshot_at_end = loaded_at == leo and not rebuild
        self._snapshot_leo = leo
        start = max(loaded_at, self.segments[0].base_offset)
        try:
            for seg in self.segments:
                if seg.next_offset <= start:
                    continue
                found = seg.find_batch(start)
                if found is None:
                    continue
                txn_index = seg.txn_index if seg.txn_index.needs_rebuild else None
                for _, view in seg.batches_from(found[0]):
                    if view.base_offset < start:
                        continue
                    done = ps.replay(view)
                    if txn_index is not None and done is not None and done.is_aborted:
                        lso = ps.last_stable_offset_after(done, {})
                        txn_index.append(
                            AbortedTxn(done.producer_id, done.first_offset, done.last_offset, lso)
                        )
        except CorruptRecordBatch:
            # an impossible header in a trusted (not rescanned) segment: keep the state
            # replayed so far; reads of the damage answer errors, opening does not fail
            pass
        for seg in rebuild:
            seg.txn_index.needs_rebuild = False
            seg.txn_index.flush(fsync=fsync)

    # -- append --------------------------------------------------------------------
    @property
    def is_offline(self) -> bool:
        """True after an fsync failed (see LogFsyncError): appends are refused."""
        return self._offline is not None

    def _check_online(self) -> None:
        if self._offline is not None:
            raise LogStorageError(f"log {self.directory} is offline: {self._offline}")

    def append(
        self,
        records: bytes | bytearray | memoryview,
        *,
        leader_epoch: int,
        now_ms: int,
        origin: AppendOrigin = AppendOrigin.CLIENT,
    ) -> AppendResult:
        """Validate, assign offsets and write a blob of batches; see the module doc.

        ``records`` is never modified (the broker passes a read-only slice of the
        request frame): patched copies of the 61-byte headers are written around the
        caller's batch bodies.  Raises CorruptBatchError, InvalidRecordError,
        RecordTooLargeError, RecordBatchTooLargeError, DuplicateSequence,
        OutOfOrderSequenceError, InvalidProducerEpochError, InvalidTxnStateError or
        LogStorageError, always with nothing written.  ``origin=COORDINATOR`` allows
        control batches (markers).
        """
        if self._offline is not None:
            self._check_online()
        if type(records) is not memoryview:
            mv = memoryview(records)
        elif records.itemsize == 1 and records.ndim == 1:
            mv = records
        else:
            mv = records.cast("B")
        size = len(mv)
        cfg = self.config
        if size == 0:
            raise InvalidRecordError("an append must carry at least one batch")
        if size > cfg.segment_bytes:
            raise RecordBatchTooLargeError(
                f"{size} bytes cannot fit in a segment of {cfg.segment_bytes}"
            )
        max_message_bytes = cfg.max_message_bytes
        use_append_time = cfg.is_log_append_time
        unpack_header = _HEADER.unpack_from
        pack_patch = _BASE_LENGTH_EPOCH.pack_into
        offset = first = self.log_end_offset
        pieces: list[bytes | bytearray | memoryview] = []
        batches: list[tuple[int, int, int, int]] = []  # base offset, max ts, position, size
        pending: dict[int, ProducerEntry] | None = None
        aborted: list[AbortedTxn] | None = None
        pos = 0
        while pos < size:
            if size - pos < BATCH_HEADER_SIZE:
                if size - pos > _MAGIC_POS and mv[pos + _MAGIC_POS] in (0, 1):
                    raise UnsupportedMagicError(f"message format v{mv[pos + _MAGIC_POS]}")
                raise CorruptBatchError(f"{size - pos} trailing bytes at position {pos}")
            (
                _,
                length,
                epoch,
                magic,
                crc,
                attributes,
                last_offset_delta,
                _,
                max_ts,
                producer_id,
                _,
                _,
                record_count,
            ) = unpack_header(mv, pos)
            if magic != CURRENT_MAGIC:
                if magic in (0, 1):
                    raise UnsupportedMagicError(f"message format v{magic} is not supported")
                raise CorruptBatchError(f"unknown magic {magic} at position {pos}")
            if length < MIN_BATCH_LENGTH:
                raise CorruptBatchError(f"batch_length {length} at position {pos} is too small")
            n = length + LOG_OVERHEAD
            end = pos + n
            if end > size:
                raise CorruptBatchError(
                    f"batch at position {pos} declares {n} bytes, only {size - pos} present"
                )
            if n > max_message_bytes:
                raise RecordTooLargeError(
                    f"batch of {n} bytes exceeds max.message.bytes={max_message_bytes}"
                )
            if crc32c(mv[pos + _CRC_START : end]) != crc:
                raise CorruptBatchError(f"batch at position {pos} fails its CRC-32C check")
            if record_count <= 0 or record_count != last_offset_delta + 1:
                raise InvalidRecordError(
                    f"record_count {record_count} does not match last_offset_delta "
                    f"{last_offset_delta}"
                )
            # The patched copy of this header: base offset, leader epoch, maybe time.
            header = bytearray(mv[pos : pos + BATCH_HEADER_SIZE])
            pack_patch(header, 0, offset, length, leader_epoch if leader_epoch >= 0 else epoch)
            body = mv[pos + BATCH_HEADER_SIZE : end]
            if use_append_time and (not attributes & _TIMESTAMP_TYPE_BIT or max_ts != now_ms):
                max_ts = now_ms
                _ATTRIBUTES.pack_into(header, _ATTRIBUTES_POS, attributes | _TIMESTAMP_TYPE_BIT)
                _TIMESTAMP.pack_into(header, _MAX_TIMESTAMP_POS, now_ms)
                new_crc = crc32c(body, crc32c(memoryview(header)[_CRC_START:]))
                _CRC.pack_into(header, _CRC_POS, new_crc)
            if producer_id >= 0:
                view = RecordBatchView(header)
                marker = None
                if attributes & _CONTROL_BIT:
                    if origin is AppendOrigin.CLIENT:
                        raise InvalidRecordError("clients may not append control batches")
                    marker = _marker_of(header, body)
                if pending is None:
                    pending = {}
                # Sequence checks are for producers; the coordinators' own transactional
                # writes (offset commits) carry no sequence, as in Kafka.
                check = origin is AppendOrigin.CLIENT or marker is not None
                done = self.producer_state.prepare(view, offset, pending, check=check, marker=marker)
                if done is not None and done.is_aborted:
                    if aborted is None:
                        aborted = []
                    lso = self.producer_state.last_stable_offset_after(done, pending)
                    aborted.append(
                        AbortedTxn(done.producer_id, done.first_offset, done.last_offset, lso)
                    )
            elif attributes & _CONTROL_BIT:
                raise InvalidRecordError("a control batch must carry a producer id")
            pieces.append(header)
            pieces.append(body)
            batches.append((offset, max_ts, pos, n))
            offset += last_offset_delta + 1
            pos = end
        seg = self.segments[-1]
        if seg.size_bytes and (
            seg.size_bytes + size > cfg.segment_bytes
            or now_ms - seg.rolling_base_ms >= cfg.max_segment_ms
            or offset - 1 - seg.base_offset > _INT32_MAX
            or len(seg.index.keys) >= seg.index.max_entries
            or len(seg.time_index.keys) >= seg.time_index.max_entries
        ):
            seg = self.roll(now_ms)
        epochs = self.epoch_cache.epochs
        if leader_epoch >= 0 and (not epochs or leader_epoch > epochs[-1]):
            self.epoch_cache.assign(leader_epoch, first)
        mark = seg.mark()
        try:
            seg.append(pieces, size, batches, offset)
        except LogStorageError:
            self.epoch_cache.truncate_from_end(first)
            raise
        count = offset - first
        self._unflushed_messages += count
        flush_due = cfg.fsync_every_append or (
            cfg.flush_messages is not None and self._unflushed_messages >= cfg.flush_messages
        )
        if flush_due:
            # The durability point: until this fsync returns the append can still be
            # undone, so a failure leaves nothing of it visible (see "Full disk").
            try:
                seg.sync_log()
            except LogFsyncError as exc:
                self._offline = str(exc)
                self._unflushed_messages -= count
                with contextlib.suppress(LogStorageError):
                    seg.rollback(mark)
                self.epoch_cache.truncate_from_end(first)
                raise
        if pending is not None:
            self.producer_state.commit(pending)
            if aborted is not None:
                for txn in aborted:
                    seg.txn_index.append(txn)
        if flush_due:
            # The data is durable; indexes, older segments and the recovery point follow
            # here or, if this fails (a full disk), at the next flush.
            with contextlib.suppress(LogStorageError):
                self.flush()
        return AppendResult(
            first,
            offset - 1,
            now_ms if use_append_time else -1,
            self.log_start_offset,
            count,
            size,
        )

    # -- rolling -------------------------------------------------------------------
    def _maybe_roll(self, incoming_bytes: int, last_offset: int, now_ms: int) -> None:
        seg = self.active_segment
        if seg.size_bytes == 0:
            return
        if (
            seg.size_bytes + incoming_bytes > self.config.segment_bytes
            or seg.index.is_full
            or seg.time_index.is_full
            or now_ms - seg.rolling_base_ms >= self.config.max_segment_ms
            or last_offset - seg.base_offset > _INT32_MAX
        ):
            self.roll(now_ms)

    def maybe_roll(self, now_ms: int) -> None:
        """Roll the active segment if it is older than ``segment.ms`` (or full)."""
        self._check_online()
        self._now_ms = now_ms
        self._maybe_roll(0, self.log_end_offset, now_ms)

    def roll(self, now_ms: int) -> Segment:
        """Close the active segment (fsync, final time-index entry, producer snapshot)
        and start a new one at the log end offset.  No-op if the active one is empty."""
        old = self.active_segment
        if old.size_bytes == 0:
            return old
        end = self.log_end_offset
        old.on_become_inactive()
        try:
            old.flush()
        except LogFsyncError as exc:
            self._offline = str(exc)
            raise
        self.epoch_cache.sync()  # the recovery point moves past this data below
        seg = new_segment(self.directory, end, self.config, now_ms, self.files)  # LogStorageError
        self.segments.append(seg)
        self._bases.append(end)
        # The snapshot only shortens recovery (which replays from an older one if this
        # one is missing): a full disk here must not fail the append that rolled.
        with contextlib.suppress(OSError):
            self.producer_state.take_snapshot(end, keep=end)
        self.recovery_point = max(self.recovery_point, end)
        return seg

    # -- read ----------------------------------------------------------------------
    def segment_index_for(self, offset: int) -> int:
        """The index of the segment that would hold ``offset``."""
        return max(bisect.bisect_right(self._bases, offset) - 1, 0)

    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> FetchSlice:
        """Whole batches from the one holding ``offset``, up to ``max_bytes`` (see
        :func:`log.log_reads.read_slice`)."""
        return read_slice(
            self, offset, max_bytes, max_offset=max_offset, min_one_batch=min_one_batch
        )

    # -- offset lookups ----------------------------------------------------------------
    def offset_for_timestamp(self, timestamp_ms: int) -> TimestampAndOffset | None:
        """ListOffsets (see :func:`log.log_reads.offset_for_timestamp`)."""
        return offset_for_timestamp(self, timestamp_ms)

    @property
    def latest_epoch(self) -> int:
        return self.epoch_cache.latest_epoch

    def end_offset_for_epoch(self, leader_epoch: int) -> EpochEndOffset:
        """OffsetForLeaderEpoch: where ``leader_epoch`` ends in this log."""
        return self.epoch_cache.end_offset_for(leader_epoch, self.log_end_offset)

    # -- transactions ----------------------------------------------------------------
    def aborted_transactions(self, start_offset: int, end_offset: int) -> list[tuple[int, int]]:
        """(producer_id, first_offset) of the aborted transactions overlapping
        [start_offset, end_offset), in marker order: Fetch's ``aborted_transactions``
        for read_committed (pass the returned slice's first and next offsets).

        Searches from the segment holding ``start_offset`` on, and stops at the first
        entry whose LSO reached ``end_offset`` (Kafka's collectAbortedTransactions).
        """
        out: list[tuple[int, int]] = []
        if end_offset <= start_offset:
            return out
        for seg in self.segments[self.segment_index_for(start_offset) :]:
            found, complete = seg.txn_index.collect(start_offset, end_offset)
            out += [(t.producer_id, t.first_offset) for t in found]
            if complete:
                break
        return out

    def active_producers(self) -> list[ActiveProducer]:
        """Every producer the partition remembers (DescribeProducers), by id."""
        return [
            ActiveProducer(
                e.producer_id,
                e.producer_epoch,
                e.last_seq,
                e.last_timestamp,
                e.coordinator_epoch,
                e.txn_first_offset,
            )
            for _, e in sorted(self.producer_state.producers.items())
        ]

    def ongoing_transactions(self) -> list[ActiveProducer]:
        """The producers with an open transaction, oldest transaction first."""
        open_txns = [p for p in self.active_producers() if p.current_txn_start_offset >= 0]
        return sorted(open_txns, key=lambda p: p.current_txn_start_offset)

    # -- deletion (log_retention) ------------------------------------------------------
    def delete_records_before(self, offset: int, *, now_ms: int | None = None) -> int:
        """DeleteRecords: see :func:`kbroker.log.log_retention.delete_records_before`."""
        return log_retention.delete_records_before(self, offset, now_ms)

    def enforce_retention(self, now_ms: int) -> int:
        """Retention by time and size: see :func:`kbroker.log.log_retention.enforce_retention`."""
        return log_retention.enforce_retention(self, now_ms)

    def delete_pending_files(self, now_ms: int | None) -> None:
        """Unlink deleted segments' files once ``file.delete.delay.ms`` has passed."""
        log_retention.delete_pending_files(self, now_ms)

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> int:
        """producer.id.expiration.ms: forget idle producers (see producer_state)."""
        removed = self.producer_state.remove_expired_producers(now_ms, expiration_ms)
        if removed:
            self._snapshot_at_end = False
        return removed

    def replace_segments(
        self,
        base_offset: int,
        end_offset: int,
        old_bases: tuple[int, ...],
        fault: FaultHook | None = None,
    ) -> bool:
        """Swap in the cleaned segment ``<base_offset>.log.cleaned`` for the segments at
        ``old_bases`` (covering ``[base_offset, end_offset)``) with the protocol of
        ``log.swap``; the old files are unlinked ``file.delete.delay.ms`` later.

        False (and the cleaned files removed) if those segments are no longer exactly
        there -- retention, DeleteRecords or a truncation removed one meanwhile.  The
        three steps (:meth:`begin_replace`, :meth:`swap_files`, :meth:`end_replace`)
        may be run apart, the middle one on another thread.
        """
        pending = self.begin_replace(base_offset, end_offset, old_bases)
        if pending is None:
            return False
        try:
            self.swap_files(pending, fault)
        finally:
            self.end_replace(pending)
        return True

    def begin_replace(
        self, base_offset: int, end_offset: int, old_bases: tuple[int, ...]
    ) -> PendingReplace | None:
        """Step 1 (owner thread): check the old segments are there and hold them (until
        :meth:`end_replace`, retention and DeleteRecords delete no segment from them
        on); None (cleaned files removed) if they are not exactly there."""
        self._check_online()
        i = bisect.bisect_left(self._bases, base_offset)
        j = i + len(old_bases)
        if (
            self._replacing is not None
            or tuple(self._bases[i:j]) != old_bases
            or j >= len(self.segments)
            or self._bases[j] != end_offset
        ):
            discard_cleaned(self.directory, base_offset)
            return None
        pending = PendingReplace(base_offset, end_offset, self.segments[i:j], self._now_ms)
        for seg in pending.old:  # readers keep them open while swap_files renames them
            seg.pin()
        self._replacing = pending
        return pending

    def swap_files(self, pending: PendingReplace, fault: FaultHook | None = None) -> None:
        """Step 2 (any thread: only files and the new segment object): the crash-safe
        swap of ``log.swap``, then the cleaned segment is opened.  Readers keep their
        descriptors of the old files meanwhile."""
        swap_in(
            self.directory,
            pending.base_offset,
            pending.end_offset,
            [seg.rename_for_deletion for seg in pending.old],
            fault if fault is not None else (lambda phase: None),
        )
        cleaned = new_segment(self.directory, pending.base_offset, self.config, pending.now_ms)
        try:
            cleaned.load_trusted(pending.end_offset)
        except IndexCorruptError:
            cleaned.recover(1 << 62)
        pending.cleaned = cleaned

    def end_replace(self, pending: PendingReplace) -> None:
        """Step 3 (owner thread): the cleaned segment takes the old ones' place (if step
        2 finished; else the swap is finished or undone at the next load) and the old
        segments are closed, their files unlinked ``file.delete.delay.ms`` later."""
        if self._replacing is pending:
            self._replacing = None
            for seg in pending.old:
                seg.unpin()
        if pending.cleaned is None:
            return
        if self.files is not None:
            pending.cleaned.adopt(self.files)
        i = bisect.bisect_left(self._bases, pending.base_offset)
        j = i + len(pending.old)
        due = self._now_ms + max(self.config.file_delete_delay_ms, 0)
        for seg in pending.old:
            seg.close()
            self._pending_deletes.append((due, seg))
        self.segments[i:j] = [pending.cleaned]
        self._bases[i:j] = [pending.base_offset]

    def truncate_to(self, offset: int) -> None:
        """Remove every offset >= ``offset`` (a batch straddling it goes whole)."""
        self._check_online()
        if offset >= self.log_end_offset:
            return
        offset = max(offset, self.log_start_offset)
        while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
            seg = self.segments.pop()
            self._bases.pop()
            delete_segment_files(seg)
        self.active_segment.truncate_to(offset)
        self.active_segment.flush()
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.epoch_cache.truncate_from_end(self.log_end_offset)
        for snap in self.producer_state.snapshot_offsets():
            if snap > self.log_end_offset:
                os.unlink(self.producer_state.snapshot_path(snap))
        self._load_producer_state()

    # -- durability ----------------------------------------------------------------
    def flush(self) -> None:
        """fsync every dirty segment and its indexes; the recovery point moves to the
        log end.  Safe on another thread while no append/roll/retention is running."""
        end = self.log_end_offset
        try:
            for seg in list(self.segments):
                seg.flush()
            self.epoch_cache.sync()
        except LogFsyncError as exc:
            self._offline = str(exc)
            raise
        except OSError as exc:  # a write failure (full disk): the log stays online
            raise LogStorageError(f"leader-epoch checkpoint of {self.directory}: {exc}") from exc
        self.recovery_point = max(self.recovery_point, end)
        self._unflushed_messages = 0

    def maybe_flush(self, now_ms: int) -> None:
        """Flush if ``flush.ms`` has passed since the last flush."""
        if (
            self.config.flush_ms is not None
            and now_ms - self._last_flush_ms >= self.config.flush_ms
        ):
            self.flush()
            self._last_flush_ms = now_ms

    def file_descriptors(self) -> list[int]:
        """The open segment descriptors, for a caller that fsyncs them itself."""
        return [s.fd for s in self.segments]

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        for seg in self.segments:
            seg.index_interval_bytes = config.index_interval_bytes

    def close(self, clean: bool = True, *, fsync: bool = True) -> None:
        """Close the files.  ``clean`` first makes everything durable and snapshots the
        producer state at the log end (so the next open need not rescan); with ``fsync``
        False everything is only written, for a caller that syncs the whole file system
        next (LogManager.close: one sync instead of five fsyncs per partition)."""
        if clean and self._offline is None:
            self.active_segment.on_become_inactive()
            if fsync:
                self.flush()
            else:
                for seg in self.segments:
                    seg.flush(fsync=False)
            if not (self._snapshot_at_end and self._snapshot_leo == self.log_end_offset):
                try:
                    self.producer_state.take_snapshot(
                        self.log_end_offset, keep=self.active_segment.base_offset, fsync=fsync
                    )
                except OSError as exc:
                    raise LogStorageError(f"producer snapshot in {self.directory} failed: {exc}") from exc
        self.delete_pending_files(None)
        for seg in self.segments:
            seg.close()

    @property
    def report(self) -> LoadReport:
        return self.load_report
