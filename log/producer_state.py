"""Producer state for idempotence and transactions (Kafka's ProducerStateManager).

Per producer id the log keeps the epoch, the sequence ranges and offsets of its last
five batches, and the first offset of its ongoing transaction.  Every data batch with
a producer id is checked against that state *before* anything is written:

=====================================  ==========================================
Situation (batch vs. cached entry)     Outcome
=====================================  ==========================================
same epoch, (base_seq, last_seq) equal  DuplicateSequence(original base, last
to one of the 5 cached batches          offset): nothing written, broker answers
                                        success with the original offsets
batch epoch < cached epoch              InvalidProducerEpochError
batch epoch > cached epoch              base_seq must be 0, else
                                        OutOfOrderSequenceError; the cached
                                        batches are dropped (new epoch)
unknown producer id                     base_seq must be 0, else
                                        OutOfOrderSequenceError (Kafka >= 2.5,
                                        KIP-360, no longer answers
                                        UNKNOWN_PRODUCER_ID here)
same epoch                              base_seq must be last_seq + 1, where
                                        INT32_MAX + 1 wraps to 0; else
                                        OutOfOrderSequenceError
non-transactional batch while the       InvalidTxnStateError
producer has an open transaction
transactional batch, no open txn        opens one at the batch's base offset
control batch (commit/abort marker)     epoch must be >= cached, else
                                        InvalidProducerEpochError; coordinator
                                        epoch must be >= the last marker's, else
                                        TransactionCoordinatorFencedError; closes
                                        the txn (a CompletedTxn; an ABORT goes to
                                        the segment's aborted-txn index)
=====================================  ==========================================

The checks apply to appends from clients; replay from the log (recovery) applies
batches without checking, as Kafka does for its own log.

Ongoing transactions are also kept in ``ongoing`` (producer id -> first offset), so
the last stable offset, needed by every fetch, costs O(open transactions), not
O(producers).

Persistence: ``<offset:020d>.snapshot`` files hold the whole state as of ``offset``
(taken at segment roll and clean close); loading reads the newest intact snapshot at
or below a bound (the log end offset, or the base of the first segment whose
aborted-txn index must be rebuilt) and replays the batches after it.

Expiration (``producer.id.expiration.ms``, Kafka's removeExpiredProducers): a producer
with no open transaction whose last batch timestamp is that old is forgotten; its next
batch is then treated as coming from an unknown producer.  The log cleaner in turn
stops keeping that producer's last batch.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from dataclasses import dataclass, field

from kbroker.log.errors import (
    DuplicateSequence,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from kbroker.wire.records import (
    ControlRecordType,
    CorruptRecordBatch,
    RecordBatchView,
    decode_records,
    parse_control_record,
)

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
SNAPSHOT_SUFFIX = ".snapshot"
# Snapshots kept on disk: the newest is normally enough; one more survives a torn write.
SNAPSHOTS_TO_KEEP = 2

_SNAP_HEADER = struct.Struct(">4sHIi")  # magic, version, crc32 of body, entry count
_SNAP_ENTRY_V1 = struct.Struct(">qhqqB")  # pid, epoch, txn first offset, last ts, nbatches
_SNAP_ENTRY = struct.Struct(">qhiqqB")  # v2: pid, epoch, coordinator epoch, then as v1
_SNAP_VERSION = 2
_SNAP_BATCH = struct.Struct(">iiqq")  # first seq, last seq, first offset, last offset
_SNAP_MAGIC = b"KBPS"


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int


@dataclass(slots=True)
class ProducerEntry:
    """Invariants: ``batches`` holds at most 5 batches of ``producer_epoch``, oldest
    first, with consecutive sequences; ``txn_first_offset`` is -1 with no open txn."""

    producer_id: int
    producer_epoch: int = -1
    batches: list[BatchMetadata] = field(default_factory=list)
    txn_first_offset: int = -1
    last_timestamp: int = -1
    coordinator_epoch: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    def copy(self) -> ProducerEntry:
        return ProducerEntry(
            self.producer_id,
            self.producer_epoch,
            list(self.batches),
            self.txn_first_offset,
            self.last_timestamp,
            self.coordinator_epoch,
        )

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.producer_epoch:
            self.producer_epoch = epoch
            self.batches.clear()


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction ended by a marker at ``last_offset`` (Kafka's CompletedTxn).
    ``first_offset`` is the marker's own offset if no transaction was open."""

    producer_id: int
    first_offset: int
    last_offset: int
    is_aborted: bool


