"""The cleaner's key -> latest offset map, bounded like Kafka's SkimpyOffsetMap.

Kafka sizes its map in bytes (``log.cleaner.dedupe.buffer.size`` shared by the cleaner
threads): each slot holds a 16-byte MD5 of the key plus an 8-byte offset, and the map
counts as full at ``log.cleaner.io.buffer.load.factor`` (0.9) of its slots.  This map
keeps the same arithmetic -- ``capacity = int(buffer_bytes // 24 * load_factor)`` keys --
so a configuration behaves the same way here (one round of cleaning covers as many
distinct keys as it would in Kafka).  Keys longer than 16 bytes are stored as their MD5
digest, as in Kafka (two keys colliding in MD5 would merge, which Kafka accepts too);
shorter ones as themselves (see :func:`key_digest`).

Two stores behind one interface: the C ``OffsetTable`` of ``_cleaner_scan`` (open
addressing over fixed-size names, no Python object per key; its ``map_section`` and
``judge`` do a whole batch in one call) when the extension is built, else a dict.
``native=False`` picks the dict (the tests compare both).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

try:
    from kbroker.log._cleaner_scan import OffsetTable  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # the extension is optional
    OffsetTable = None

# Kafka's SkimpyOffsetMap: MD5 digest (16 bytes) + offset (8 bytes) per slot.
DIGEST_BYTES = 16
ENTRY_BYTES = DIGEST_BYTES + 8
# log.cleaner.io.buffer.load.factor default.
DEFAULT_LOAD_FACTOR = 0.9


def key_digest(key: bytes) -> bytes:
    """The map's name for ``key``: the key itself up to 16 bytes (hashing costs more
    than it saves there), else its MD5 -- so an entry never holds more than 16 key
    bytes, as in Kafka.  A short key equal to another key's digest would take an MD5
    preimage, the same odds Kafka accepts for two digests colliding."""
    if len(key) <= DIGEST_BYTES:
        return key
    return hashlib.md5(key, usedforsecurity=False).digest()


class OffsetMap:
    """Key digest -> the largest offset seen for it; at most ``capacity`` keys.

    ``latest_offset`` is the largest offset put (-1 when empty).  Not thread-safe (one
    cleaner thread owns a map).
    """

    def __init__(
        self,
        buffer_bytes: int,
        load_factor: float = DEFAULT_LOAD_FACTOR,
        native: bool | None = None,
    ) -> None:
        if not 0.0 < load_factor <= 1.0:
            raise ValueError(f"load factor {load_factor} is not in (0, 1]")
        self.capacity = int(buffer_bytes // ENTRY_BYTES * load_factor)
        if self.capacity < 1:
            raise ValueError(f"a dedupe buffer of {buffer_bytes} bytes holds no key")
        if native and OffsetTable is None:
            raise RuntimeError("the C offset table is not built")
        if native is None:
            native = OffsetTable is not None
        self._offsets: dict[bytes, int] = {}
        # The C store (None: the dict); its seed spreads keys chosen to collide.
        self.table: Any = (
            OffsetTable(self.capacity, int.from_bytes(os.urandom(8), "little"))
            if native
            else None
        )
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self.table) if self.table is not None else len(self._offsets)

    @property
    def free(self) -> int:
        return self.capacity - len(self)

    def has_room_for(self, digests: set[bytes]) -> bool:
        """Whether putting every digest of ``digests`` keeps the map within capacity."""
        new = sum(1 for d in digests if self.get(d) < 0)
        return new <= self.free

    def put(self, digest: bytes, offset: int) -> None:
        if self.table is not None:
            self.table.put(digest, offset)
            self.latest_offset = max(self.latest_offset, offset)
            return
        if digest not in self._offsets and len(self._offsets) >= self.capacity:
            raise OverflowError("offset map is full")
        self._offsets[digest] = offset
        if offset > self.latest_offset:
            self.latest_offset = offset

    def put_all(self, digests: list[bytes], offsets: list[int]) -> bool:
        """Put every ``digests[i] -> offsets[i]`` (offsets ascending), or nothing and
        False if the new keys would not fit."""
        if not digests:
            return True
        if self.table is not None:
            if not self.has_room_for(set(digests)):
                return False
            for digest, offset in zip(digests, offsets, strict=True):
                self.table.put(digest, offset)
            self.latest_offset = max(self.latest_offset, offsets[-1])
            return True
        offsets_map = self._offsets
        if len(digests) > self.capacity - len(offsets_map):
            new = set(digests).difference(offsets_map)
            if len(new) > self.capacity - len(offsets_map):
                return False
        offsets_map.update(zip(digests, offsets))
        if offsets[-1] > self.latest_offset:
            self.latest_offset = offsets[-1]
        return True

    def get(self, digest: bytes | None, default: int = -1) -> int:
        """The latest offset of the key, or ``default`` if it is not in the map."""
        if self.table is not None:
            if digest is None:
                return default
            found: int = self.table.get(digest)
            return found if found >= 0 else default
        return self._offsets.get(digest, default)  # type: ignore[arg-type]

    @property
    def offsets(self) -> dict[bytes, int]:
        """The dict store itself (read-only use: the record loops look keys up in it);
        only without the C table."""
        if self.table is not None:
            raise TypeError("the C offset table is not a dict")
        return self._offsets

    def update_latest_offset(self, offset: int) -> None:
        self.latest_offset = max(self.latest_offset, offset)

    def clear(self) -> None:
        if self.table is not None:
            self.table.clear()
        self._offsets.clear()
        self.latest_offset = -1
