"""The compression codecs of record batches: none, gzip, snappy, lz4 and zstd.

The records section of a magic-2 batch (everything after the 61-byte header) is
compressed as one unit with the codec named in the low three bits of the batch
attributes.  This module turns such a section into bytes and back.

Formats on the wire, as Kafka's clients write them:

* gzip: an RFC 1952 gzip stream (several concatenated members are accepted).
* snappy: the Java client (and kafka-python) writes the *xerial* framing of
  snappy-java: a 16-byte header (``b"\\x82SNAPPY\\x00"``, version int32, minimum
  compatible version int32), then blocks of ``int32 length + raw snappy block``.
  librdkafka and aiokafka may write one plain raw snappy block instead.  Both are
  decoded; we encode the xerial form, as the Java client does.
* lz4: the LZ4 *frame* format (not the bare block format).  We write independent
  64 KiB blocks and no content size, matching what Kafka's own writer produces.
* zstd: a zstd frame (several frames are accepted).

Every decoder is bounded: output larger than ``max_bytes`` (by default
:data:`MAX_DECOMPRESSED_BYTES`) raises :class:`~wire.exceptions.DecodeError`
before that much memory is committed, so a tiny "decompression bomb" cannot eat the
broker's memory.  Any failure of an underlying library on bytes from a peer is
reported as a ``DecodeError`` too.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard
from kbroker.wire.exceptions import DecodeError

__all__ = [
    "MAX_DECOMPRESSED_BYTES",
    "Compression",
    "UnsupportedCompression",
    "compress",
    "decompress",
]


class Compression(IntEnum):
    """The codec ids of the low three bits of a batch's attributes."""

    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


# Why 64 MiB: the broker accepts at most ``message.max.bytes`` (1 MiB by default)
# of *compressed* batch per partition, and Kafka clients cap a batch's uncompressed
# size with ``batch.size`` / ``max.request.size`` (16 KiB / 1 MiB by default).  Real
# data compresses well under 64x, so 64 MiB leaves ample headroom for legitimate
# batches while bounding what one hostile batch of a few KiB can make us allocate.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")  # magic, version, minimum compatible version
_XERIAL_VERSION = 1
_XERIAL_BLOCK_BYTES = 32 * 1024  # snappy-java's default block size
_INT32 = struct.Struct(">i")

_GZIP_LEVEL = 6  # zlib's default, what java.util.zip.GZIPOutputStream uses
_ZSTD_LEVEL = 3  # zstd's default, what Kafka's client uses
# The largest expansion one zstd input byte can cause: an RLE block is a 3-byte header
# plus 1 byte and expands to at most 128 KiB.  Bounds the input slice size below.
_ZSTD_MAX_RATIO = 128 * 1024 // 4
_ZSTD_MIN_STEP = 64

_zstd_compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
_zstd_decompressor = zstandard.ZstdDecompressor()


# What the codec libraries raise on malformed input (lz4 raises RuntimeError).
_LIBRARY_ERRORS = (
    zlib.error,
    RuntimeError,
    ValueError,
    struct.error,
    zstandard.ZstdError,
    cramjam.DecompressionError,
)


class UnsupportedCompression(DecodeError):
    """The attributes name a codec id that Kafka does not define (5, 6 or 7)."""


def _codec(codec: Compression | int) -> Compression:
    try:
        return Compression(codec)
    except ValueError:
        raise UnsupportedCompression(f"unknown compression codec id {codec}") from None


