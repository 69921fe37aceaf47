"""Record batch v2: header view, CRC, in-place patches, walking a blob, records codec."""

from __future__ import annotations

import struct

import crc32c
import pytest
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import (
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    Compression,
    ControlRecordType,
    CorruptRecordBatch,
    LegacyMessageFormat,
    Record,
    RecordBatchView,
    TimestampType,
    batch_magic,
    build_control_batch,
    build_record_batch,
    decode_records,
    iter_batches,
    make_batch,
    parse_control_record,
)


def _sample(**kwargs: object) -> bytearray:
    items = [
        (b"k0", b"v0", [("h", b"1"), ("null", None)], 1_700_000_000_000),
        (None, b"v1", [], 1_700_000_000_007),
        (b"k2", None, [], 1_699_999_999_990),
    ]
    return build_record_batch(items, **kwargs)  # type: ignore[arg-type]


def test_header_fields_read_back() -> None:
    buf = _sample(
        base_offset=42,
        partition_leader_epoch=7,
        producer_id=1234,
        producer_epoch=3,
        base_sequence=10,
        is_transactional=True,
    )
    view = RecordBatchView(buf)
    assert view.base_offset == 42
    assert view.batch_length == len(buf) - LOG_OVERHEAD
    assert view.size_bytes == len(buf)
    assert view.partition_leader_epoch == 7
    assert view.magic == 2
    assert view.attributes == 0x10
    assert view.compression is Compression.NONE
    assert view.timestamp_type is TimestampType.CREATE_TIME
    assert view.is_transactional and not view.is_control and not view.has_delete_horizon
    assert view.last_offset_delta == 2
    assert (view.last_offset, view.next_offset) == (44, 45)
    assert view.base_timestamp == 1_700_000_000_000
    assert view.max_timestamp == 1_700_000_000_007
    assert (view.producer_id, view.producer_epoch) == (1234, 3)
    assert (view.base_sequence, view.last_sequence) == (10, 12)
    assert view.record_count == 3
    assert view.is_valid()
    assert view.crc == view.compute_crc() == crc32c.crc32c(bytes(buf[21:]))


def test_header_layout_matches_the_spec_offsets() -> None:
    buf = _sample(base_offset=0x0102030405060708, producer_id=99)
    assert struct.unpack_from(">q", buf, 0)[0] == 0x0102030405060708
    assert struct.unpack_from(">i", buf, 8)[0] == len(buf) - 12
    assert buf[16] == 2
    assert struct.unpack_from(">q", buf, 43)[0] == 99
    assert struct.unpack_from(">i", buf, 57)[0] == 3
    assert BATCH_HEADER_SIZE == 61


def test_view_over_offset_position_and_memoryview_is_zero_copy() -> None:
    batch = _sample()
    blob = bytearray(b"\xee" * 5) + batch
    view = RecordBatchView(memoryview(blob), 5)
    assert view.position == 5
    assert view.is_valid()
    mv = view.buffer()
    assert isinstance(mv, memoryview) and mv.obj is blob
    assert bytes(mv) == bytes(batch)


@pytest.mark.parametrize(
    ("base", "delta", "expected"),
    [(-1, 5, -1), (0, 0, 0), (10, 4, 14), (2**31 - 1, 1, 0), (2**31 - 3, 5, 2)],
)
def test_last_sequence_wraps_like_kafka(base: int, delta: int, expected: int) -> None:
    buf = build_record_batch(
        [Record(i, 0, None, b"x") for i in range(delta + 1)],
        producer_id=1,
        producer_epoch=0,
        base_sequence=base,
    )
    assert RecordBatchView(buf).last_sequence == expected


def test_patching_offset_and_epoch_keeps_crc_valid() -> None:
    buf = _sample()
    crc_before = RecordBatchView(buf).crc
    view = RecordBatchView(buf)
    view.set_base_offset(1_000_000)
    view.set_partition_leader_epoch(12)
    assert (view.base_offset, view.partition_leader_epoch) == (1_000_000, 12)
    assert view.crc == crc_before and view.is_valid()
    again = RecordBatchView(buf)
    assert (again.base_offset, again.partition_leader_epoch) == (1_000_000, 12)


def test_log_append_time_recomputes_crc() -> None:
    buf = _sample()
    view = RecordBatchView(buf)
    view.set_log_append_time(1_800_000_000_000)
    assert view.timestamp_type is TimestampType.LOG_APPEND_TIME
    assert view.max_timestamp == 1_800_000_000_000
    assert view.is_valid()
    assert RecordBatchView(bytes(buf)).is_valid()
    assert [r.value for r in decode_records(view)] == [b"v0", b"v1", None]


def test_setters_need_a_writable_buffer() -> None:
    view = RecordBatchView(bytes(_sample()))
    with pytest.raises(TypeError):
        view.set_base_offset(5)


def test_flipped_bit_fails_crc() -> None:
    buf = _sample()
    buf[-1] ^= 0x01
    assert not RecordBatchView(buf).is_valid()
    with pytest.raises(CorruptRecordBatch, match="CRC"):
        RecordBatchView(buf).ensure_valid()


def test_view_rejects_short_and_bad_magic() -> None:
    buf = _sample()
    with pytest.raises(CorruptRecordBatch):
        RecordBatchView(buf[:60])
    bad = bytearray(buf)
    bad[16] = 3
    with pytest.raises(CorruptRecordBatch, match="magic 3"):
        RecordBatchView(bad)
    short_len = bytearray(buf)
    struct.pack_into(">i", short_len, 8, 48)
    with pytest.raises(CorruptRecordBatch, match="batch_length"):
        RecordBatchView(short_len)


