"""The input layout shared by the coordinator targets: a list of internal-topic records.

Entries follow one another: ``flags(1)``, then for a record ``key_length(2) key
value_length(2) value`` (length 0xFFFF: a null value, a tombstone).  ``flags`` bit 7
marks a transaction marker instead (no key or value follow): bits 0-2 are the producer
id, bit 3 says COMMIT.  For a record, bit 6 marks a transactional batch whose producer
id is bits 0-2.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_LENGTH = struct.Struct(">H")
NULL = 0xFFFF
MARKER = 0x80
TRANSACTIONAL = 0x40


@dataclass(frozen=True, slots=True)
class Entry:
    key: bytes | None  # None: a transaction marker
    value: bytes | None
    producer_id: int
    committed: bool = False


def unpack(data: bytes) -> list[Entry]:
    entries = []
    pos = 0
    while pos < len(data):
        flags = data[pos]
        pos += 1
        if flags & MARKER:
            entries.append(Entry(None, None, flags & 7, bool(flags & 8)))
            continue
        if len(data) - pos < 2:
            break
        (klen,) = _LENGTH.unpack_from(data, pos)
        key = data[pos + 2 : pos + 2 + klen]
        pos += 2 + klen
        if len(data) - pos < 2:
            break
        (vlen,) = _LENGTH.unpack_from(data, pos)
        value = None if vlen == NULL else data[pos + 2 : pos + 2 + vlen]
        pos += 2 + (0 if vlen == NULL else vlen)
        producer_id = flags & 7 if flags & TRANSACTIONAL else -1
        entries.append(Entry(key, value, producer_id))
    return entries


def pack(entries: list[Entry]) -> bytes:
    out = bytearray()
    for e in entries:
        if e.key is None:
            out.append(MARKER | (e.producer_id & 7) | (8 if e.committed else 0))
            continue
        out.append(TRANSACTIONAL | (e.producer_id & 7) if e.producer_id >= 0 else 0)
        out += _LENGTH.pack(len(e.key)) + e.key
        if e.value is None:
            out += _LENGTH.pack(NULL)
        else:
            out += _LENGTH.pack(len(e.value)) + e.value
    return bytes(out)
