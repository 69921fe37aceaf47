"""The aborted-transaction index of one segment (Kafka's ``.txnindex``).

When an ABORT marker is appended, the segment receiving it records the aborted
transaction: ``(producer_id, first_offset, last_offset, last_stable_offset)`` where
``first_offset`` is the transaction's first offset, ``last_offset`` the marker's offset
and ``last_stable_offset`` the partition's LSO right after the marker.  A
read_committed Fetch asks for the aborted transactions overlapping its range and the
consumer drops their records.

File format (Kafka's): 34-byte big-endian entries ``version int16 (0), producer_id
int64, first_offset int64, last_offset int64, last_stable_offset int64``.  The file
always exists once the segment has been flushed (empty when nothing was aborted), so a
missing file means damage, not "no aborts".

Like the offset and time indexes it is *derived data*: entries live in memory,
reach the file at flush, and a segment that is rescanned by recovery -- or whose file
is missing or fails the sanity check -- has its index rebuilt by replaying producer
state over its batches (``PartitionLog._load_producer_state``).  Below the recovery
point the file is trusted as the other indexes are (it was fsynced with the segment):
a file cut exactly at an entry boundary cannot be told from one with fewer aborts.
"""

from __future__ import annotations

import contextlib
import os
import struct
from typing import NamedTuple

from kbroker.log.checkpoints import TMP_SUFFIX

TXN_INDEX_SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">hqqqq")
_VERSION = 0


class AbortedTxn(NamedTuple):
    """One aborted transaction: ``last_offset`` is the offset of its ABORT marker."""

    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TransactionIndex:
    """The aborted transactions whose markers lie in one segment, in marker order.

    Invariants: entries are in increasing ``last_offset`` order, each with
    ``first_offset <= last_offset`` and ``last_offset`` inside the segment; the first
    ``_written`` entries are exactly the file's content (after ``flush``).
    ``needs_rebuild`` is True from a reset (or a failed load) until the owner has
    replayed the segment's batches into it.  Not thread-safe (the segment's owner).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[AbortedTxn] = []
        self.needs_rebuild = False
        self._written = -1  # -1: the whole file must be (re)written at the next flush

    def load(self, base_offset: int, next_offset: int) -> bool:
        """Read the file; False (and ``needs_rebuild``) if it is missing or malformed."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return self._failed()
        if len(data) % _ENTRY.size:
            return self._failed()
        entries = []
        previous = base_offset - 1
        for version, pid, first, last, lso in _ENTRY.iter_unpack(data):
            if (
                version != _VERSION
                or pid < 0
                or not first <= last
                or not previous < last < next_offset
                or lso < 0
            ):
                return self._failed()
            entries.append(AbortedTxn(pid, first, last, lso))
            previous = last
        self.entries = entries
        self.needs_rebuild = False
        self._written = len(entries)
        return True

    def _failed(self) -> bool:
        self.reset()
        return False

    def reset(self) -> None:
        """Forget every entry; the owner must rebuild (see the module docstring)."""
        self.entries = []
        self.needs_rebuild = True
        self._written = -1

    def append(self, txn: AbortedTxn) -> None:
        if self.entries and txn.last_offset <= self.entries[-1].last_offset:
            raise ValueError(f"aborted txn {txn} is not after {self.entries[-1]}")
        self.entries.append(txn)

    def collect(self, start_offset: int, end_offset: int) -> tuple[list[AbortedTxn], bool]:
        """The entries overlapping [start_offset, end_offset), and whether the search
        is complete: an entry whose LSO reached ``end_offset`` proves that no
        transaction aborted in a later segment can have begun before ``end_offset``."""
        found = []
        for txn in self.entries:
            if txn.last_offset >= start_offset and txn.first_offset < end_offset:
                found.append(txn)
            if txn.last_stable_offset >= end_offset:
                return found, True
        return found, False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries whose marker is at or after ``offset``."""
        keep = [t for t in self.entries if t.last_offset < offset]
        if len(keep) != len(self.entries):
            self.entries = keep
            self._written = -1

    def flush(self, fsync: bool) -> None:
        """Write entries added since the last flush (the whole file after a reset)."""
        if self._written < 0:
            tmp = self.path + TMP_SUFFIX
            with open(tmp, "wb") as f:
                f.write(b"".join(_ENTRY.pack(_VERSION, *t) for t in self.entries))
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self._written = len(self.entries)
            return
        if self._written == len(self.entries) and not fsync:
            return
        tail = b"".join(_ENTRY.pack(_VERSION, *t) for t in self.entries[self._written :])
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, self._written * _ENTRY.size)
            if tail:
                os.pwrite(fd, tail, self._written * _ENTRY.size)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._written = len(self.entries)

    def delete_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