@pytest.mark.parametrize("magic", [0, 1])
def test_legacy_message_sets_are_recognised(magic: int) -> None:
    # offset int64, size int32, crc int32, magic int8, attributes int8, (timestamp), key, value
    body = struct.pack(">bb", magic, 0) + (b"\0" * 8 if magic else b"") + b"\xff" * 4 + b"\0\0\0\1x"
    legacy = struct.pack(">qiI", 0, len(body) + 4, 0) + body
    assert batch_magic(legacy) == magic
    with pytest.raises(LegacyMessageFormat) as info:
        RecordBatchView(legacy)
    assert info.value.magic == magic
    assert isinstance(info.value, DecodeError)
    with pytest.raises(LegacyMessageFormat):
        list(iter_batches(legacy))


def test_header_only_view_reads_fields_but_not_bytes() -> None:
    buf = _sample(base_offset=9)
    view = RecordBatchView(buf[:BATCH_HEADER_SIZE])
    assert view.base_offset == 9 and view.size_bytes == len(buf)
    assert not view.is_complete and not view.is_valid()
    with pytest.raises(CorruptRecordBatch):
        view.buffer()
    with pytest.raises(CorruptRecordBatch):
        decode_records(view)


def test_iter_batches_walks_and_stops_at_partial_tail() -> None:
    batches = [make_batch([b"a" * n], base_offset=n) for n in range(1, 5)]
    blob = b"".join(batches)
    views = list(iter_batches(blob))
    assert [v.base_offset for v in views] == [1, 2, 3, 4]
    assert all(v.is_valid() for v in views)
    full = len(blob)
    for cut in range(full - len(batches[-1]), full):
        assert [v.base_offset for v in iter_batches(blob[:cut])] == [1, 2, 3]
    assert list(iter_batches(b"")) == []
    assert [v.base_offset for v in iter_batches(blob, len(batches[0]))] == [2, 3, 4]


def test_iter_batches_raises_on_impossible_length() -> None:
    blob = bytearray(make_batch([b"x"]) + make_batch([b"y"]))
    struct.pack_into(">i", blob, len(blob) // 2 + 8, 10)
    it = iter_batches(blob)
    assert next(it).is_valid()
    with pytest.raises(CorruptRecordBatch):
        next(it)


def test_records_round_trip_every_codec() -> None:
    values = [bytes([i]) * (i * 37) for i in range(50)]
    for codec in Compression:
        buf = make_batch(values, [str(i).encode() for i in range(50)], compression=codec)
        view = RecordBatchView(buf)
        assert view.compression is codec and view.is_valid()
        decoded = decode_records(view)
        assert [r.value for r in decoded] == values
        assert [r.offset_delta for r in decoded] == list(range(50))


def test_tuple_records_get_relative_timestamps() -> None:
    view = RecordBatchView(_sample())
    records = decode_records(view)
    assert [view.base_timestamp + r.timestamp_delta for r in records] == [
        1_700_000_000_000,
        1_700_000_000_007,
        1_699_999_999_990,
    ]
    assert records[0].headers == [("h", b"1"), ("null", None)]


def test_empty_batch() -> None:
    view = RecordBatchView(build_record_batch([]))
    assert view.record_count == 0 and view.size_bytes == BATCH_HEADER_SIZE
    assert view.base_timestamp == view.max_timestamp == -1
    assert decode_records(view) == []


def test_record_count_mismatch_is_corrupt() -> None:
    buf = make_batch([b"a", b"b"])
    struct.pack_into(">i", buf, 57, 3)
    with pytest.raises(CorruptRecordBatch):
        decode_records(RecordBatchView(buf))
    struct.pack_into(">i", buf, 57, 1)
    with pytest.raises(CorruptRecordBatch, match="left over"):
        decode_records(RecordBatchView(buf))
    struct.pack_into(">i", buf, 57, 2**31 - 1)
    with pytest.raises(CorruptRecordBatch, match="cannot fit"):
        decode_records(RecordBatchView(buf))


def test_unknown_codec_id_is_corrupt() -> None:
    buf = make_batch([b"a"])
    buf[22] |= 0x07
    with pytest.raises(CorruptRecordBatch, match="codec"):
        RecordBatchView(buf).compression  # noqa: B018
    with pytest.raises(CorruptRecordBatch):
        decode_records(RecordBatchView(buf))


@pytest.mark.parametrize("kind", list(ControlRecordType))
def test_control_batch_round_trip(kind: ControlRecordType) -> None:
    buf = build_control_batch(
        kind, producer_id=77, producer_epoch=4, coordinator_epoch=9, timestamp_ms=123, base_offset=5
    )
    view = RecordBatchView(buf)
    assert view.is_control and view.is_transactional and view.is_valid()
    assert (view.producer_id, view.producer_epoch, view.base_sequence) == (77, 4, -1)
    (record,) = decode_records(view)
    assert record.key == struct.pack(">hh", 0, kind)
    assert record.value == struct.pack(">hi", 0, 9)
    assert parse_control_record(record) == (kind, 9)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (None, b"\0\0\0\0\0\1"),
        (b"\0\0", b"\0\0\0\0\0\1"),
        (b"\0\0\0\7", b"\0\0\0\0\0\1"),
        (b"\xff\xff\0\0", b"\0\0\0\0\0\1"),
        (b"\0\0\0\1", None),
        (b"\0\0\0\1", b"\0\0\0"),
    ],
)
def test_bad_control_records_are_corrupt(key: bytes | None, value: bytes | None) -> None:
    with pytest.raises(CorruptRecordBatch):
        parse_control_record(Record(0, 0, key, value, []))
