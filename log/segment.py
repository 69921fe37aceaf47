"""One segment: a ``.log`` file of record batches plus its two sparse indexes."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from kbroker.log.errors import LogFsyncError, LogStorageError
from kbroker.log.file_cache import FileCache
from kbroker.log.index import IndexCorruptError, OffsetIndex, TimeIndex
from kbroker.log.txn_index import TXN_INDEX_SUFFIX, TransactionIndex
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    CorruptRecordBatch,
    RecordBatchView,
    TimestampType,
    decode_records,
    iter_batches,
)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"

# Recovery and scans read the file in chunks of this size (a batch larger than the
# chunk is read whole): large enough to amortise syscalls, small enough to bound memory.
SCAN_CHUNK_BYTES = 4 * 1024 * 1024
# pwritev's limit on buffers per call (POSIX guarantees >= 16; Linux has 1024).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


def _write_pieces(
    fd: int, pieces: list[bytes | bytearray | memoryview], size: int, position: int
) -> None:
    """Write ``pieces`` (``size`` bytes in all) at ``position``; OSError on failure.

    The slow path of ``Segment.append`` (whose single ``pwritev`` covers the usual
    case): one ``pwritev`` per IOV_MAX buffers, and a short write -- rare: a signal,
    a full disk -- finished piece by piece.  Rewriting bytes that already landed is
    harmless: they are the same bytes at the same place.
    """
    for i in range(0, len(pieces), _IOV_MAX):
        chunk = pieces[i : i + _IOV_MAX]
        chunk_size = sum(map(len, chunk))
        written = os.pwritev(fd, chunk, position)
        if written != chunk_size:
            _write_rest(fd, chunk, written, position)
        position += chunk_size


def _write_rest(
    fd: int, pieces: list[bytes | bytearray | memoryview], written: int, position: int
) -> None:
    """Finish a short write: ``written`` bytes of ``pieces`` are already at ``position``."""
    for piece in pieces:
        n = len(piece)
        if written >= n:
            written -= n
            position += n
            continue
        position = pwrite_all(fd, memoryview(piece)[written:], position + written)
        written = 0


def pwrite_all(fd: int, data: bytes | bytearray | memoryview, position: int) -> int:
    """Write all of ``data`` at ``position``, retrying short writes; return the position
    just past it.  OSError on failure (ENOSPC if a write makes no progress)."""
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, position)
        if done <= 0:
            raise OSError(errno.ENOSPC, "write made no progress")
        view = view[done:]
        position += done
    return position


def iter_file_batches(
    fd: int, start: int, end: int, chunk_bytes: int = SCAN_CHUNK_BYTES
) -> Iterator[tuple[int, RecordBatchView]]:
    """Yield (file position, view) of every whole batch in [start, end) of ``fd``, read
    ``chunk_bytes`` at a time (a larger batch is read whole).

    Stops at a partial trailing batch; raises CorruptRecordBatch on an impossible
    header.  A view is only valid until the next iteration step.
    """
    pos = start
    while pos < end:
        want = min(chunk_bytes, end - pos)
        chunk = os.pread(fd, want, pos)
        if not chunk:
            return
        consumed = 0
        for view in iter_batches(chunk):
            yield pos + consumed, view
            consumed += view.size_bytes
        if consumed == 0:
            # The next batch is larger than a chunk, or truncated: read it whole.
            if len(chunk) < 12:
                return
            size = int.from_bytes(chunk[8:12], "big", signed=True) + 12
            if size <= len(chunk) or pos + size > end:
                # impossible length is reported by iter_batches; a short tail just ends
                for view in iter_batches(chunk):  # pragma: no cover - raises or returns
                    yield pos, view
                return
            whole = os.pread(fd, size, pos)
            for view in iter_batches(whole):
                yield pos, view
                consumed = view.size_bytes
            if consumed == 0:
                return
        pos += consumed


def record_timestamps(view: RecordBatchView, min_offset: int = 0) -> Iterator[tuple[int, int]]:
    """(offset, timestamp) of the records of a batch from ``min_offset`` on, lazily.

    With LogAppendTime every record has the batch's timestamp, so no record is decoded:
    the offsets are generated from ``min_offset`` (a batch's last offset delta may be up
    to 2**31 - 1; the callers stop at the first match instead of listing them all).
    CreateTime batches are decoded (and decompressed)."""
    if view.timestamp_type == TimestampType.LOG_APPEND_TIME:
        ts = view.max_timestamp
        first = max(view.base_offset, min_offset)
        return ((offset, ts) for offset in range(first, view.last_offset + 1))
    base_ts = view.base_timestamp
    return (
        (view.base_offset + r.offset_delta, base_ts + r.timestamp_delta)
        for r in decode_records(view)
        if view.base_offset + r.offset_delta >= min_offset
    )


class Segment:
    """A ``<base_offset:020d>.log`` file with its ``.index``, ``.timeindex`` and
    ``.txnindex`` (aborted transactions whose ABORT marker is in this segment).

    Invariants (as in Kafka's LogSegment):

    * ``base_offset`` <= the base offset of every batch in the file, and every offset
      in the file is < the ``base_offset`` of the next segment;
    * the file holds ``size_bytes`` of whole, CRC-valid batches with increasing
      offsets; bytes past ``size_bytes`` (a failed append) are never read;
    * ``next_offset`` is one past the last offset in the file (``base_offset`` if
      empty); ``max_timestamp`` / ``offset_of_max_timestamp`` describe the batch with
      the largest ``max_timestamp`` (-1 when none);
    * every index entry points at the start of a batch of this file.

    The ``.log`` descriptor: with a ``files`` cache (``log.file_cache``) the file is
    opened on demand and may be closed by the cache at any time the segment is not
    pinned, so ``fd`` must be read afresh for every system call (never kept across
    code that may open another segment); without one the segment keeps its own
    descriptor from construction to ``close()``.

    Not thread-safe: one owner appends and reads.  ``flush()`` may run on another
    thread while no append or truncation is in progress, and only for a segment
    without a cache.
    """

    def __init__(
        self,
        directory: str,
        base_offset: int,
        index_interval_bytes: int,
        max_index_entries: int,
        now_ms: int,
        files: FileCache | None = None,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.log_path = os.path.join(directory, segment_file_name(base_offset, LOG_SUFFIX))
        self.index = OffsetIndex(
            os.path.join(directory, segment_file_name(base_offset, INDEX_SUFFIX)),
            base_offset,
            max_index_entries,
        )
        self.time_index = TimeIndex(
            os.path.join(directory, segment_file_name(base_offset, TIME_INDEX_SUFFIX)),
            base_offset,
            max_index_entries,
        )
        self.txn_index = TransactionIndex(
            os.path.join(directory, segment_file_name(base_offset, TXN_INDEX_SUFFIX))
        )
        self.index_interval_bytes = index_interval_bytes
        self._files = files
        self._fd = -1
        self._pins = 0
        self._used = False
        try:
            if files is None:
                self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
            else:
                files.open(self, self.log_path, os.O_RDWR | os.O_CREAT)
            self.size_bytes = os.fstat(self._fd).st_size
        except OSError as exc:
            raise LogStorageError(f"cannot open {self.log_path}: {exc}") from exc
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.rolling_base_ms = now_ms
        self._bytes_since_index_entry = 0
        self.is_dirty = self.size_bytes == 0  # a new segment's index files get created at flush
        self._log_synced = False  # the .log file is fsynced up to size_bytes
        if self.is_dirty:  # ... whole, even when only written (flush(fsync=False))
            self.index.reset()
            self.time_index.reset()

    # -- the descriptor ----------------------------------------------------------------
    @property
    def fd(self) -> int:
        """The open ``.log`` descriptor (reopened if the cache had closed it)."""
        fd = self._fd
        if fd >= 0:
            self._used = True  # for the cache's eviction (log.file_cache); harmless without one
            return fd
        files = self._files
        if files is None:
            return fd
        try:
            return files.open(self, self.log_path, os.O_RDWR)
        except OSError as exc:
            raise LogStorageError(f"cannot reopen {self.log_path}: {exc}") from exc

    def pin(self) -> None:
        """Open the file and keep it open (under its current name, even if renamed)
        until the matching ``unpin``."""
        _ = self.fd
        self._pins += 1

    def unpin(self) -> None:
        self._pins -= 1

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """Keep the file open for the ``with`` body (see ``pin``)."""
        self.pin()
        try:
            yield
        finally:
            self.unpin()

    def adopt(self, files: FileCache) -> None:
        """Hand this segment's private descriptor to ``files`` (owner thread only)."""
        if self._files is None:
            self._files = files
            files.adopt(self)

    # -- loading -------------------------------------------------------------------
    def load_trusted(self, next_offset_hint: int | None) -> None:
        """Load indexes of a cleanly written segment; IndexCorruptError if they are bad.

        ``next_offset_hint`` is the next segment's base offset (None for the last
        segment, whose end is found by scanning headers from the last index entry).
        """
        self.index.load()
        self.time_index.load()
        if next_offset_hint is None or self.index.is_full:
            _, position = self.index.lookup(1 << 62)
            next_offset = self.base_offset
            end = position
            try:
                for pos, view in iter_file_batches(self.fd, position, self.size_bytes):
                    next_offset = view.next_offset
                    end = pos + view.size_bytes
                    self._note_batch(view.base_offset, view.max_timestamp, add_to_index=False)
            except CorruptRecordBatch as exc:
                # an impossible header after the last index entry: not trustworthy after
                # all, so the caller rescans (and truncates) this segment
                raise IndexCorruptError(f"{self.log_path}: unreadable batch: {exc}") from exc
            if end != self.size_bytes and self.size_bytes > 0:
                raise IndexCorruptError(f"{self.log_path} ends with a partial batch")
            self.next_offset = next_offset
        else:
            self.next_offset = next_offset_hint
        self.index.check_against(self.size_bytes, self.next_offset)
        self.time_index.check_against(self.next_offset)
        self.txn_index.load(self.base_offset, self.next_offset)  # else needs_rebuild
        if self.time_index.keys and self.time_index.keys[-1] > self.max_timestamp:
            self.max_timestamp = self.time_index.keys[-1]
            self.offset_of_max_timestamp = self.time_index.values[-1]
        self._first_timestamp_as_rolling_base()

    def recover(self, max_batch_bytes: int) -> int:
        """Rebuild both indexes by scanning the file; truncate at the first bad batch.

        A batch is bad if its header is impossible, it is torn, its CRC-32C fails, its
        offsets go backwards or below ``base_offset``, or it exceeds
        ``max_batch_bytes``.  Returns the number of bytes truncated.
        """
        self.index.reset()
        self.time_index.reset()
        self.txn_index.reset()
        self.next_offset = self.base_offset
        self.max_timestamp = self.offset_of_max_timestamp = -1
        self._bytes_since_index_entry = 0
        valid_end = 0
        try:
            for pos, view in iter_file_batches(self.fd, 0, self.size_bytes):
                if (
                    view.size_bytes > max_batch_bytes
                    or not view.is_valid()
                    or view.base_offset < self.next_offset
                    or view.last_offset_delta < 0
                    or view.last_offset - self.base_offset > 0x7FFFFFFF
                ):
                    break
                self._note_batch(
                    view.base_offset,
                    view.max_timestamp,
                    add_to_index=True,
                    position=pos,
                    size=view.size_bytes,
                )
                self.next_offset = view.next_offset
                valid_end = pos + view.size_bytes
        except CorruptRecordBatch:
            pass
        truncated = self.size_bytes - valid_end
        if truncated:
            self._truncate_file(valid_end)
        self._first_timestamp_as_rolling_base()
        self.is_dirty = True
        return truncated

    def _first_timestamp_as_rolling_base(self) -> None:
        if self.size_bytes >= BATCH_HEADER_SIZE:
            try:
                view = RecordBatchView(os.pread(self.fd, BATCH_HEADER_SIZE, 0))
            except CorruptRecordBatch:
                return  # a damaged trusted segment: keep the load time as the base
            if view.max_timestamp >= 0:
                self.rolling_base_ms = view.max_timestamp

    # -- appending -----------------------------------------------------------------
    def _note_batch(
        self,
        base_offset: int,
        max_timestamp: int,
        *,
        add_to_index: bool,
        position: int = 0,
        size: int = 0,
    ) -> None:
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self.offset_of_max_timestamp = base_offset
        if add_to_index:
            if self._bytes_since_index_entry >= self.index_interval_bytes and position > 0:
                self.index.append(base_offset, position)
                self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp)
                self._bytes_since_index_entry = 0
            self._bytes_since_index_entry += size

    def append(
        self,
        pieces: list[bytes | bytearray | memoryview],
        size: int,
        batches: list[tuple[int, int, int, int]],
        next_offset: int,
    ) -> None:
        """Write ``pieces`` (``size`` bytes of whole batches) at the end of the file.

        ``batches`` holds (base offset, max timestamp, position relative to the
        first piece, size) per batch, for the indexes; ``next_offset`` is one past
        the last offset written.  One ``pwritev`` normally; on any OSError the file
        is cut back to its old size and LogStorageError raised, leaving the segment
        unchanged.
        """
        start = self.size_bytes
        try:
            if len(pieces) > _IOV_MAX or os.pwritev(self.fd, pieces, start) != size:
                _write_pieces(self.fd, pieces, size, start)
        except OSError as exc:
            try:
                os.ftruncate(self.fd, start)
            except OSError as exc2:
                raise LogStorageError(
                    f"append to {self.log_path} failed ({exc}) and so did the rollback ({exc2})"
                ) from exc
            raise LogStorageError(f"append to {self.log_path} failed: {exc}") from exc
        self.size_bytes = start + size
        # Index upkeep (_note_batch inlined: this runs once per appended batch).
        interval = self.index_interval_bytes
        for base_offset, max_timestamp, position, batch_size in batches:
            if max_timestamp > self.max_timestamp:
                self.max_timestamp = max_timestamp
                self.offset_of_max_timestamp = base_offset
            if self._bytes_since_index_entry >= interval and start + position > 0:
                self.index.append(base_offset, start + position)
                self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp)
                self._bytes_since_index_entry = 0
            self._bytes_since_index_entry += batch_size
        self.next_offset = next_offset
        self.is_dirty = True
        self._log_synced = False

    # -- reading -------------------------------------------------------------------
    def read(self, position: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` raw bytes from ``position`` (never past ``size_bytes``)."""
        n = min(max_bytes, self.size_bytes - position)
        if n <= 0:
            return b""
        try:
            return os.pread(self.fd, n, position)
        except OSError as exc:
            raise LogStorageError(f"read from {self.log_path} failed: {exc}") from exc

    def find_batch(self, offset: int) -> tuple[int, RecordBatchView] | None:
        """(position, header view) of the batch holding ``offset``, or the first batch
        after it; None if ``offset`` >= ``next_offset``."""
        if offset >= self.next_offset:
            return None
        _, position = self.index.lookup(offset)
        while position < self.size_bytes:
            header = os.pread(self.fd, BATCH_HEADER_SIZE, position)
            view = RecordBatchView(header)
            if view.last_offset >= offset:
                return position, view
            position += view.size_bytes
        return None

    def batches_from(self, position: int) -> Iterator[tuple[int, RecordBatchView]]:
        with self.pinned():
            yield from iter_file_batches(self.fd, position, self.size_bytes)

    def find_offset_by_timestamp(
        self, timestamp_ms: int, min_offset: int
    ) -> tuple[int, int] | None:
        """(timestamp, offset) of the first record at or after ``timestamp_ms`` whose
        offset is >= ``min_offset``; None if this segment has none."""
        if self.max_timestamp < timestamp_ms:
            return None
        start = self.time_index.lookup_below(timestamp_ms)
        start_offset = max(start if start is not None else self.base_offset, min_offset)
        found = self.find_batch(start_offset)
        if found is None:
            return None
        for _, view in self.batches_from(found[0]):
            if view.last_offset < min_offset or view.max_timestamp < timestamp_ms:
                continue
            for offset, ts in record_timestamps(view, min_offset):
                if ts >= timestamp_ms:
                    return ts, offset
        return None

    # -- durability and lifecycle ----------------------------------------------------
    def sync_log(self) -> None:
        """fsync the ``.log`` file alone: the durability point of an append.
        LogFsyncError if it fails."""
        if self._log_synced:
            return
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise LogFsyncError(f"fsync of {self.log_path} failed: {exc}") from exc
        self._log_synced = True

    def flush(self, fsync: bool = True) -> None:
        """fsync the log and write + fsync pending index entries (``fsync`` False: only
        write them, for a caller that syncs the whole file system next).

        LogFsyncError if the log's fsync fails; LogStorageError if an index write
        fails (the segment stays dirty and the next flush tries again: indexes are
        derived data that recovery rebuilds)."""
        if not self.is_dirty:
            return
        if fsync:
            self.sync_log()
        try:
            self.index.flush(fsync=fsync)
            self.time_index.flush(fsync=fsync)
            self.txn_index.flush(fsync=fsync)
        except OSError as exc:
            raise LogStorageError(f"index flush of {self.log_path} failed: {exc}") from exc
        self.is_dirty = False

    def mark(self) -> tuple[int, int, int, int, int, int, int]:
        """The in-memory state an append changes, for :meth:`rollback`."""
        return (
            self.size_bytes,
            self.next_offset,
            self.max_timestamp,
            self.offset_of_max_timestamp,
            self._bytes_since_index_entry,
            len(self.index.keys),
            len(self.time_index.keys),
        )

    def rollback(self, mark: tuple[int, int, int, int, int, int, int]) -> None:
        """Undo the appends made since ``mark()``: the file is cut back and the
        offsets and index entries restored (LogStorageError if the cut fails)."""
        size, next_offset, max_ts, offset_of_max_ts, since_entry, n_index, n_time = mark
        self._truncate_file(size)
        self.next_offset = next_offset
        self.max_timestamp = max_ts
        self.offset_of_max_timestamp = offset_of_max_ts
        self._bytes_since_index_entry = since_entry
        self.index.truncate_entries(n_index)
        self.time_index.truncate_entries(n_time)
        self.is_dirty = True

    def on_become_inactive(self) -> None:
        """Called at roll and close: record the final max timestamp in the time index."""
        if self.max_timestamp >= 0:
            entries = len(self.time_index)
            self.time_index.append(self.max_timestamp, self.offset_of_max_timestamp)
            if len(self.time_index) != entries:  # (already there: nothing to write)
                self.is_dirty = True

    def truncate_to(self, offset: int) -> None:
        """Keep only the batches that end before ``offset``; a batch straddling
        ``offset`` is removed whole (as Kafka does).  Indexes are rebuilt."""
        found = self.find_batch(offset)
        if found is None:
            return
        self._truncate_file(found[0])
        self.recover(1 << 62)

    def _truncate_file(self, size: int) -> None:
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise LogStorageError(f"truncate of {self.log_path} failed: {exc}") from exc
        self.size_bytes = size
        self._log_synced = False

    def close(self) -> None:
        if self._files is not None:
            self._files.close(self)
        elif self._fd >= 0:
            os.close(self._fd)
        self._fd = -1

    def rename_for_deletion(self) -> list[str]:
        """Rename the files to ``*.deleted`` (log first: an index alone is an orphan that
        the loader removes).  Returns the new paths."""
        renamed = []
        for path in (self.log_path, self.index.path, self.time_index.path, self.txn_index.path):
            target = path + DELETED_SUFFIX
            try:
                os.replace(path, target)
                renamed.append(target)
            except FileNotFoundError:
                pass
        return renamed
