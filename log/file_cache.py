"""A bounded, least-recently-used cache of open segment descriptors.

Theory of operation
-------------------
Every segment used to keep its ``.log`` file open for its whole life, so a broker with
10,000 partitions needed 10,000 descriptors before it accepted a single connection and
failed with EMFILE under an ordinary ``ulimit -n 1024``.  With a :class:`FileCache`
a segment opens its file on first use and registers the descriptor here; when more
than ``max_open`` are registered the least recently used one is closed, and its
segment reopens the file (``O_RDWR``, by path) the next time it needs it.  Closing and
reopening a file loses nothing: every write already went to the kernel, and an
``fsync`` on a new descriptor flushes the file's dirty pages as well as the old one
would have.

Indexes hold no descriptors (they live in memory and open their files only to flush),
so the segment logs are the only files counted here.

A segment can be *pinned* while its file must stay open under its current name (a
segment whose file is about to be renamed by a cleaner swap, a scan that yields
batches while other code runs): eviction skips pinned entries, so the cache may then
hold more than ``max_open`` for a while.

Thread-safety: one owner thread (the broker's event loop) opens, touches and evicts.
A segment built on another thread (the cleaner's swap thread) is created without a
cache and keeps a private descriptor until the owner adopts it (``Segment.adopt``).
"""

from __future__ import annotations

import os
import resource
from collections import OrderedDict
from typing import Protocol

# The fewest descriptors the cache may hold: a partition's roll needs its old and new
# segment at once, a fetch spanning partitions several; below this evictions thrash.
MIN_OPEN_FILES = 16
# Share of the process's soft RLIMIT_NOFILE given to segment files by default: the
# rest stays for client connections (the larger need: 1,000 clients under ulimit -n
# 1024 must fit), checkpoints, index flushes, snapshots and the interpreter's files.
# An evicted segment costs one open() when next used, a refused client much more.
DEFAULT_OPEN_FILES_SHARE = 0.25
# When the soft limit is unlimited, the default is capped here all the same: a broker
# should not depend on the host's limit being unlimited to stay bounded.
UNLIMITED_DEFAULT_OPEN_FILES = 32_768


def default_max_open_files() -> int:
    """A quarter of the soft RLIMIT_NOFILE (at least MIN_OPEN_FILES): see the constants."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return UNLIMITED_DEFAULT_OPEN_FILES
    return max(MIN_OPEN_FILES, int(soft * DEFAULT_OPEN_FILES_SHARE))


class CachedFile(Protocol):
    """What the cache needs of a segment: its open descriptor (-1 when closed), whether
    it is pinned, and whether it was used since the cache last looked (set by the user on
    every use: a plain attribute store, the cheapest thing the hot path can do)."""

    _fd: int
    _pins: int
    _used: bool


class FileCache:
    """The LRU of open segment descriptors; see the module docstring.

    Invariant: ``_open`` holds exactly the registered files whose ``_fd`` is >= 0, in
    the order they were opened or last given a second chance.  Eviction is the "clock"
    approximation of LRU: from the oldest, a file used since it was last looked at
    loses its ``_used`` mark and goes to the back; the first one not used is closed.
    So a use costs one attribute store instead of reordering the dict.
    """

    __slots__ = ("max_open", "_open", "opens", "evictions")

    def __init__(self, max_open: int) -> None:
        if max_open < MIN_OPEN_FILES:
            raise ValueError(f"max_open must be at least {MIN_OPEN_FILES}, not {max_open}")
        self.max_open = max_open
        self._open: OrderedDict[CachedFile, None] = OrderedDict()
        self.opens = 0  # files opened through the cache (first opens and reopens)
        self.evictions = 0  # descriptors closed to stay within max_open

    def __len__(self) -> int:
        return len(self._open)

    def open(self, f: CachedFile, path: str, flags: int) -> int:
        """Open ``path`` for ``f`` (evicting the least recently used unpinned files
        beyond ``max_open`` first) and register the descriptor; OSError if it fails."""
        if len(self._open) >= self.max_open:
            self._evict(len(self._open) - self.max_open + 1)
        fd = os.open(path, flags, 0o644)
        f._fd = fd
        f._used = False
        self._open[f] = None
        self.opens += 1
        return fd

    def adopt(self, f: CachedFile) -> None:
        """Register ``f``'s already open descriptor (opened outside the cache)."""
        if f._fd >= 0 and f not in self._open:
            if len(self._open) >= self.max_open:
                self._evict(len(self._open) - self.max_open + 1)
            self._open[f] = None

    def close(self, f: CachedFile) -> None:
        """Close ``f``'s descriptor (if open) and forget it."""
        self._open.pop(f, None)
        fd, f._fd = f._fd, -1
        if fd >= 0:
            os.close(fd)

    def _evict(self, count: int) -> None:
        # At most two sweeps: the first may only clear ``_used`` marks.
        for _ in range(2 * len(self._open)):
            if count == 0 or not self._open:
                return
            f = next(iter(self._open))
            if f._pins or f._used:
                f._used = False
                self._open.move_to_end(f)
                continue
            self.close(f)
            self.evictions += 1
            count -= 1
