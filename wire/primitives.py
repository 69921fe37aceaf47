"""Kafka's primitive wire types: readers and writers.

Readers take ``(buf, pos)`` and return ``(value, new_pos)``; ``buf`` is a
``memoryview`` (or ``bytes``) of the whole message.  Every length read from the
wire is checked against the bytes that remain *before* anything is allocated,
so a hostile length costs nothing.  Writers append to a ``bytearray``.

Fixed-width integers are not here: the codec packs and unpacks runs of them
with precompiled :class:`struct.Struct` objects.
"""

from __future__ import annotations

import struct
from uuid import UUID

from kbroker.wire.exceptions import DecodeError, EncodeError

Buf = bytes | bytearray | memoryview

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
pack_i16 = _I16.pack
pack_i32 = _I32.pack
unpack_i16 = _I16.unpack_from
unpack_i32 = _I32.unpack_from

_ZERO_UUID_BYTES = bytes(16)


def short(what: str, need: int, have: int) -> DecodeError:
    return DecodeError(f"{what}: needs {need} bytes but only {have} remain")


# -- varints ---------------------------------------------------------------------------


def read_uvarint(buf: Buf, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 5 bytes (Kafka's ``readUnsignedVarint``)."""
    mv = buf
    try:
        b = mv[pos]
        if b < 0x80:
            return b, pos + 1
        value = b & 0x7F
        shift = 7
        pos += 1
        while True:
            b = mv[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos
            shift += 7
            if shift > 28:
                raise DecodeError("unsigned varint is longer than 5 bytes")
    except IndexError:
        raise DecodeError("truncated unsigned varint") from None


def read_uvarlong(buf: Buf, pos: int) -> tuple[int, int]:
    """An unsigned varint of at most 10 bytes."""
    value = 0
    shift = 0
    try:
        while True:
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos
            shift += 7
            if shift > 63:
                raise DecodeError("unsigned varlong is longer than 10 bytes")
    except IndexError:
        raise DecodeError("truncated unsigned varlong") from None


def read_varint(buf: Buf, pos: int) -> tuple[int, int]:
    """A zigzag-encoded signed 32-bit varint."""
    u, pos = read_uvarint(buf, pos)
    u &= 0xFFFFFFFF
    return (u >> 1) ^ -(u & 1), pos


def read_varlong(buf: Buf, pos: int) -> tuple[int, int]:
    """A zigzag-encoded signed 64-bit varint."""
    u, pos = read_uvarlong(buf, pos)
    u &= 0xFFFFFFFFFFFFFFFF
    return (u >> 1) ^ -(u & 1), pos


_SMALL_UVARINTS = [bytes([i]) for i in range(128)]


def uvarint_bytes(value: int) -> bytes:
    if 0 <= value < 128:
        return _SMALL_UVARINTS[value]
    if value < 0 or value > 0xFFFFFFFFFFFFFFFF:
        raise EncodeError(f"unsigned varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def uvarint_size(value: int) -> int:
    n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


def write_uvarint(out: bytearray, value: int) -> None:
    if 0 <= value < 128:
        out.append(value)
    else:
        out += uvarint_bytes(value)


def write_varint(out: bytearray, value: int) -> None:
    if not -(2**31) <= value < 2**31:
        raise EncodeError(f"varint out of range: {value}")
    write_uvarint(out, ((value << 1) ^ (value >> 31)) & 0xFFFFFFFF)


def write_varlong(out: bytearray, value: int) -> None:
    if not -(2**63) <= value < 2**63:
        raise EncodeError(f"varlong out of range: {value}")
    write_uvarint(out, ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF)


# -- lengths ---------------------------------------------------------------------------


def read_array_len(buf: Buf, pos: int, compact: bool, what: str) -> tuple[int, int]:
    """Element count of an array (-1 for null), checked against the remaining bytes.

    Every element takes at least one byte in practice, so a count larger than the
    remaining bytes is rejected before any list is built.
    """
    if compact:
        n, pos = read_uvarint(buf, pos)
        n -= 1
    else:
        try:
            (n,) = unpack_i32(buf, pos)
        except struct.error:
            raise short(what, 4, len(buf) - pos) from None
        pos += 4
    if n < -1:
        raise DecodeError(f"{what}: negative array length {n}")
    if n > len(buf) - pos:
        raise DecodeError(f"{what}: array length {n} exceeds the {len(buf) - pos} bytes left")
    return n, pos


def _read_len(buf: Buf, pos: int, compact: bool, wide: bool, what: str) -> tuple[int, int]:
    if compact:
        n, pos = read_uvarint(buf, pos)
        return n - 1, pos
    try:
        (n,) = (unpack_i32 if wide else unpack_i16)(buf, pos)
    except struct.error:
        raise short(what, 4 if wide else 2, len(buf) - pos) from None
    return n, pos + (4 if wide else 2)


def read_string(
    buf: Buf, pos: int, compact: bool, nullable: bool, what: str
) -> tuple[str | None, int]:
    n, pos = _read_len(buf, pos, compact, False, what)
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise DecodeError(f"{what}: invalid string length {n}")
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"{what}: string length {n} exceeds the {len(buf) - pos} bytes left")
    try:
        return str(buf[pos:end], "utf-8"), end
    except UnicodeDecodeError as e:
        raise DecodeError(f"{what}: string is not valid UTF-8 ({e.reason})") from None


def read_bytes(
    buf: Buf, pos: int, compact: bool, nullable: bool, what: str, zero_copy: bool = False
) -> tuple[bytes | memoryview | None, int]:
    n, pos = _read_len(buf, pos, compact, True, what)
    if n < 0:
        if n == -1 and nullable:
            return None, pos
        raise DecodeError(f"{what}: invalid bytes length {n}")
    end = pos + n
    if end > len(buf):
        raise DecodeError(f"{what}: bytes length {n} exceeds the {len(buf) - pos} bytes left")
    chunk = buf[pos:end]
    if zero_copy and isinstance(chunk, memoryview):
        return chunk, end
    return bytes(chunk), end


def read_uuid(buf: Buf, pos: int, what: str) -> tuple[UUID, int]:
    end = pos + 16
    if end > len(buf):
        raise short(what, 16, len(buf) - pos)
    return UUID(bytes=bytes(buf[pos:end])), end


# -- writers ---------------------------------------------------------------------------


def write_string(out: bytearray, value: str | None, compact: bool, nullable: bool, what: str) -> None:
    if value is None:
        if not nullable:
            raise EncodeError(f"{what}: null is not allowed in this version")
        if compact:
            out.append(0)
        else:
            out += b"\xff\xff"
        return
    data = value.encode("utf-8")
    n = len(data)
    if compact:
        write_uvarint(out, n + 1)
    elif n > 0x7FFF:
        raise EncodeError(f"{what}: string of {n} bytes is longer than 32767")
    else:
        out += pack_i16(n)
    out += data


def write_bytes(
    out: bytearray, value: Buf | None, compact: bool, nullable: bool, what: str
) -> None:
    if value is None:
        if not nullable:
            raise EncodeError(f"{what}: null is not allowed in this version")
        if compact:
            out.append(0)
        else:
            out += b"\xff\xff\xff\xff"
        return
    n = len(value)
    if compact:
        write_uvarint(out, n + 1)
    else:
        out += pack_i32(n)
    out += value


def write_uuid(out: bytearray, value: UUID, what: str) -> None:
    try:
        out += value.bytes
    except AttributeError:
        raise EncodeError(f"{what}: expected a uuid.UUID, got {type(value).__name__}") from None


def write_array_len(out: bytearray, n: int, compact: bool) -> None:
    """Write an array length; ``n == -1`` means null."""
    if compact:
        write_uvarint(out, n + 1)
    else:
        out += pack_i32(n)
