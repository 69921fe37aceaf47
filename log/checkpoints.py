"""Small crash-safe files: offset checkpoints and the leader-epoch cache.

Every write goes to ``<name>.tmp``, is fsynced, then renamed over ``<name>`` and the
directory fsynced, so a reader sees either the old or the new content, never a mix.
A leftover ``.tmp`` is garbage from a crash and is ignored (loaders delete it).
"""

from __future__ import annotations

import bisect
import ctypes
import os

from kbroker.log.results import EpochEndOffset

TMP_SUFFIX = ".tmp"
_VERSION = "0"


def fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_file_system(path: str) -> None:
    """Make everything written to the file system holding ``path`` durable: Linux's
    syncfs(2) (one call for any number of files), else sync(2)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs = libc.syncfs
    except (OSError, AttributeError):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, *, fsync: bool = True) -> None:
    """tmp + rename (both fsynced unless ``fsync`` is False: then the new content
    survives a process kill, and a power loss only once someone fsyncs it)."""
    tmp = path + TMP_SUFFIX
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if fsync:
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_directory(os.path.dirname(path) or ".")


def _read_lines(path: str) -> list[str] | None:
    """The entry lines of a ``version / count / entries`` file; None if absent or bad."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if len(lines) < 2 or lines[0] != _VERSION or not lines[1].isdigit():
        return None
    entries = lines[2:]
    return entries if len(entries) == int(lines[1]) else None


def _format(entries: list[str]) -> bytes:
    return "\n".join([_VERSION, str(len(entries)), *entries, ""]).encode()


def read_offset_checkpoint(path: str) -> dict[tuple[str, int], int]:
    """``topic partition offset`` lines (Kafka's format); empty if missing or damaged."""
    result: dict[tuple[str, int], int] = {}
    for line in _read_lines(path) or []:
        parts = line.split(" ")
        if len(parts) != 3:
            return {}
        try:
            result[(parts[0], int(parts[1]))] = int(parts[2])
        except ValueError:
            return {}
    return result


def write_offset_checkpoint(path: str, offsets: dict[tuple[str, int], int]) -> None:
    write_atomically(path, _format([f"{t} {p} {o}" for (t, p), o in sorted(offsets.items())]))


class LeaderEpochCache:
    """``leader-epoch-checkpoint``: the start offset of every leader epoch.

    Invariants: epochs and start offsets both strictly increase; every start offset
    is < the log end offset once the log has been truncated to match.  Written on
    every change (epochs change rarely), fsynced too unless the change is a leader
    epoch started with ``durable=False`` (a lazily loaded partition; thousands of them
    at once must not cost two fsyncs each): that one is fsynced by ``sync``, which the
    log calls when it flushes -- before any data of the epoch is durable, so the cache
    is never behind the durable data (Kafka, too, moved this fsync off the leader's
    critical path: KAFKA-15046).
    """

    FILE_NAME = "leader-epoch-checkpoint"

    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, self.FILE_NAME)
        self.epochs: list[int] = []
        self.start_offsets: list[int] = []
        self._unsynced = False
        for line in _read_lines(self.path) or []:
            parts = line.split(" ")
            try:
                epoch, start = int(parts[0]), int(parts[1])
            except (ValueError, IndexError):
                self.epochs, self.start_offsets = [], []
                break
            if self.epochs and (epoch <= self.epochs[-1] or start < self.start_offsets[-1]):
                continue  # a damaged line; skip it rather than lose the others
            self.epochs.append(epoch)
            self.start_offsets.append(start)

    @property
    def latest_epoch(self) -> int:
        return self.epochs[-1] if self.epochs else -1

    def _save(self, durable: bool = True) -> None:
        write_atomically(
            self.path,
            _format([f"{e} {o}" for e, o in zip(self.epochs, self.start_offsets)]),
            fsync=durable,
        )
        self._unsynced = not durable

    def sync(self) -> None:
        """fsync a change written with ``durable=False`` (no-op otherwise)."""
        if self._unsynced:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            fsync_directory(os.path.dirname(self.path) or ".")
            self._unsynced = False

    def assign(self, epoch: int, start_offset: int, *, durable: bool = True) -> None:
        """Record that ``epoch`` starts at ``start_offset`` (ignored unless newer);
        ``durable=False``: not fsynced until ``sync`` (see the class docstring)."""
        if epoch < 0 or (self.epochs and epoch <= self.epochs[-1]):
            return
        if self.start_offsets and start_offset <= self.start_offsets[-1]:
            # an earlier epoch wrote nothing: the newer one replaces it (Kafka does too)
            while self.start_offsets and start_offset <= self.start_offsets[-1]:
                self.epochs.pop()
                self.start_offsets.pop()
        self.epochs.append(epoch)
        self.start_offsets.append(start_offset)
        self._save(durable)

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs starting at or after ``end_offset`` (the log was truncated)."""
        i = bisect.bisect_left(self.start_offsets, end_offset)
        if i < len(self.epochs):
            del self.epochs[i:], self.start_offsets[i:]
            self._save()

    def truncate_from_start(self, start_offset: int) -> None:
        """Drop epochs that end before ``start_offset``; clamp the one containing it."""
        i = bisect.bisect_right(self.start_offsets, start_offset) - 1
        if i < 0 or (i == 0 and self.start_offsets[0] == start_offset):
            return
        del self.epochs[:i], self.start_offsets[:i]
        self.start_offsets[0] = start_offset
        self._save()

    def epoch_for_offset(self, offset: int) -> int:
        i = bisect.bisect_right(self.start_offsets, offset) - 1
        return self.epochs[i] if i >= 0 else -1

    def end_offset_for(self, epoch: int, log_end_offset: int) -> EpochEndOffset:
        """OffsetForLeaderEpoch: the end offset of ``epoch`` as Kafka computes it.

        The latest epoch ends at the log end; an older one ends where the next known
        epoch starts, reported with the largest known epoch <= the requested one (or
        the requested one if it predates them all); an unknown newer epoch is -1/-1.
        """
        if epoch < 0 or not self.epochs:
            return EpochEndOffset(-1, -1)
        if epoch == self.epochs[-1]:
            return EpochEndOffset(epoch, log_end_offset)
        higher = bisect.bisect_right(self.epochs, epoch)
        if higher >= len(self.epochs):
            return EpochEndOffset(-1, -1)
        floor = higher - 1
        found_epoch = self.epochs[floor] if floor >= 0 else epoch
        return EpochEndOffset(found_epoch, self.start_offsets[higher])
