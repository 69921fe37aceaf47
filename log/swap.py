"""Crash-safe replacement of segments by a cleaned one (Kafka's ``.cleaned`` -> ``.swap``).

Theory of operation
-------------------
The cleaner writes the replacement of a group of consecutive segments ``[base, end)``
as ``<base>.log.cleaned`` with its ``.index.cleaned``, ``.timeindex.cleaned`` and
``.txnindex.cleaned``, fsyncs them, and then :func:`swap_in` runs four phases, each
ending with a directory fsync:

=======  =====================================================  =========================
phase    what happens                                           a crash here is undone /
                                                                finished at load by
=======  =====================================================  =========================
cleaned  ``.cleaned`` files complete and durable                deleting every ``.cleaned``
                                                                file: the old segments
                                                                are intact
swap     ``<base>.swapend`` (the group's end offset) written,   completing the swap (below)
         then the indexes and last the log renamed ``.swap``
deleted  every old segment of the group renamed ``.deleted``    completing the swap
final    ``.swap`` files renamed to their final names (log      completing the swap, then
         last), ``.swapend`` removed                            removing the ``.swapend``
=======  =====================================================  =========================

A ``<base>.log.swap`` is the commit point: once it exists the cleaned segment wins.
:func:`finish_interrupted_swaps` (run by ``recovery.load_segments`` before anything
else) deletes every old segment whose base lies in ``[base, end)`` -- ``end`` from the
``.swapend`` file; without it, Kafka's rule, the swap segment's own next offset --
renames the ``.swap`` files to their final names and removes the ``.swapend``.  Index
``.swap`` files without a ``.log.swap`` are debris of the ``cleaned`` phase.

The ``.swapend`` file is our addition to Kafka's protocol: a cleaned segment may end
before its group did (its last records were all removed), and then its own next
offset would not cover the last old segments of the group.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable

from kbroker.log.checkpoints import fsync_directory, write_atomically
from kbroker.log.errors import LogStorageError
from kbroker.log.segment import (
    DELETED_SUFFIX,
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    iter_file_batches,
    segment_file_name,
)
from kbroker.log.txn_index import TXN_INDEX_SUFFIX
from kbroker.wire.records import CorruptRecordBatch

CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"
SWAP_END_SUFFIX = ".swapend"
# Index files first, the log last: a ``.log.swap`` implies every index was renamed.
SEGMENT_SUFFIXES = (INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX, LOG_SUFFIX)

FaultHook = Callable[[str], None]
"""Called with a phase name once that phase is durable (tests crash there)."""


def _no_fault(phase: str) -> None:
    return None


def segment_paths(directory: str, base_offset: int, extra_suffix: str = "") -> list[str]:
    """The four files of a segment, indexes first, each with ``extra_suffix``."""
    return [
        os.path.join(directory, segment_file_name(base_offset, s) + extra_suffix)
        for s in SEGMENT_SUFFIXES
    ]


def _rename_all(directory: str, base_offset: int, old_suffix: str, new_suffix: str) -> None:
    for path in segment_paths(directory, base_offset, old_suffix):
        target = path[: len(path) - len(old_suffix)] + new_suffix
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)


def swap_in(
    directory: str,
    base_offset: int,
    end_offset: int,
    rename_old: Iterable[Callable[[], object]],
    fault: FaultHook = _no_fault,
) -> None:
    """Run the phases ``swap``, ``deleted`` and ``final`` of the module doc for the
    cleaned segment at ``base_offset`` replacing ``[base_offset, end_offset)``.

    ``rename_old`` renames each old segment's files ``.deleted`` (log first).  Raises
    LogStorageError; what is on disk is then always one of the table's states.
    """
    fault("cleaned")
    try:
        end_path = os.path.join(directory, segment_file_name(base_offset, SWAP_END_SUFFIX))
        write_atomically(end_path, str(end_offset).encode())
        _rename_all(directory, base_offset, CLEANED_SUFFIX, SWAP_SUFFIX)
        fsync_directory(directory)
        fault("swap")
        for rename in rename_old:
            rename()
        fsync_directory(directory)
        fault("deleted")
        _rename_all(directory, base_offset, SWAP_SUFFIX, "")
        fault("renamed")
        os.unlink(end_path)
        fsync_directory(directory)
    except OSError as exc:
        raise LogStorageError(f"segment swap in {directory} failed: {exc}") from exc
    fault("final")


def discard_cleaned(directory: str, base_offset: int) -> None:
    for path in segment_paths(directory, base_offset, CLEANED_SUFFIX):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _parse(name: str, suffix: str) -> int | None:
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    return int(stem) if stem.isdigit() else None


def _next_offset_of(path: str) -> int | None:
    """One past the last whole batch of a log file (None if it holds none)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = None
        with contextlib.suppress(CorruptRecordBatch):
            for _, view in iter_file_batches(fd, 0, os.fstat(fd).st_size):
                end = view.next_offset
        return end
    finally:
        os.close(fd)


def _read_end(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("ascii", "replace").strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def finish_interrupted_swaps(directory: str) -> int:
    """Undo or finish an interrupted clean (see the module doc).  Returns how many
    swaps were completed."""
    names = os.listdir(directory)
    for name in names:
        if name.endswith(CLEANED_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
    swaps = sorted(b for n in names if (b := _parse(n, LOG_SUFFIX + SWAP_SUFFIX)) is not None)
    log_bases = sorted(b for n in names if (b := _parse(n, LOG_SUFFIX)) is not None)
    for base in swaps:
        end_path = os.path.join(directory, segment_file_name(base, SWAP_END_SUFFIX))
        swap_log = os.path.join(directory, segment_file_name(base, LOG_SUFFIX + SWAP_SUFFIX))
        end = _read_end(end_path)
        if end is None:
            end = _next_offset_of(swap_log) or base + 1
        for old in log_bases:
            if base <= old < end:
                for path in segment_paths(directory, old):
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(path, path + DELETED_SUFFIX)
        _rename_all(directory, base, SWAP_SUFFIX, "")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(end_path)
    # Index .swap files without their log, and .swapend files whose swap finished.
    for name in os.listdir(directory):
        if name.endswith(SWAP_SUFFIX) or name.endswith(SWAP_END_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(directory, name))
    if swaps or any(n.endswith(CLEANED_SUFFIX) for n in names):
        fsync_directory(directory)
    return len(swaps)
