"""Sparse offset and time indexes of one segment.

Both indexes are *derived data*: nothing in them is checksummed, and recovery simply
rebuilds an index that fails the sanity check (or that belongs to a segment past the
recovery point).  They are kept in memory as two parallel lists searched with
``bisect`` and mirrored to an append-only file; new entries reach the file on
``flush()`` (segment roll, log flush, close), so the append path makes no index
syscalls.

File formats (big-endian, like Kafka's):

* ``.index``     8-byte entries ``(relative_offset: int32, position: int32)``; the key
  is the *base offset* of the batch that starts at ``position``.
* ``.timeindex`` 12-byte entries ``(timestamp: int64, relative_offset: int32)``: the
  largest timestamp seen so far in the segment and the offset of the batch holding it.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import struct

_OFFSET_ENTRY = struct.Struct(">ii")
_TIME_ENTRY = struct.Struct(">qi")


class IndexCorruptError(Exception):
    """An index file failed its sanity check; the caller rebuilds it (internal to log)."""


def _write_file_atomically(path: str, data: bytes, fsync: bool = True) -> None:
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)


class _SparseIndex:
    """Two parallel sorted lists (``keys`` strictly increasing) mirrored to a file.

    Invariants: ``keys`` is strictly increasing; the first ``_written`` entries are
    exactly the file's content (after ``flush``); the file never holds an entry that is
    not in memory.
    """

    _entry: struct.Struct

    def __init__(self, path: str, base_offset: int, max_entries: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self.max_entries = max_entries
        self.keys: list[int] = []
        self.values: list[int] = []
        self._written = 0

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def is_full(self) -> bool:
        return len(self.keys) >= self.max_entries

    def _pack(self, key: int, value: int) -> bytes:
        raise NotImplementedError

    def _unpack(self, data: bytes) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def load(self) -> None:
        """Read the file; raise IndexCorruptError if it is missing or malformed."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError as exc:
            raise IndexCorruptError(f"{self.path} is missing") from exc
        if len(data) % self._entry.size:
            raise IndexCorruptError(
                f"{self.path}: size {len(data)} is not a multiple of the entry size"
            )
        keys, values = self._unpack(data)
        for i in range(1, len(keys)):
            if keys[i] <= keys[i - 1] or values[i] < values[i - 1]:
                raise IndexCorruptError(f"{self.path}: entry {i} is out of order")
        self.keys, self.values = keys, values
        self._written = len(keys)

    def reset(self) -> None:
        self.keys, self.values = [], []
        self._written = -1  # the file must be rewritten whole on the next flush

    def truncate_entries(self, count: int) -> None:
        """Keep only the first ``count`` entries (in memory, and in the file at flush)."""
        if count < len(self.keys):
            del self.keys[count:]
            del self.values[count:]
            if self._written > count:
                self._written = -1

    def flush(self, fsync: bool) -> None:
        """Write entries added since the last flush (the whole file after a reset)."""
        if self._written < 0:
            _write_file_atomically(
                self.path,
                b"".join(self._pack(k, v) for k, v in zip(self.keys, self.values)),
                fsync,
            )
            self._written = len(self.keys)
            return
        if self._written == len(self.keys) and not fsync:
            return
        tail = b"".join(
            self._pack(k, v)
            for k, v in zip(self.keys[self._written :], self.values[self._written :])
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, self._written * self._entry.size)
            if tail:
                os.pwrite(fd, tail, self._written * self._entry.size)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self._written = len(self.keys)

    def delete_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class OffsetIndex(_SparseIndex):
    """Sparse map from a batch's base offset to its file position.

    ``keys`` are absolute base offsets, ``values`` file positions; both strictly /
    weakly increasing.  Lookups return the greatest entry at or below the target, from
    which a forward scan of batch headers finds the batch containing the target.
    """

    _entry = _OFFSET_ENTRY

    def _pack(self, key: int, value: int) -> bytes:
        return _OFFSET_ENTRY.pack(key - self.base_offset, value)

    def _unpack(self, data: bytes) -> tuple[list[int], list[int]]:
        keys: list[int] = []
        values: list[int] = []
        for rel, pos in _OFFSET_ENTRY.iter_unpack(data):
            if rel < 0 or pos < 0:
                raise IndexCorruptError(f"{self.path}: negative entry")
            keys.append(self.base_offset + rel)
            values.append(pos)
        return keys, values

    def append(self, offset: int, position: int) -> None:
        if self.keys and (offset <= self.keys[-1] or position <= self.values[-1]):
            return
        self.keys.append(offset)
        self.values.append(position)

    def lookup(self, offset: int) -> tuple[int, int]:
        """(base offset, position) of the last entry <= offset, or (segment base, 0)."""
        i = bisect.bisect_right(self.keys, offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.keys[i], self.values[i]

    def check_against(self, log_size: int, next_offset: int) -> None:
        if self.values and self.values[-1] >= max(log_size, 1):
            raise IndexCorruptError(f"{self.path}: position beyond the log")
        if self.keys and self.keys[-1] >= max(next_offset, self.base_offset + 1):
            raise IndexCorruptError(f"{self.path}: offset beyond the log")

    def first_entry_at_or_after(self, offset: int) -> int:
        return bisect.bisect_left(self.keys, offset)


class TimeIndex(_SparseIndex):
    """Sparse map from "largest timestamp so far" to the offset of the batch holding it.

    ``keys`` (timestamps) and ``values`` (absolute offsets) are both strictly
    increasing: an entry is only added when the segment's max timestamp grows.
    """

    _entry = _TIME_ENTRY

    def _pack(self, key: int, value: int) -> bytes:
        return _TIME_ENTRY.pack(key, value - self.base_offset)

    def _unpack(self, data: bytes) -> tuple[list[int], list[int]]:
        keys: list[int] = []
        values: list[int] = []
        for ts, rel in _TIME_ENTRY.iter_unpack(data):
            if rel < 0:
                raise IndexCorruptError(f"{self.path}: negative entry")
            keys.append(ts)
            values.append(self.base_offset + rel)
        return keys, values

    def append(self, timestamp: int, offset: int) -> None:
        if self.keys and (timestamp <= self.keys[-1] or offset <= self.values[-1]):
            return
        self.keys.append(timestamp)
        self.values.append(offset)

    def lookup_below(self, timestamp: int) -> int | None:
        """Offset of the last entry whose timestamp is strictly below ``timestamp``.

        Every batch before that offset has only smaller timestamps, so a search for the
        first record at or after ``timestamp`` may start there.
        """
        i = bisect.bisect_left(self.keys, timestamp) - 1
        return None if i < 0 else self.values[i]

    def check_against(self, next_offset: int) -> None:
        if self.values and self.values[-1] >= max(next_offset, self.base_offset + 1):
            raise IndexCorruptError(f"{self.path}: offset beyond the log")

    def first_entry_at_or_after_offset(self, offset: int) -> int:
        return bisect.bisect_left(self.values, offset)
