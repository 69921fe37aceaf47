"""The read side of a partition log: Fetch slices and ListOffsets lookups.

Split from ``log.partition_log`` (which owns appends, rolling, deletion and the
segment list): these functions only read a :class:`~log.partition_log.PartitionLog`'s
segments and offsets, and :class:`PartitionLog` calls them for its ``read`` and
``offset_for_timestamp``.
"""

from __future__ import annotations

import bisect
import struct
from typing import TYPE_CHECKING

from kbroker.log.errors import CorruptBatchError, OffsetOutOfRangeError
from kbroker.log.results import FetchSlice, TimestampAndOffset
from kbroker.log.segment import Segment, record_timestamps
from kbroker.wire.records import MIN_BATCH_LENGTH, CorruptRecordBatch

if TYPE_CHECKING:
    from kbroker.log.partition_log import PartitionLog

# ListOffsets special timestamps (Kafka's ListOffsetsRequest constants).
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5

_BASE_AND_LENGTH = struct.Struct(">qi")
_LAST_OFFSET_DELTA = struct.Struct(">i")
_LAST_OFFSET_DELTA_POS = 23


def read_slice(
log: PartitionLog,
offset: int,
    max_bytes: int,
    *,
    max_offset: int | None = None,
    min_one_batch: bool = True,
) -> FetchSlice:
    """Whole batches from the one holding ``offset``, up to ``max_bytes``.

    Batches whose base offset is >= ``max_offset`` (default: the high watermark;
    pass the LSO for read_committed) are left out.  With ``min_one_batch`` the
    first batch is returned whole even if larger than ``max_bytes`` (Kafka's
    behaviour for the first partition of a fetch).  Raises OffsetOutOfRangeError
    unless log_start_offset <= offset <= log_end_offset, and CorruptBatchError where a
    segment trusted after a clean stop turns out to hold an impossible batch header.
    An offline log (a failed fsync) still serves what it holds.
    """
    leo = log.log_end_offset
    if offset < log.log_start_offset or offset > leo:
        raise OffsetOutOfRangeError(offset, log.log_start_offset, leo)
    upper = log.high_watermark if max_offset is None else min(max_offset, log.high_watermark)
    i = log.segment_index_for(offset)
    found = None
    while i < len(log.segments):
        seg = log.segments[i]
        try:
            found = seg.find_batch(offset)
        except CorruptRecordBatch as exc:  # a damaged segment trusted after a clean stop
            raise CorruptBatchError(f"{seg.log_path}: {exc}") from exc
        if found is not None:
            break
        i += 1
    if found is None or found[1].base_offset >= upper:
        return _empty_slice(log, offset)
    position, header = found
    want = max_bytes
    if min_one_batch and header.size_bytes > max_bytes:
        want = header.size_bytes
    data = seg.read(position, want)
    size = len(data)
    # Jump over the batches the offset index already vouches for: the last index
    # entry inside what was read (and below ``upper``) starts a whole batch, so only
    # the few batches after it need their headers walked.
    end = 0
    boundary_offset = -1
    keys, values = seg.index.keys, seg.index.values
    if values:
        j = min(
            bisect.bisect_right(values, position + size) - 1,
            bisect.bisect_left(keys, upper) - 1,
        )
        if j >= 0 and values[j] > position:
            end = values[j] - position
            boundary_offset = keys[j]
    unpack = _BASE_AND_LENGTH.unpack_from
    last_start = -1
    while size - end >= 12:
        base, length = unpack(data, end)
        if length < MIN_BATCH_LENGTH:
            # only a damaged segment that was trusted (clean stop) holds such a header
            if end > 0:
                break  # serve the whole batches before it
            raise CorruptBatchError(
                f"{seg.log_path}: batch_length {length} at position {position + end}"
            )
        if end + length + 12 > size or base >= upper:
            break
        last_start = end
        end += length + 12
    if last_start >= 0:
        base = unpack(data, last_start)[0]
        next_offset = (
            base
            + _LAST_OFFSET_DELTA.unpack_from(data, last_start + _LAST_OFFSET_DELTA_POS)[0]
            + 1
        )
    elif boundary_offset >= 0:
        next_offset = boundary_offset
    else:
        return _empty_slice(log, offset)
    if next_offset <= offset:
        # a damaged trusted segment: without this, callers reading on from next_offset
        # (replay of the internal topics, fetch loops) would ask for the same offset forever
        raise CorruptBatchError(
            f"{seg.log_path}: batches at position {position} end before {offset}"
        )
    records: bytes | memoryview = data if end == size else memoryview(data)[:end]
    return FetchSlice(
        records,
        header.base_offset,
        next_offset,
        log.high_watermark,
        log.last_stable_offset,
        log.log_start_offset,
        seg.log_path,
        position,
    )

def _empty_slice(log: PartitionLog, offset: int) -> FetchSlice:
    return FetchSlice(
        b"",
        offset,
        offset,
        log.high_watermark,
        log.last_stable_offset,
        log.log_start_offset,
        log.active_segment.log_path,
        log.active_segment.size_bytes,
    )

def offset_for_timestamp(log: PartitionLog, timestamp_ms: int) -> TimestampAndOffset | None:
    """ListOffsets: the first record with timestamp >= ``timestamp_ms`` (its
    timestamp and offset), or the special lookups -1 latest, -2/-4 earliest,
    -3 max timestamp.  None when there is no such record."""
    if timestamp_ms == LATEST_TIMESTAMP:
        leo = log.log_end_offset
        return TimestampAndOffset(-1, leo, log.epoch_cache.latest_epoch)
    if timestamp_ms in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        start = log.log_start_offset
        return TimestampAndOffset(-1, start, log.epoch_cache.epoch_for_offset(start))
    if timestamp_ms == MAX_TIMESTAMP:
        return _max_timestamp_offset(log)
    if timestamp_ms < 0:
        return None
    for seg in log.segments:
        if seg.next_offset <= log.log_start_offset:
            continue
        hit = seg.find_offset_by_timestamp(timestamp_ms, log.log_start_offset)
        if hit is not None:
            return TimestampAndOffset(hit[0], hit[1], log.epoch_cache.epoch_for_offset(hit[1]))
    return None

def _max_timestamp_offset(log: PartitionLog) -> TimestampAndOffset | None:
    best: Segment | None = None
    for seg in log.segments:
        if (
            seg.next_offset > log.log_start_offset
            and seg.max_timestamp >= 0
            and (best is None or seg.max_timestamp > best.max_timestamp)
        ):
            best = seg
    if best is None:
        return None
    found = best.find_batch(max(best.offset_of_max_timestamp, log.log_start_offset))
    if found is None:
        return None
    for _, view in best.batches_from(found[0]):
        if view.max_timestamp != best.max_timestamp:
            continue
        for offset, ts in record_timestamps(view, log.log_start_offset):
            if ts == best.max_timestamp:
                return TimestampAndOffset(ts, offset, log.epoch_cache.epoch_for_offset(offset))
    return None
