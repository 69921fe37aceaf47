"""wire.compression: round trips, the formats other clients write, bombs and corrupt input."""

from __future__ import annotations

import gzip
import struct
import zlib

import cramjam
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from kbroker.wire.compression import (
    MAX_DECOMPRESSED_BYTES,
    Compression,
    UnsupportedCompression,
    compress,
    decompress,
)
from kbroker.wire.exceptions import DecodeError

CODECS = list(Compression)
COMPRESSED = [c for c in Compression if c is not Compression.NONE]
SAMPLE = b"".join(b"record %d with some repetitive payload; " % i for i in range(3000))


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip(codec: Compression) -> None:
    packed = compress(codec, SAMPLE)
    if codec is not Compression.NONE:
        assert len(packed) < len(SAMPLE) // 2
    assert decompress(codec, packed) == SAMPLE
    assert decompress(codec, memoryview(bytearray(packed))) == SAMPLE


@settings(max_examples=60, deadline=None)
@given(codec=st.sampled_from(CODECS), data=st.binary(max_size=5000))
def test_round_trip_arbitrary(codec: Compression, data: bytes) -> None:
    assert decompress(codec, compress(codec, data)) == data


def test_snappy_is_xerial_framed_in_32k_blocks() -> None:
    packed = compress(Compression.SNAPPY, SAMPLE)
    assert packed[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    pos, blocks, out = 16, 0, b""
    while pos < len(packed):
        (length,) = struct.unpack_from(">i", packed, pos)
        out += bytes(cramjam.snappy.decompress_raw(packed[pos + 4 : pos + 4 + length]))
        pos += 4 + length
        blocks += 1
    assert out == SAMPLE
    assert blocks == -(-len(SAMPLE) // (32 * 1024))


def test_plain_raw_snappy_is_accepted() -> None:
    raw = bytes(cramjam.snappy.compress_raw(SAMPLE))
    assert decompress(Compression.SNAPPY, raw) == SAMPLE


def test_foreign_encoders_are_read() -> None:
    assert decompress(Compression.GZIP, gzip.compress(SAMPLE)) == SAMPLE
    assert decompress(Compression.GZIP, gzip.compress(b"ab") + gzip.compress(b"cd")) == b"abcd"
    # lz4 with linked blocks, a stored content size and a content checksum
    linked = lz4.frame.compress(SAMPLE, block_linked=True, content_checksum=True)
    assert decompress(Compression.LZ4, linked) == SAMPLE
    streamed = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    zst = streamed.compress(SAMPLE) + streamed.flush()
    assert decompress(Compression.ZSTD, zst) == SAMPLE
    two = zstandard.ZstdCompressor().compress(b"ab") + zstandard.ZstdCompressor().compress(b"cd")
    assert decompress(Compression.ZSTD, two) == b"abcd"


def test_lz4_is_an_lz4_frame_with_independent_blocks() -> None:
    packed = compress(Compression.LZ4, SAMPLE)
    assert packed[:4] == b"\x04\x22\x4d\x18"  # LZ4 frame magic, little-endian 0x184D2204
    flg = packed[4]
    assert flg & 0x20  # block independence
    assert not flg & 0x08  # no content size
    assert lz4.frame.decompress(packed) == SAMPLE


@pytest.mark.parametrize("codec", COMPRESSED)
def test_limit_is_enforced_exactly(codec: Compression) -> None:
    packed = compress(codec, SAMPLE)
    assert decompress(codec, packed, max_bytes=len(SAMPLE)) == SAMPLE
    with pytest.raises(DecodeError, match="more than"):
        decompress(codec, packed, max_bytes=len(SAMPLE) - 1)


def test_uncompressed_limit() -> None:
    with pytest.raises(DecodeError):
        decompress(Compression.NONE, b"x" * 11, max_bytes=10)


def _bomb(codec: Compression) -> bytes:
    """A small input that expands to 16 MiB past the default limit."""
    chunk = b"\0" * (1 << 22)
    n = (MAX_DECOMPRESSED_BYTES >> 22) + 4
    if codec is Compression.GZIP:
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        return b"".join(comp.compress(chunk) for _ in range(n)) + comp.flush()
    if codec is Compression.LZ4:
        lzc = lz4.frame.LZ4FrameCompressor(block_linked=False)
        return lzc.begin() + b"".join(lzc.compress(chunk) for _ in range(n)) + lzc.flush()
    if codec is Compression.ZSTD:
        zc = zstandard.ZstdCompressor(level=1, write_content_size=False).compressobj()
        return b"".join(zc.compress(chunk) for _ in range(n)) + zc.flush()
    # snappy: a raw block claims 2**32 - 1 bytes of output in its length preamble
    return b"\xff\xff\xff\xff\x0f" + b"\0" * 16


@pytest.mark.parametrize("codec", COMPRESSED)
def test_decompression_bomb_is_refused(codec: Compression) -> None:
    bomb = _bomb(codec)
    assert len(bomb) < 5 * 1024 * 1024
    with pytest.raises(DecodeError, match="more than"):
        decompress(codec, bomb)


def test_xerial_blocks_share_the_budget() -> None:
    block = bytes(cramjam.snappy.compress_raw(b"\0" * 1000))
    framed = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    framed += (struct.pack(">i", len(block)) + block) * 3
    assert decompress(Compression.SNAPPY, framed, max_bytes=3000) == b"\0" * 3000
    with pytest.raises(DecodeError, match="more than"):
        decompress(Compression.SNAPPY, framed, max_bytes=2999)


@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_input_raises(codec: Compression) -> None:
    packed = compress(codec, SAMPLE)
    for cut in (0, 1, len(packed) // 2, len(packed) - 1):
        with pytest.raises(DecodeError):
            decompress(codec, packed[:cut])


@pytest.mark.parametrize(
    "framed",
    [
        b"\x82SNAPPY\x00\0\0\0\1",  # header cut short
        b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + b"\0\0",  # block length cut short
        b"\x82SNAPPY\x00" + struct.pack(">iii", 1, 1, 100) + b"abc",  # block past the end
        b"\x82SNAPPY\x00" + struct.pack(">iii", 1, 1, -5),  # negative block length
    ],
)
def test_bad_xerial_framing_raises(framed: bytes) -> None:
    with pytest.raises(DecodeError):
        decompress(Compression.SNAPPY, framed)


@pytest.mark.parametrize("codec_id", [5, 6, 7, -1])
def test_unknown_codec(codec_id: int) -> None:
    with pytest.raises(UnsupportedCompression):
        decompress(codec_id, b"abc")
    with pytest.raises(DecodeError):
        compress(codec_id, b"abc")


@settings(max_examples=300, deadline=None)
@given(codec=st.sampled_from(COMPRESSED), data=st.binary(max_size=300))
def test_garbage_raises_decode_error_only(codec: Compression, data: bytes) -> None:
    try:
        out = decompress(codec, data, max_bytes=1 << 20)
    except DecodeError:
        return
    assert len(out) <= 1 << 20


@settings(max_examples=200, deadline=None)
@given(
    codec=st.sampled_from(COMPRESSED),
    data=st.binary(min_size=1, max_size=2000),
    where=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
)
def test_mutated_compressed_data_raises_decode_error_only(
    codec: Compression, data: bytes, where: int, bit: int
) -> None:
    packed = bytearray(compress(codec, data))
    packed[where % len(packed)] ^= 1 << bit
    try:
        out = decompress(codec, bytes(packed), max_bytes=1 << 20)
    except DecodeError:
        return
    # Some flips survive (gzip/lz4 header bits, snappy literals): output stays bounded.
    assert isinstance(out, bytes) and len(out) <= 1 << 20


def test_default_limit_is_generous_but_bounded() -> None:
    assert 16 * 1024 * 1024 <= MAX_DECOMPRESSED_BYTES <= 256 * 1024 * 1024
