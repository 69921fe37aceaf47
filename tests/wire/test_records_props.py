"""Property tests for record batches: round trips, and mutated bytes only ever fail cleanly."""

from __future__ import annotations

import contextlib
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from kbroker.wire._records_varint import read_varint, varint_size, write_varint
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    Compression,
    CorruptRecordBatch,
    Record,
    RecordBatchView,
    build_record_batch,
    decode_records,
    iter_batches,
)

_headers = st.lists(st.tuples(st.text(max_size=12), st.none() | st.binary(max_size=30)), max_size=4)
_records = st.lists(
    st.builds(
        Record,
        offset_delta=st.integers(min_value=0, max_value=2**31 - 1),
        timestamp_delta=st.integers(min_value=-(2**40), max_value=2**40),
        key=st.none() | st.binary(max_size=50),
        value=st.none() | st.binary(max_size=300),
        headers=_headers,
        attributes=st.integers(min_value=0, max_value=255),
    ),
    max_size=15,
)
_batch_kwargs = st.fixed_dictionaries(
    {
        "base_offset": st.integers(min_value=0, max_value=2**62),
        "base_timestamp": st.integers(min_value=0, max_value=2**45),
        "compression": st.sampled_from(list(Compression)),
        "producer_id": st.integers(min_value=-1, max_value=2**40),
        "producer_epoch": st.integers(min_value=-1, max_value=2**15 - 1),
        "base_sequence": st.integers(min_value=-1, max_value=2**31 - 1),
        "is_transactional": st.booleans(),
        "partition_leader_epoch": st.integers(min_value=-1, max_value=2**31 - 1),
    }
)


@settings(max_examples=150, deadline=None)
@given(records=_records, kwargs=_batch_kwargs)
def test_build_decode_round_trip(records: list[Record], kwargs: dict[str, object]) -> None:
    buf = build_record_batch(records, **kwargs)  # type: ignore[arg-type]
    view = RecordBatchView(buf)
    assert view.is_valid()
    assert view.size_bytes == len(buf)
    assert view.record_count == len(records)
    for name, expected in kwargs.items():
        assert getattr(view, name) == expected
    assert decode_records(view) == records
    if records:
        assert view.last_offset_delta == max(r.offset_delta for r in records)
        assert view.max_timestamp == view.base_timestamp + max(r.timestamp_delta for r in records)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_records, st.sampled_from(list(Compression))), min_size=1, max_size=4))
def test_blob_of_batches_walks_back(batches: list[tuple[list[Record], Compression]]) -> None:
    built = [
        build_record_batch(r, compression=c, base_offset=i) for i, (r, c) in enumerate(batches)
    ]
    blob = b"".join(built)
    views = list(iter_batches(blob))
    assert [v.base_offset for v in views] == list(range(len(batches)))
    assert [decode_records(v) for v in views] == [r for r, _ in batches]
    # cut anywhere inside the last batch: only the whole ones come back
    cut = len(blob) - len(built[-1]) // 2
    assert len(list(iter_batches(blob[:cut]))) == len(batches) - 1


def _inspect(buf: bytes | bytearray) -> int:
    """What a broker does with received batches; may only raise CorruptRecordBatch."""
    seen = 0
    for view in iter_batches(buf):
        view.is_valid()
        view.last_sequence  # noqa: B018
        decode_records(view)
        seen += 1
    return seen


@settings(max_examples=400, deadline=None)
@given(
    records=_records,
    codec=st.sampled_from(list(Compression)),
    position=st.integers(min_value=0),
    xor=st.integers(min_value=1, max_value=255),
)
def test_mutated_batch_fails_crc_or_raises_corrupt(
    records: list[Record], codec: Compression, position: int, xor: int
) -> None:
    buf = build_record_batch(records, compression=codec)
    position %= len(buf)
    buf[position] ^= xor
    try:
        views = list(iter_batches(buf))
    except CorruptRecordBatch:
        return
    if not views:
        assert position in range(8, 12)  # batch_length grew: now a partial batch
        return
    (view,) = views
    # the CRC field itself or bytes it covers (>= 17), or batch_length shrank so the CRC
    # now covers fewer bytes (8..11)
    if position >= 17 or position in range(8, 12):
        assert not view.is_valid()
    else:  # base_offset / leader epoch: outside the CRC by design
        assert view.is_valid()
    with contextlib.suppress(CorruptRecordBatch):
        assert len(decode_records(view)) == view.record_count


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), count=st.integers(min_value=-5, max_value=50))
def test_garbage_records_section_raises_corrupt_only(data: bytes, count: int) -> None:
    buf = build_record_batch([])
    buf += data
    struct.pack_into(">ii", buf, 8, len(buf) - 12, 0)
    struct.pack_into(">i", buf, 57, count)
    try:
        records = decode_records(RecordBatchView(buf))
    except CorruptRecordBatch:
        return
    assert len(records) == count


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=150))
def test_garbage_blob_raises_corrupt_only(data: bytes) -> None:
    try:
        seen = _inspect(data)
    except CorruptRecordBatch:
        return
    assert seen <= len(data) // BATCH_HEADER_SIZE


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_varint_round_trip(value: int) -> None:
    out = bytearray()
    write_varint(out, value)
    assert len(out) == varint_size(value)
    assert read_varint(bytes(out), 0) == (value, len(out))


def test_header_size_constant() -> None:
    assert len(build_record_batch([])) == BATCH_HEADER_SIZE
