"""Reading and writing for the log cleaner: the key scan, the throttle, the cleaned segment.

Split from ``log.cleaner`` (which holds the algorithm): these are its I/O-shaped parts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NamedTuple

from kbroker.log.config import LogConfig
from kbroker.log.index import OffsetIndex, TimeIndex
from kbroker.log.segment import INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, segment_file_name
from kbroker.log.swap import CLEANED_SUFFIX, discard_cleaned
from kbroker.log.txn_index import TXN_INDEX_SUFFIX, TransactionIndex
from kbroker.wire._records_varint import read_varint  # the records codec's own varint reader
from kbroker.wire.compression import decompress
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import BATCH_HEADER_SIZE, CorruptRecordBatch, RecordBatchView

_OFFSET_INDEX_ENTRY_BYTES = 8


class RecordKey(NamedTuple):
    """What the cleaner needs to judge a record: its offset delta, key, and whether it
    has a value (a tombstone has none)."""

    offset_delta: int
    key: bytes | None
    has_value: bool


def scan_record_keys(view: RecordBatchView) -> list[RecordKey]:
    """The keys of a data batch's records without building the records: per record
    four varints are read and the rest skipped (``decode_records`` reads every field).
    CorruptRecordBatch on a malformed batch."""
    try:
        data = decompress(view.compression, view.buffer()[BATCH_HEADER_SIZE:])
    except DecodeError as exc:
        raise CorruptRecordBatch(str(exc)) from exc
    varint = read_varint
    out: list[RecordKey] = []
    append = out.append
    pos = 0
    try:
        # Varints of one byte (most lengths and deltas) are decoded inline.
        for _ in range(view.record_count):
            b = data[pos]
            if b < 0x80:
                length, pos = (b >> 1) ^ -(b & 1), pos + 1
            else:
                length, pos = varint(data, pos)
            end = pos + length
            p = pos + 1  # attributes (1 byte), then the timestamp delta
            b = data[p]
            p = p + 1 if b < 0x80 else varint(data, p)[1]
            b = data[p]
            if b < 0x80:
                offset_delta, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                offset_delta, p = varint(data, p)
            b = data[p]
            if b < 0x80:
                key_length, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                key_length, p = varint(data, p)
            if key_length >= 0:
                key: bytes | None = data[p : p + key_length]
                p += key_length
            else:
                key = None
            b = data[p]
            if b < 0x80:
                value_length, p = (b >> 1) ^ -(b & 1), p + 1
            else:
                value_length, p = varint(data, p)
            if p > end:
                raise CorruptRecordBatch("record fields run past the record")
            append(RecordKey(offset_delta, key, value_length >= 0))
            pos = end
    except (IndexError, DecodeError) as exc:
        raise CorruptRecordBatch(f"record runs past the end of the batch: {exc}") from None
    if pos != len(data):
        raise CorruptRecordBatch(f"{len(data) - pos} bytes left after the records")
    return out


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


class CleanedSegmentWriter:
    """``<base>.log.cleaned`` and its indexes, written in offset order."""

    def __init__(self, directory: str, base_offset: int, config: LogConfig) -> None:
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
        self.size_bytes = 0
        self.max_timestamp = -1
        self._offset_of_max_timestamp = -1
        self._since_index = 0

    def append(
        self, data: bytes | bytearray | memoryview, base_offset: int, max_timestamp: int
    ) -> None:
        position = self.size_bytes
        view = memoryview(data)
        while view:
            done = os.pwrite(self._fd, view, self.size_bytes)
            view = view[done:]
            self.size_bytes += done
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self._offset_of_max_timestamp = base_offset
        if self._since_index >= self._interval and position > 0 and not self.index.is_full:
            self.index.append(base_offset, position)
            self.time_index.append(self.max_timestamp, self._offset_of_max_timestamp)
            self._since_index = 0
        self._since_index += len(data)

    def finish(self) -> None:
        """Final time-index entry, then everything fsynced (phase ``cleaned``)."""
        if (
            self.max_timestamp >= 0
            and (not self.time_index.keys or self.time_index.keys[-1] < self.max_timestamp)
            and not self.time_index.is_full
        ):
            self.time_index.append(self.max_timestamp, self._offset_of_max_timestamp)
        try:
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
