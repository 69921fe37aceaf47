"""Decompression of hostile records sections, every codec.

Input: byte 0 picks the codec id (0-7: 5-7 are not Kafka codecs and must raise), the
rest is the compressed section.  Property: ``decompress`` returns at most ``max_bytes``
or raises ``DecodeError``; what it returns compresses and decompresses back unchanged.
"""

from __future__ import annotations

from kbroker.wire.compression import Compression, compress, decompress
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import BATCH_HEADER_SIZE, RecordBatchView

from fuzz.seeds import built_batches, golden_batches

MAX_BYTES = 1 << 20


def prepare() -> None:
    pass


def seeds() -> list[bytes]:
    out = []
    for batch in golden_batches() + built_batches():
        view = RecordBatchView(batch)
        out.append(bytes([view.compression]) + batch[BATCH_HEADER_SIZE:])
    sample = b"kbroker " * 300 + bytes(range(256))
    for codec in Compression:
        packed = compress(codec, sample)
        out.append(bytes([codec]) + packed)
        out.append(bytes([codec]) + packed + packed)  # concatenated frames
    return out


def test_one_input(data: bytes) -> None:
    if not data:
        return
    codec = data[0] & 0x07
    try:
        plain = decompress(codec, data[1:], MAX_BYTES)
    except DecodeError:
        return
    assert len(plain) <= MAX_BYTES, f"{len(plain)} bytes decompressed past the bound"
    assert decompress(codec, compress(codec, plain), MAX_BYTES) == plain, "round trip differs"