def marker_of(view: RecordBatchView) -> tuple[ControlRecordType, int]:
    """``(type, coordinator_epoch)`` of a whole control batch; CorruptRecordBatch if it
    is not exactly one end-transaction marker."""
    records = decode_records(view)
    if len(records) != 1:
        raise CorruptRecordBatch(f"a control batch holds {len(records)} records, not 1")
    return parse_control_record(records[0])


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """The producers of one partition.  Not thread-safe (the partition's owner only)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.producers: dict[int, ProducerEntry] = {}
        # Invariant: exactly the producers whose txn_first_offset >= 0, mapped to it.
        self.ongoing: dict[int, int] = {}

    # -- append path ---------------------------------------------------------------
    def prepare(
        self,
        view: RecordBatchView,
        base_offset: int,
        pending: dict[int, ProducerEntry],
        *,
        check: bool,
        marker: tuple[ControlRecordType, int] | None = None,
    ) -> CompletedTxn | None:
        """Check one batch (if ``check``) and record its effect in ``pending``.

        ``pending`` collects updated copies of entries for one append; nothing in the
        manager changes until ``commit(pending)`` after the write succeeded.  For a
        control batch, ``marker`` is its (type, coordinator epoch) and the ended
        transaction is returned (None for data batches, or a marker of unknown type).
        """
        pid = view.producer_id
        if pid < 0:
            return None
        entry = pending.get(pid)
        if entry is None:
            current = self.producers.get(pid)
            entry = current.copy() if current is not None else ProducerEntry(pid)
        epoch = view.producer_epoch
        last_offset = base_offset + view.last_offset_delta
        if view.is_control:
            if check and epoch < entry.producer_epoch:
                raise InvalidProducerEpochError(
                    f"marker epoch {epoch} is older than producer {pid}'s epoch {entry.producer_epoch}"
                )
            if check and marker is not None and marker[1] < entry.coordinator_epoch:
                raise TransactionCoordinatorFencedError(
                    f"marker coordinator epoch {marker[1]} is older than"
                    f" {entry.coordinator_epoch} (producer {pid})"
                )
            first = entry.txn_first_offset if entry.txn_first_offset >= 0 else base_offset
            entry.set_epoch(epoch)
            entry.txn_first_offset = -1
            entry.last_timestamp = view.max_timestamp
            pending[pid] = entry
            if marker is None:
                return None
            entry.coordinator_epoch = marker[1]
            return CompletedTxn(pid, first, last_offset, marker[0] == ControlRecordType.ABORT)
        base_seq, last_seq = view.base_sequence, view.last_sequence
        if check:
            if epoch == entry.producer_epoch:
                for b in entry.batches:
                    if b.first_seq == base_seq and b.last_seq == last_seq:
                        raise DuplicateSequence(b.first_offset, b.last_offset)
            if epoch < entry.producer_epoch:
                raise InvalidProducerEpochError(
                    f"epoch {epoch} is older than producer {pid}'s epoch {entry.producer_epoch}"
                )
            if epoch != entry.producer_epoch:
                if base_seq != 0:
                    what = "new epoch" if entry.producer_epoch >= 0 else "unknown producer"
                    raise OutOfOrderSequenceError(
                        f"{what} {pid}/{epoch} must start at sequence 0, not {base_seq}"
                    )
            elif not _in_sequence(entry.last_seq, base_seq):
                raise OutOfOrderSequenceError(
                    f"producer {pid}: sequence {base_seq} does not follow {entry.last_seq}"
                )
            if not view.is_transactional and entry.txn_first_offset >= 0:
                raise InvalidTxnStateError(
                    f"producer {pid} sent a non-transactional batch inside a transaction"
                )
        entry.set_epoch(epoch)
        entry.batches.append(BatchMetadata(base_seq, last_seq, base_offset, last_offset))
        del entry.batches[:-NUM_BATCHES_TO_RETAIN]
        if view.is_transactional and entry.txn_first_offset < 0:
            entry.txn_first_offset = base_offset
        entry.last_timestamp = view.max_timestamp
        pending[pid] = entry
        return None

    def commit(self, pending: dict[int, ProducerEntry]) -> None:
        self.producers.update(pending)
        ongoing = self.ongoing
        for pid, entry in pending.items():
            if entry.txn_first_offset >= 0:
                ongoing[pid] = entry.txn_first_offset
            else:
                ongoing.pop(pid, None)

    def remove_expired_producers(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle for ``expiration_ms`` with no open transaction; returns
        how many went."""
        expired = [
            pid
            for pid, e in self.producers.items()
            if e.txn_first_offset < 0 and now_ms - e.last_timestamp >= expiration_ms
        ]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    def first_unstable_offset(self) -> int | None:
        """The smallest first offset of an ongoing transaction (None if there is none)."""
        return min(self.ongoing.values()) if self.ongoing else None

    def last_stable_offset_after(
        self, completed: CompletedTxn, pending: dict[int, ProducerEntry]
    ) -> int:
        """The LSO right after ``completed``'s marker (Kafka's
        ``ProducerStateManager.lastStableOffset(completedTxn)``): the first offset of
        the earliest other ongoing transaction, counting ``pending`` updates, else
        one past the marker."""
        firsts = [
            first
            for pid, first in self.ongoing.items()
            if pid != completed.producer_id and pid not in pending
        ]
        firsts += [
            e.txn_first_offset
            for pid, e in pending.items()
            if pid != completed.producer_id and e.txn_first_offset >= 0
        ]
        return min(firsts) if firsts else completed.last_offset + 1

    # -- snapshots -----------------------------------------------------------------
    def snapshot_path(self, offset: int) -> str:
        return os.path.join(self.directory, f"{offset:020d}{SNAPSHOT_SUFFIX}")

    def snapshot_offsets(self) -> list[int]:
        offsets = []
        for name in os.listdir(self.directory):
            if name.endswith(SNAPSHOT_SUFFIX) and name[: -len(SNAPSHOT_SUFFIX)].isdigit():
                offsets.append(int(name[: -len(SNAPSHOT_SUFFIX)]))
        return sorted(offsets)

    def take_snapshot(self, offset: int, keep: int | None = None, *, fsync: bool = True) -> None:
        """Persist the state as of ``offset`` (tmp file, fsync unless told not to, rename).  Older
        snapshots go, except the newest few and the one at ``keep`` (the active
        segment's base: recovery of that segment replays from it)."""
        body = bytearray()
        for e in self.producers.values():
            body += _SNAP_ENTRY.pack(
                e.producer_id,
                e.producer_epoch,
                e.coordinator_epoch,
                e.txn_first_offset,
                e.last_timestamp,
                len(e.batches),
            )
            for b in e.batches:
                body += _SNAP_BATCH.pack(b.first_seq, b.last_seq, b.first_offset, b.last_offset)
        header = _SNAP_HEADER.pack(
            _SNAP_MAGIC, _SNAP_VERSION, zlib.crc32(body), len(self.producers)
        )
        path = self.snapshot_path(offset)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(header + body)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        for old in self.snapshot_offsets()[:-SNAPSHOTS_TO_KEEP]:
            if old != keep:
                self._delete_snapshot(old)

    def _delete_snapshot(self, offset: int) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.snapshot_path(offset))

    def _read_snapshot(self, offset: int) -> dict[int, ProducerEntry] | None:
        try:
            with open(self.snapshot_path(offset), "rb") as f:
                data = f.read()
            magic, version, crc, count = _SNAP_HEADER.unpack_from(data, 0)
            body = memoryview(data)[_SNAP_HEADER.size :]
            if magic != _SNAP_MAGIC or version not in (1, 2) or zlib.crc32(body) != crc:
                return None
            layout = _SNAP_ENTRY if version == 2 else _SNAP_ENTRY_V1
            producers: dict[int, ProducerEntry] = {}
            pos = 0
            for _ in range(count):
                if version == 2:
                    pid, epoch, coordinator_epoch, txn, last_ts, n = layout.unpack_from(body, pos)
                else:
                    pid, epoch, txn, last_ts, n = layout.unpack_from(body, pos)
                    coordinator_epoch = -1
                pos += layout.size
                batches = []
                for _ in range(n):
                    batches.append(BatchMetadata(*_SNAP_BATCH.unpack_from(body, pos)))
                    pos += _SNAP_BATCH.size
                producers[pid] = ProducerEntry(pid, epoch, batches, txn, last_ts, coordinator_epoch)
            return producers if pos == len(body) else None
        except (OSError, struct.error):
            return None

    def load(self, log_end_offset: int, at_most: int | None = None) -> int:
        """Load the newest intact snapshot at or below ``at_most`` (default: the log
        end offset); delete snapshots past the log end and broken ones.  Returns the
        offset replay must start from (-1: no snapshot)."""
        self.producers = {}
        self.ongoing = {}
        bound = log_end_offset if at_most is None else min(at_most, log_end_offset)
        for offset in reversed(self.snapshot_offsets()):
            if offset > log_end_offset:
                self._delete_snapshot(offset)
                continue
            if offset > bound:
                continue
            state = self._read_snapshot(offset)
            if state is None:
                self._delete_snapshot(offset)
                continue
            self.producers = state
            self.ongoing = {
                pid: e.txn_first_offset for pid, e in state.items() if e.txn_first_offset >= 0
            }
            return offset
        return -1

    def replay(self, view: RecordBatchView) -> CompletedTxn | None:
        """Apply a whole batch read back from the log (no checks); returns the
        transaction a marker ended."""
        marker = None
        if view.is_control:
            try:
                marker = marker_of(view)
            except CorruptRecordBatch:
                marker = None  # cannot happen for appended markers; ends the txn unindexed
        pending: dict[int, ProducerEntry] = {}
        completed = self.prepare(view, view.base_offset, pending, check=False, marker=marker)
        self.commit(pending)
        return completed
