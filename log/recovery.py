"""Loading a partition directory after a clean or an unclean stop.

Theory of operation
-------------------
What is on disk after a crash is whatever the kernel had accepted: every batch whose
``write`` returned is in the page cache (and survives a process kill); only a power
loss can lose data past the last fsync, which is what the *recovery point* bounds.
Everything at or below the recovery point was fsynced, together with its indexes.

``load_segments`` therefore:

1. finishes or undoes an interrupted clean (``swap.finish_interrupted_swaps``: a
   ``.log.swap`` is completed, ``.cleaned`` files are dropped), then removes crash debris: ``*.tmp`` (half-written checkpoints, snapshots, index
   rebuilds), ``*.deleted`` (segments whose deletion had begun: the log file is
   renamed first, so a ``.deleted`` log means the segment is gone), and index files
   without a ``.log`` (orphans of such a deletion);
2. opens every ``<base>.log`` in offset order.  Segments wholly below the recovery
   point (or all of them after a clean shutdown) are trusted: their indexes are
   sanity-checked and rebuilt only if damaged or missing.  From the segment holding
   the recovery point on, each segment is rescanned: every batch's header and CRC-32C
   are checked, the indexes rebuilt, and the file truncated at the first torn or
   corrupt batch -- after which every later segment is deleted, because offsets after
   a hole cannot be trusted;
3. makes sure a segment exists (an empty log, or a log start offset beyond the end,
   starts over with one empty segment at the log start offset).

Indexes are never trusted more than the data they describe, and nothing is ever
"repaired" by guessing: bytes after the first bad batch are discarded.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from kbroker.log.checkpoints import TMP_SUFFIX
from kbroker.log.config import LogConfig
from kbroker.log.errors import LogStorageError
from kbroker.log.file_cache import FileCache
from kbroker.log.index import IndexCorruptError
from kbroker.log.segment import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    Segment,
)
from kbroker.log.swap import finish_interrupted_swaps
from kbroker.log.txn_index import TXN_INDEX_SUFFIX

# Index entries: 8 bytes in .index, 12 in .timeindex; segment.index.bytes bounds both.
OFFSET_INDEX_ENTRY_BYTES = 8


@dataclass(slots=True)
class LoadReport:
    """What loading found (for logs and tests)."""

    recovered_segments: int = 0  # segments rescanned batch by batch
    rebuilt_indexes: int = 0
    truncated_bytes: int = 0
    deleted_segments: int = 0
    completed_swaps: int = 0
    scanned_bytes: int = 0  # bytes of the rescanned segments, before any truncation

    def add(self, other: LoadReport) -> None:
        """Accumulate ``other`` into this report (a whole data dir's totals)."""
        self.recovered_segments += other.recovered_segments
        self.rebuilt_indexes += other.rebuilt_indexes
        self.truncated_bytes += other.truncated_bytes
        self.deleted_segments += other.deleted_segments
        self.scanned_bytes += other.scanned_bytes
        self.completed_swaps += other.completed_swaps


def _parse_base(name: str, suffix: str) -> int | None:
    stem = name[: -len(suffix)]
    return int(stem) if name.endswith(suffix) and stem.isdigit() else None


def remove_debris(directory: str) -> None:
    names = os.listdir(directory)
    log_bases = {b for n in names if (b := _parse_base(n, LOG_SUFFIX)) is not None}
    for name in names:
        path = os.path.join(directory, name)
        orphan = False
        for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
            base = _parse_base(name, suffix)
            if base is not None and base not in log_bases:
                orphan = True
        if name.endswith(TMP_SUFFIX) or name.endswith(DELETED_SUFFIX) or orphan:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def new_segment(
    directory: str,
    base_offset: int,
    config: LogConfig,
    now_ms: int,
    files: FileCache | None = None,
) -> Segment:
    return Segment(
        directory,
        base_offset,
        config.index_interval_bytes,
        max(1, config.segment_index_bytes // OFFSET_INDEX_ENTRY_BYTES),
        now_ms,
        files,
    )


def delete_segment_files(segment: Segment) -> None:
    segment.close()
    for path in segment.rename_for_deletion():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def load_segments(
    directory: str,
    config: LogConfig,
    *,
    recovery_point: int,
    log_start_offset: int,
    had_clean_shutdown: bool,
    now_ms: int,
    files: FileCache | None = None,
    fsync: bool = True,
) -> tuple[list[Segment], LoadReport]:
    """Open (and if needed recover) the segments of ``directory``; see the module doc."""
    report = LoadReport()
    try:
        os.makedirs(directory, exist_ok=True)
        report.completed_swaps = finish_interrupted_swaps(directory)
        remove_debris(directory)
        bases = sorted(
            b for n in os.listdir(directory) if (b := _parse_base(n, LOG_SUFFIX)) is not None
        )
    except OSError as exc:
        raise LogStorageError(f"cannot list {directory}: {exc}") from exc
    segments = [new_segment(directory, b, config, now_ms, files) for b in bases]
    # The first segment to rescan: the one holding the recovery point.
    rescan_from = len(segments)
    if not had_clean_shutdown:
        rescan_from = 0
        for i, seg in enumerate(segments):
            if seg.base_offset <= recovery_point:
                rescan_from = i
    max_batch_bytes = config.segment_bytes + config.max_message_bytes
    kept: list[Segment] = []
    for i, seg in enumerate(segments):
        if kept and seg.base_offset < kept[-1].next_offset:
            # Overlaps its predecessor: everything from here on is suspect.
            for bad in segments[i:]:
                delete_segment_files(bad)
                report.deleted_segments += 1
            break
        if i < rescan_from:
            hint = segments[i + 1].base_offset if i + 1 < len(segments) else None
            try:
                seg.load_trusted(hint)
                kept.append(seg)
                continue
            except IndexCorruptError:
                report.rebuilt_indexes += 1
        report.recovered_segments += 1
        report.scanned_bytes += seg.size_bytes
        truncated = seg.recover(max_batch_bytes)
        report.truncated_bytes += truncated
        kept.append(seg)
        if truncated:
            for bad in segments[i + 1 :]:
                delete_segment_files(bad)
                report.deleted_segments += 1
            break
    if kept and log_start_offset > kept[-1].next_offset:
        for seg in kept:
            delete_segment_files(seg)
            report.deleted_segments += 1
        kept = []
    for seg in kept:
        # what was rescanned or rebuilt is now durable, or written for the caller's sync
        # (no-op if untouched)
        seg.flush(fsync=fsync)
    if not kept:
        # A fresh, empty segment: its index files are written at its first flush (until
        # then a crash leaves none, and recovery builds them: nothing to make durable).
        kept = [new_segment(directory, max(log_start_offset, 0), config, now_ms, files)]
    return kept, report
