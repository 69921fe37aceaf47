"""Deleting from a partition log: DeleteRecords, retention by time and size, and the
delayed unlinking of deleted segments' files (``file.delete.delay.ms``).

Functions of a :class:`~kbroker.log.partition_log.PartitionLog` (its methods of the same
names call them), kept apart so that module stays a readable size.
"""

from __future__ import annotations

import bisect
import contextlib
import os
from typing import TYPE_CHECKING

from kbroker.log.errors import OffsetOutOfRangeError
from kbroker.log.segment import DELETED_SUFFIX, Segment

if TYPE_CHECKING:
    from kbroker.log.partition_log import PartitionLog


def largest_timestamp(seg: Segment) -> int:
    """The segment's largest record timestamp for time retention; for one without any
    (a segment the cleaner emptied) its file's modification time, as Kafka's
    LogSegment.largestTimestamp -- else it would hold back retention for good."""
    if seg.max_timestamp >= 0 or seg.size_bytes > 0:
        return seg.max_timestamp
    try:
        return int(os.stat(seg.log_path).st_mtime * 1000)
    except OSError:
        return -1


def delete_records_before(log: PartitionLog, offset: int, now_ms: int | None = None) -> int:
    """DeleteRecords: move the log start offset up to ``offset`` (<= high watermark)
    and delete the segments wholly below it (their files are unlinked
    ``file.delete.delay.ms`` after ``now_ms``, default: the latest time seen).
    Returns the new log start offset.

    If the start offset moved, ``on_log_start_offset_moved`` runs before this
    returns (under a LogManager: the log-start checkpoint is written, so the
    deletion survives a crash once acknowledged; LogStorageError if it fails)."""
    log._check_online()
    if offset > log.high_watermark or offset < 0:
        raise OffsetOutOfRangeError(offset, log.log_start_offset, log.high_watermark)
    moved = offset > log.log_start_offset
    if moved:
        log.log_start_offset = offset
        log.epoch_cache.truncate_from_start(offset)
    delete_segments(log,
        count_deletable(log, lambda seg, nxt: nxt <= log.log_start_offset), now_ms
    )
    if moved and log.on_log_start_offset_moved is not None:
        log.on_log_start_offset_moved(log)
    return log.log_start_offset

def enforce_retention(log: PartitionLog, now_ms: int) -> int:
    """Delete whole old segments by retention.ms / retention.bytes and below the log
    start offset.  The active segment goes too if everything expired (it is rolled
    first, as Kafka does).  Returns the number of segments deleted."""
    log._check_online()
    log._now_ms = now_ms
    deleted = delete_segments(log,
        count_deletable(log, lambda seg, nxt: nxt <= log.log_start_offset), now_ms
    )
    cfg = log.config
    if cfg.deletes_by_retention and cfg.retention_ms >= 0:
        limit = now_ms - cfg.retention_ms
        deleted += delete_segments(log,
            count_deletable(log,
                lambda seg, nxt: 0 <= largest_timestamp(seg) < limit, include_active=True
            ),
            now_ms,
        )
    if cfg.deletes_by_retention and cfg.retention_bytes >= 0:
        excess = log.size_bytes - cfg.retention_bytes

        def over_size(seg: Segment, nxt: int) -> bool:
            nonlocal excess
            if excess - seg.size_bytes < 0:
                return False
            excess -= seg.size_bytes
            return True

        deleted += delete_segments(log, count_deletable(log, over_size), now_ms)
    delete_pending_files(log, now_ms)
    return deleted

def count_deletable(log: PartitionLog, predicate: object, include_active: bool = False) -> int:
    """How many segments, from the oldest, satisfy ``predicate(seg, next_base)``."""
    assert callable(predicate)
    count = 0
    hw = log.high_watermark
    for i, seg in enumerate(log.segments):
        is_active = i == len(log.segments) - 1
        if is_active and (not include_active or seg.size_bytes == 0):
            break
        nxt = log.log_end_offset if is_active else log.segments[i + 1].base_offset
        if nxt > hw or not predicate(seg, nxt):
            break
        count += 1
    return count

def delete_segments(log: PartitionLog, count: int, now_ms: int | None) -> int:
    """Drop the ``count`` oldest segments: rename their files ``*.deleted`` now and
    unlink them ``file.delete.delay.ms`` later (``delete_pending_files``)."""
    if log._replacing is not None:  # the segments being replaced stay
        count = min(count, bisect.bisect_left(log._bases, log._replacing.base_offset))
    if count == 0:
        return 0
    now = log._now_ms if now_ms is None else now_ms
    if count == len(log.segments):
        log.roll(now)
    doomed = log.segments[:count]
    del log.segments[:count]
    del log._bases[:count]
    log.log_start_offset = max(log.log_start_offset, log.segments[0].base_offset)
    log.epoch_cache.truncate_from_start(log.log_start_offset)
    due = now + max(log.config.file_delete_delay_ms, 0)
    for seg in doomed:
        seg.close()
        seg.rename_for_deletion()  # the log file first: see recovery.remove_debris
        log._pending_deletes.append((due, seg))
    delete_pending_files(log, now)
    return count

def delete_pending_files(log: PartitionLog, now_ms: int | None) -> None:
    """Unlink the ``*.deleted`` files whose ``file.delete.delay.ms`` has passed by
    ``now_ms`` (all of them if None, as at close; a restart removes leftovers)."""
    keep: list[tuple[int, Segment]] = []
    for due, seg in log._pending_deletes:
        if now_ms is not None and due > now_ms:
            keep.append((due, seg))
            continue
        for path in (seg.log_path, seg.index.path, seg.time_index.path, seg.txn_index.path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + DELETED_SUFFIX)
    log._pending_deletes = keep
