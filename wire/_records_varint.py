"""Zigzag varints as used inside v2 records (private helper of ``wire.records``).

Kafka's record fields use the protobuf zigzag encoding: ``varint`` for 32-bit and
``varlong`` for 64-bit values, at most 5 and 10 bytes.  Readers take ``bytes`` (indexing
bytes is the fastest path in CPython) and return ``(value, next_position)``; running off
the end raises ``IndexError``, which the caller turns into its own decode error.
"""

from __future__ import annotations

from kbroker.wire.exceptions import DecodeError

_MAX_VARLONG_BYTES = 10
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read one zigzag varint/varlong at ``pos``; return ``(value, next_pos)``."""
    b = data[pos]
    if b < 0x80:
        return (b >> 1) ^ -(b & 1), pos + 1
    result = b & 0x7F
    shift = 7
    limit = pos + _MAX_VARLONG_BYTES
    pos += 1
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if pos >= limit:
            raise DecodeError("varint is longer than 10 bytes")


def write_varint(out: bytearray, value: int) -> None:
    """Append ``value`` (a signed 64-bit int) as a zigzag varint."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"{value} does not fit a varlong")
    z = (value << 1) ^ (value >> 63)
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def varint_size(value: int) -> int:
    """The number of bytes ``write_varint`` uses for ``value``."""
    z = (value << 1) ^ (value >> 63)
    size = 1
    while z >= 0x80:
        z >>= 7
        size += 1
    return size
