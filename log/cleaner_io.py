"""Reading and writing for the log cleaner: the throttle and the cleaned segment.

Split from ``log.cleaner`` (which holds the algorithm): these are its I/O-shaped parts.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable

from kbroker.log.config import LogConfig
from kbroker.log.index import OffsetIndex, TimeIndex
from kbroker.log.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    pwrite_all,
    segment_file_name,
)
from kbroker.log.swap import CLEANED_SUFFIX, discard_cleaned
from kbroker.log.txn_index import TXN_INDEX_SUFFIX, TransactionIndex

_OFFSET_INDEX_ENTRY_BYTES = 8


class Throttler:
    """Sleeps to keep a byte rate (``log.cleaner.io.max.bytes.per.second``), measured
    over windows of ``WINDOW_MS`` like Kafka's Throttler.  ``clock`` returns seconds."""

    WINDOW_S = 0.3

    def __init__(
        self,
        bytes_per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bytes_per_second = bytes_per_second
        self._clock = clock
        self._sleep = sleep
        self._window_start = clock()
        self._window_bytes = 0

    def maybe_throttle(self, n_bytes: int) -> None:
        if self.bytes_per_second <= 0 or self.bytes_per_second == float("inf"):
            return
        self._window_bytes += n_bytes
        now = self._clock()
        elapsed = now - self._window_start
        if elapsed < self.WINDOW_S:
            return
        wanted = self._window_bytes / self.bytes_per_second
        if wanted > elapsed:
            self._sleep(wanted - elapsed)
            now = self._clock()
        self._window_start = now
        self._window_bytes = 0


# The largest single copy_file_range request (the kernel caps one call near 2 GiB).
_COPY_CHUNK_BYTES = 1 << 30
# The buffer of the user-space fallback (large enough for few syscalls, small enough
# for a worker's memory).
_COPY_FALLBACK_CHUNK_BYTES = 4 << 20


def copy_range(src_fd: int, dst_fd: int, n_bytes: int) -> None:
    """Copy the first ``n_bytes`` of ``src_fd`` to the start of ``dst_fd`` in the kernel
    (``copy_file_range``), or through user space where that is not supported."""
    done = 0
    try:
        while done < n_bytes:
            n = os.copy_file_range(
                src_fd, dst_fd, min(_COPY_CHUNK_BYTES, n_bytes - done), done, done
            )
            if n <= 0:
                break
            done += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while done < n_bytes:
        chunk = os.pread(src_fd, min(_COPY_FALLBACK_CHUNK_BYTES, n_bytes - done), done)
        if not chunk:
            raise OSError(errno.EIO, "source segment shorter than its copied prefix")
        done = pwrite_all(dst_fd, chunk, done)


class CleanedSegmentWriter:
    """``<base>.log.cleaned`` and its indexes, written in offset order; the log's bytes
    go out ``write_buffer_bytes`` at a time (Kafka's cleaner write buffer)."""

    def __init__(
        self,
        directory: str,
        base_offset: int,
        config: LogConfig,
        write_buffer_bytes: int = 256 * 1024,
        source_path: str | None = None,
    ) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self.log_path = os.path.join(
            directory, segment_file_name(base_offset, LOG_SUFFIX) + CLEANED_SUFFIX
        )
        max_entries = max(1, config.segment_index_bytes // _OFFSET_INDEX_ENTRY_BYTES)
        self.index = OffsetIndex(
            os.path.join(directory, segment_file_name(base_offset, INDEX_SUFFIX) + CLEANED_SUFFIX),
            base_offset,
            max_entries,
        )
        self.time_index = TimeIndex(
            os.path.join(
                directory, segment_file_name(base_offset, TIME_INDEX_SUFFIX) + CLEANED_SUFFIX
            ),
            base_offset,
            max_entries,
        )
        self.txn_index = TransactionIndex(
            os.path.join(
                directory, segment_file_name(base_offset, TXN_INDEX_SUFFIX) + CLEANED_SUFFIX
            )
        )
        self.index.reset()
        self.time_index.reset()
        self.txn_index.reset()
        self._interval = config.index_interval_bytes
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        self._write_buffer_bytes = write_buffer_bytes
        self._pending = bytearray()
        self._written = 0
        self.size_bytes = 0
        self.max_timestamp = -1
        self._offset_of_max_timestamp = -1
        self._since_index = 0
        # The identical-prefix state (``source_path`` given: a group of one segment):
        # while every batch appended is ``source_path``'s own at the same position
        # (:meth:`append_unchanged`), nothing is written; the first changed batch copies
        # that prefix over in the kernel (:meth:`_materialize`).  A segment that stays
        # identical to the end is never written (:attr:`unchanged`).
        self._source_path = source_path
        self.unchanged = source_path is not None

    def append_unchanged(
        self, data: bytes | bytearray | memoryview, base_offset: int, max_timestamp: int
    ) -> None:
        """Append ``data``, which is the source segment's batch at this very position."""
        if self.unchanged:
            self._account(len(data), base_offset, max_timestamp)
        else:
            self.append(data, base_offset, max_timestamp)

    def skip(self) -> None:
        """A batch of the source segment is left out: it no longer stays identical."""
        if self.unchanged:
            self._materialize()

    def _materialize(self) -> None:
        """Leave the identical-prefix state: copy the prefix from the source segment."""
        self.unchanged = False
        assert self._source_path is not None
        src = os.open(self._source_path, os.O_RDONLY)
        try:
            copy_range(src, self._fd, self.size_bytes)
        finally:
            os.close(src)
        self._written = self.size_bytes

    def append(
        self, data: bytes | bytearray | memoryview, base_offset: int, max_timestamp: int
    ) -> None:
        if self.unchanged:
            self._materialize()
        if len(self._pending) + len(data) > self._write_buffer_bytes:
            self._write_pending()
        if len(data) >= self._write_buffer_bytes:
            self._write(data)
        else:
            self._pending += data
        self._account(len(data), base_offset, max_timestamp)

    def _account(self, n_bytes: int, base_offset: int, max_timestamp: int) -> None:
        """Size, largest timestamp and index entries of a batch of ``n_bytes`` appended."""
        position = self.size_bytes
        self.size_bytes += n_bytes
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self._offset_of_max_timestamp = base_offset
        if self._since_index >= self._interval and position > 0 and not self.index.is_full:
            self.index.append(base_offset, position)
            self.time_index.append(self.max_timestamp, self._offset_of_max_timestamp)
            self._since_index = 0
        self._since_index += n_bytes

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            done = os.pwrite(self._fd, view, self._written)
            if done <= 0:
                raise OSError(errno.ENOSPC, "write made no progress")
            view = view[done:]
            self._written += done

    def _write_pending(self) -> None:
        if self._pending:
            self._write(self._pending)
            self._pending.clear()

    def finish(self) -> None:
        """Final time-index entry, then everything fsynced (phase ``cleaned``).  A
        segment still :attr:`unchanged` is abandoned instead: nothing to swap."""
        if self.unchanged:
            self.abandon()
            return
        if (
            self.max_timestamp >= 0
            and (not self.time_index.keys or self.time_index.keys[-1] < self.max_timestamp)
            and not self.time_index.is_full
        ):
            self.time_index.append(self.max_timestamp, self._offset_of_max_timestamp)
        try:
            self._write_pending()
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
            self._fd = -1
        self.index.flush(fsync=True)
        self.time_index.flush(fsync=True)
        self.txn_index.flush(fsync=True)

    def abandon(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        discard_cleaned(self.directory, self.base_offset)