def compress(codec: Compression | int, data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` in the wire format Kafka's Java client writes for ``codec``."""
    kind = _codec(codec)
    if kind is Compression.NONE:
        return bytes(data)
    if kind is Compression.GZIP:
        comp = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip wrapper
        return comp.compress(data) + comp.flush()
    if kind is Compression.SNAPPY:
        return _xerial_compress(memoryview(data).cast("B"))
    if kind is Compression.LZ4:
        packed: bytes = lz4.frame.compress(
            data,
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,
        )
        return packed
    return _zstd_compressor.compress(data)


def _xerial_compress(data: memoryview) -> bytes:
    parts = [_XERIAL_HEADER.pack(_XERIAL_MAGIC, _XERIAL_VERSION, _XERIAL_VERSION)]
    for start in range(0, len(data), _XERIAL_BLOCK_BYTES):
        block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK_BYTES]))
        parts.append(_INT32.pack(len(block)))
        parts.append(block)
    return b"".join(parts)


def decompress(
    codec: Compression | int,
    data: bytes | bytearray | memoryview,
    max_bytes: int = MAX_DECOMPRESSED_BYTES,
) -> bytes:
    """Decompress a records section; raise ``DecodeError`` on bad input or beyond ``max_bytes``."""
    kind = _codec(codec)
    if kind is Compression.NONE:
        if len(data) > max_bytes:
            raise DecodeError(f"records section of {len(data)} bytes exceeds {max_bytes}")
        return bytes(data)
    try:
        if kind is Compression.GZIP:
            return _gzip_decompress(data, max_bytes)
        if kind is Compression.SNAPPY:
            return _snappy_decompress(memoryview(data).cast("B"), max_bytes)
        if kind is Compression.LZ4:
            return _lz4_decompress(data, max_bytes)
        return _zstd_decompress(data, max_bytes)
    except DecodeError:
        raise
    except _LIBRARY_ERRORS as exc:
        raise DecodeError(f"{kind.name} data is corrupt: {exc}") from exc


def _too_big(kind: str, max_bytes: int) -> DecodeError:
    return DecodeError(f"{kind} data decompresses to more than {max_bytes} bytes")


def _gzip_decompress(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes:
    out = bytearray()
    pending: bytes | bytearray | memoryview = data
    while True:
        dec = zlib.decompressobj(31)
        chunk = dec.decompress(pending, max_bytes + 1 - len(out))
        out += chunk
        if len(out) > max_bytes or (dec.unconsumed_tail and not dec.eof):
            raise _too_big("gzip", max_bytes)
        if not dec.eof:
            raise DecodeError("gzip data is truncated")
        pending = dec.unused_data
        if not pending:
            return bytes(out)


def _snappy_decompress(data: memoryview, max_bytes: int) -> bytes:
    if data[:8] != _XERIAL_MAGIC:
        return _snappy_raw_block(data, max_bytes)
    if len(data) < _XERIAL_HEADER.size:
        raise DecodeError("xerial snappy header is truncated")
    out = bytearray()
    pos = _XERIAL_HEADER.size
    end = len(data)
    while pos < end:
        if end - pos < 4:
            raise DecodeError("xerial snappy block length is truncated")
        (length,) = _INT32.unpack_from(data, pos)
        pos += 4
        if length < 0 or length > end - pos:
            raise DecodeError(f"xerial snappy block length {length} is out of range")
        out += _snappy_raw_block(data[pos : pos + length], max_bytes - len(out))
        pos += length
    return bytes(out)


def _snappy_raw_block(block: memoryview, budget: int) -> bytes:
    # A raw snappy block starts with the uncompressed length as a varint; check it
    # against the budget before letting the library allocate that much.
    if int(cramjam.snappy.decompress_raw_len(block)) > budget:
        raise _too_big("snappy", budget)
    return bytes(cramjam.snappy.decompress_raw(block))


def _lz4_decompress(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes:
    out = bytearray()
    pending: bytes | bytearray | memoryview = data
    while True:
        dec = lz4.frame.LZ4FrameDecompressor()
        out += dec.decompress(pending, max_length=max_bytes + 1 - len(out))
        if len(out) > max_bytes or not dec.needs_input:
            raise _too_big("lz4", max_bytes)
        if not dec.eof:
            raise DecodeError("lz4 frame is truncated")
        pending = dec.unused_data
        if not pending:
            return bytes(out)


def _zstd_decompress(data: bytes | bytearray | memoryview, max_bytes: int) -> bytes:
    # zstd's decompressobj has no output limit, so the input is fed in slices small
    # enough that one slice cannot expand past half the remaining budget.
    view = memoryview(data).cast("B")
    out = bytearray()
    pos = 0
    end = len(view)
    dec = _zstd_decompressor.decompressobj()
    while pos < end:
        step = max(_ZSTD_MIN_STEP, (max_bytes - len(out)) // (2 * _ZSTD_MAX_RATIO))
        chunk = view[pos : pos + step]
        pos += len(chunk)
        out += dec.decompress(chunk)
        if len(out) > max_bytes:
            raise _too_big("zstd", max_bytes)
        if dec.eof:
            pos -= len(dec.unused_data)
            if pos < end:
                dec = _zstd_decompressor.decompressobj()
    if not dec.eof:
        raise DecodeError("zstd frame is truncated")
    return bytes(out)
