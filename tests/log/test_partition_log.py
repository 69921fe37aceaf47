"""PartitionLog: append, read, indexes, rolling, offsets, validation, durability knobs."""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import replace

import crc32c
import pytest
from kbroker.log import AppendOrigin, LogConfig
from kbroker.log.errors import (
    CorruptBatchError,
    InvalidRecordError,
    LogStorageError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
    RecordTooLargeError,
    UnsupportedMagicError,
)
from kbroker.log.partition_log import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP
from kbroker.wire.records import RecordBatchView, TimestampType, build_control_batch, iter_batches


def _recrc(b: bytes) -> bytes:
    return b[:17] + struct.pack(">I", crc32c.crc32c(b[21:])) + b[21:]


def test_append_assigns_contiguous_offsets_and_keeps_bytes(open_log, h):
    log = open_log()
    sent = [h.batch(3), h.batch(1), h.batch(5)]
    results = [log.append(b, leader_epoch=7, now_ms=1) for b in sent]
    assert [(r.base_offset, r.last_offset) for r in results] == [(0, 2), (3, 3), (4, 8)]
    assert log.log_end_offset == log.high_watermark == 9
    stored = h.all_batches(log)
    for (base, _, raw), original in zip(stored, sent):
        expect = bytearray(original)
        struct.pack_into(">q", expect, 0, base)
        struct.pack_into(">i", expect, 12, 7)
        assert raw == bytes(expect)  # only base offset and leader epoch patched
        assert RecordBatchView(raw).is_valid()


def test_the_callers_buffer_is_not_modified(open_log, h):
    log = open_log()
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    b = h.batch(2)
    before = bytes(b)
    log.append(memoryview(b), leader_epoch=0, now_ms=0)
    assert bytes(b) == before


def test_read_from_inside_a_batch_returns_the_whole_batch(open_log, h):
    log = open_log()
    log.append(h.batch(4), leader_epoch=0, now_ms=0)
    log.append(h.batch(4), leader_epoch=0, now_ms=0)
    for offset in range(4, 8):
        s = log.read(offset, 10_000)
        views = list(iter_batches(s.records))
        assert views[0].base_offset == 4 and s.first_offset == 4 and s.next_offset == 8


def test_read_limits(open_log, h):
    log = open_log(LogConfig(index_interval_bytes=100))
    for _ in range(10):
        log.append(h.batch(2, size=50), leader_epoch=0, now_ms=0)
    size = len(h.batch(2, size=50))
    s = log.read(0, size * 3 + 10)
    assert len(s.records) == size * 3 and s.next_offset == 6
    s = log.read(0, 5)  # min_one_batch: the first batch whole
    assert len(s.records) == size
    assert log.read(0, 5, min_one_batch=False).records == b""
    s = log.read(0, 1 << 20, max_offset=7)  # batches starting before 7: 0,2,4,6
    assert s.next_offset == 8
    assert log.read(20, 100).records == b""
    with pytest.raises(OffsetOutOfRangeError):
        log.read(21, 100)
    with pytest.raises(OffsetOutOfRangeError):
        log.read(-1, 100)


def test_reads_cross_segments_and_index_agrees_with_scan(open_log, h):
    log = open_log()
    for i in range(200):
        log.append(h.batch(1 + i % 3, size=10 + i % 50), leader_epoch=0, now_ms=0)
    assert len(log.segments) > 3
    batches = h.all_batches(log)
    for base, last, raw in batches:
        for offset in (base, last):
            s = log.read(offset, 1)
            assert bytes(s.records) == raw
    assert h.read_all(log) == b"".join(raw for _, _, raw in batches)
    for seg in log.segments:  # every index entry points at the start of its batch
        for off, pos in zip(seg.index.keys, seg.index.values):
            assert RecordBatchView(os.pread(seg.fd, 61, pos)).base_offset == off


def test_roll_by_size_time_and_index_size(open_log, h):
    log = open_log(LogConfig(segment_bytes=1000, segment_ms=100))
    one = len(h.batch(1, size=100))
    for _ in range(1000 // one + 1):
        log.append(h.batch(1, size=100), leader_epoch=0, now_ms=0)
    assert len(log.segments) == 2 and log.segments[0].size_bytes <= 1000
    log.maybe_roll(50)
    assert len(log.segments) == 2
    log.maybe_roll(10_000)
    assert len(log.segments) == 3
    log.maybe_roll(20_000)  # an empty active segment never rolls
    assert len(log.segments) == 3
    log2 = open_log(LogConfig(segment_index_bytes=16, index_interval_bytes=0))
    for _ in range(6):
        log2.append(h.batch(1), leader_epoch=0, now_ms=0)
    assert len(log2.segments) >= 2


@pytest.mark.parametrize(
    "mangle, error",
    [
        (lambda b: b[:-1], CorruptBatchError),  # declared size exceeds the data
        (lambda b: b + b"\x00" * 10, CorruptBatchError),  # trailing bytes
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), CorruptBatchError),  # CRC
        (lambda b: b[:16] + b"\x01" + b[17:], UnsupportedMagicError),
        (lambda b: b[:16] + b"\x07" + b[17:], CorruptBatchError),
        (lambda b: _recrc(b[:57] + struct.pack(">i", 5) + b[61:]), InvalidRecordError),  # count
    ],
)
def test_bad_batches_are_refused_and_nothing_is_written(open_log, h, mangle, error):
    log = open_log()
    log.append(h.batch(2), leader_epoch=0, now_ms=0)
    good = bytes(h.batch(3))
    size = log.active_segment.size_bytes
    with pytest.raises(error):
        log.append(good + mangle(good), leader_epoch=0, now_ms=0)  # the good one is not written
    assert log.log_end_offset == 2 and log.active_segment.size_bytes == size
    assert os.path.getsize(log.active_segment.log_path) == size


def test_an_empty_append_is_refused(open_log):
    with pytest.raises(InvalidRecordError):
        open_log().append(b"", leader_epoch=0, now_ms=0)


def test_size_limits(open_log, h):
    log = open_log(LogConfig(max_message_bytes=200, segment_bytes=1000))
    with pytest.raises(RecordTooLargeError):
        log.append(h.batch(1, size=300), leader_epoch=0, now_ms=0)
    with pytest.raises(RecordBatchTooLargeError):
        log.append(
            b"".join(bytes(h.batch(1, size=100)) for _ in range(10)), leader_epoch=0, now_ms=0
        )
    assert log.log_end_offset == 0


def test_control_batches_only_from_the_coordinator(open_log):
    log = open_log()
    marker = build_control_batch(
        1, producer_id=5, producer_epoch=0, coordinator_epoch=0, timestamp_ms=1
    )
    with pytest.raises(InvalidRecordError):
        log.append(marker, leader_epoch=0, now_ms=0)
    r = log.append(marker, leader_epoch=0, now_ms=0, origin=AppendOrigin.COORDINATOR)
    assert r.base_offset == 0 and log.log_end_offset == 1


def test_log_append_time(open_log, h):
    log = open_log(replace(LogConfig(), message_timestamp_type="LogAppendTime"))
    r = log.append(h.batch(2, ts=5), leader_epoch=0, now_ms=123456)
    assert r.log_append_time_ms == 123456
    v = RecordBatchView(bytes(log.read(0, 1000).records))
    assert v.timestamp_type == TimestampType.LOG_APPEND_TIME and v.max_timestamp == 123456
    assert v.is_valid()
    assert log.offset_for_timestamp(100000).offset == 0


def test_list_offsets(open_log, h):
    log = open_log(LogConfig(segment_bytes=300, index_interval_bytes=64))
    assert log.offset_for_timestamp(0) is None
    assert log.offset_for_timestamp(MAX_TIMESTAMP) is None
    timestamps = [10, 20, 20, 15, 40, 50, 45, 60, 70, 80]
    for ts in timestamps:
        log.append(h.batch(2, ts=ts), leader_epoch=2, now_ms=0)
    assert len(log.segments) > 2
    for target in range(0, 90, 5):
        expect = next(((ts, 2 * i) for i, ts in enumerate(timestamps) if ts >= target), None)
        got = log.offset_for_timestamp(target)
        assert (None if got is None else (got.timestamp, got.offset)) == expect, target
    assert log.offset_for_timestamp(LATEST_TIMESTAMP).offset == 20
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP).offset == 0
    top = log.offset_for_timestamp(MAX_TIMESTAMP)
    assert (top.timestamp, top.offset, top.leader_epoch) == (80, 18, 2)
    log.delete_records_before(9)
    assert log.offset_for_timestamp(0).offset == 9  # nothing below the log start
    assert log.offset_for_timestamp(EARLIEST_TIMESTAMP).offset == 9


def test_record_level_timestamp_lookup_in_one_batch(open_log):
    from kbroker.wire.records import build_record_batch

    log = open_log()
    log.append(
        build_record_batch([(None, b"a", [], 10), (None, b"b", [], 30), (None, b"c", [], 20)]),
        leader_epoch=0,
        now_ms=0,
    )
    assert log.offset_for_timestamp(25).offset == 1
    assert log.offset_for_timestamp(MAX_TIMESTAMP).offset == 1


def test_delete_records_and_retention(open_log, h):
    log = open_log(LogConfig(segment_bytes=500, retention_ms=1000, file_delete_delay_ms=0))
    for i in range(30):
        log.append(h.batch(1, size=50, ts=i * 100), leader_epoch=0, now_ms=i * 100)
    n_segments = len(log.segments)
    assert log.delete_records_before(3) == 3 and log.log_start_offset == 3
    with pytest.raises(OffsetOutOfRangeError):
        log.read(2, 100)
    assert bytes(log.read(3, 1).records) == [raw for b, _, raw in h.all_batches(log) if b == 3][0]
    with pytest.raises(OffsetOutOfRangeError):
        log.delete_records_before(31)
    deleted = log.enforce_retention(now_ms=2000)  # segments with max ts < 1000
    assert deleted > 0 and len(log.segments) == n_segments - deleted
    assert all(s.max_timestamp >= 1000 for s in log.segments[:-1])
    assert log.log_start_offset == log.segments[0].base_offset
    assert not [f for f in h.files(log.directory) if f.endswith(".deleted")]
    # everything expired: the active segment is rolled, then deleted; offsets continue
    log.enforce_retention(now_ms=10**9)
    assert log.log_start_offset == log.log_end_offset == 30 and len(log.segments) == 1
    assert log.append(h.batch(1), leader_epoch=0, now_ms=10**9).base_offset == 30


def test_retention_bytes(open_log, h):
    log = open_log(LogConfig(segment_bytes=500, retention_bytes=1000, retention_ms=-1))
    for _ in range(40):
        log.append(h.batch(1, size=50), leader_epoch=0, now_ms=0)
    log.enforce_retention(0)
    assert log.size_bytes - log.segments[0].size_bytes < 1000 <= log.size_bytes + 500
    assert log.log_start_offset == log.segments[0].base_offset > 0


def test_leader_epoch_cache(open_log, h):
    log = open_log()
    for epoch in (1, 1, 3, 3, 5):
        log.append(h.batch(2), leader_epoch=epoch, now_ms=0)
    assert log.latest_epoch == 5
    e = log.end_offset_for_epoch
    assert (e(5).leader_epoch, e(5).end_offset) == (5, 10)
    assert (e(3).leader_epoch, e(3).end_offset) == (3, 8)
    assert (e(2).leader_epoch, e(2).end_offset) == (1, 4)
    assert (e(0).leader_epoch, e(0).end_offset) == (0, 0)
    assert (e(9).leader_epoch, e(9).end_offset) == (-1, -1)
    log.close()
    log = open_log()
    assert log.end_offset_for_epoch(3).end_offset == 8


def test_flush_policies_move_the_recovery_point(open_log, h):
    log = open_log(LogConfig(fsync_every_append=True))
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 1
    log.close()
    log = open_log(LogConfig(flush_messages=3))
    log.append(h.batch(2), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 1
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 4
    log.close()
    log = open_log(LogConfig(flush_ms=100))
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    log.maybe_flush(50)
    assert log.recovery_point == 4
    log.maybe_flush(100)
    assert log.recovery_point == 5


def _short_pwritev(real_pwrite):
    """A pwritev that lands only the first half of the bytes and says so."""

    def pwritev(fd, buffers, pos):
        data = b"".join(bytes(b) for b in buffers)
        return real_pwrite(fd, data[: len(data) // 2], pos)

    return pwritev


def test_enospc_fails_the_append_cleanly(open_log, h, monkeypatch):
    log = open_log()
    log.append(h.batch(2), leader_epoch=0, now_ms=0)
    size = log.active_segment.size_bytes

    def full(fd, data, pos):  # the rest of the short write: the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("kbroker.log.segment.os.pwritev", _short_pwritev(os.pwrite))
    monkeypatch.setattr("kbroker.log.segment.os.pwrite", full)
    with pytest.raises(LogStorageError):
        log.append(h.batch(3), leader_epoch=0, now_ms=0)
    monkeypatch.undo()
    assert log.log_end_offset == 2 and os.path.getsize(log.active_segment.log_path) == size
    assert log.append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == 2
    log.close()
    log = open_log()
    assert log.log_end_offset == 3 and [b for b, _, _ in h.all_batches(log)] == [0, 2]


def test_a_short_write_is_finished(open_log, h, monkeypatch):
    log = open_log(LogConfig())
    blob = b"".join(bytes(h.batch(2, size=100)) for _ in range(3))
    monkeypatch.setattr("kbroker.log.segment.os.pwritev", _short_pwritev(os.pwrite))
    log.append(blob, leader_epoch=0, now_ms=0)
    monkeypatch.undo()
    assert [(b, last) for b, last, _ in h.all_batches(log)] == [(0, 1), (2, 3), (4, 5)]
    assert len(h.read_all(log)) == len(blob)


def test_append_leaves_the_callers_buffer_alone(open_log, h):
    log = open_log(LogConfig(message_timestamp_type="LogAppendTime"))
    raw = bytes(h.batch(3, ts=5)) + bytes(h.batch(2, ts=6))
    frame = b"xx" + raw + b"yy"
    ro = memoryview(frame)[2:-2]  # what the broker passes: a read-only frame slice
    log.append(b"".join([bytes(h.batch(1))]), leader_epoch=0, now_ms=0)
    result = log.append(ro, leader_epoch=7, now_ms=1234)
    assert frame == b"xx" + raw + b"yy"
    assert result.base_offset == 1 and result.last_offset == 5
    views = [RecordBatchView(b) for _, _, b in h.all_batches(log)][1:]
    assert [(v.base_offset, v.partition_leader_epoch, v.max_timestamp) for v in views] == [
        (1, 7, 1234),
        (4, 7, 1234),
    ]
    assert all(v.is_valid() and v.timestamp_type == TimestampType.LOG_APPEND_TIME for v in views)
    first_size = RecordBatchView(raw).size_bytes
    assert [bytes(v.buffer()[61:]) for v in views] == [
        raw[61:first_size],
        raw[first_size + 61 :],
    ]


def test_more_batches_than_iov_max_in_one_append(open_log, h):
    log = open_log(LogConfig())
    one = bytes(h.batch(1, size=5))
    log.append(one * 1500, leader_epoch=0, now_ms=0)  # 3000 pieces to write
    assert log.log_end_offset == 1500
    assert [b for b, _, _ in h.all_batches(log)] == list(range(1500))
    assert log.read(1499, 100).first_offset == 1499


def test_truncate_to(open_log, h):
    log = open_log()
    for _ in range(60):
        log.append(h.batch(2), leader_epoch=0, now_ms=0)
    log.truncate_to(51)  # inside the batch 50..51: it goes whole
    assert log.log_end_offset == 50
    assert h.all_batches(log)[-1][1] == 49
    assert log.append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == 50


def test_config_from_properties():
    cfg = LogConfig.from_properties(
        {
            "segment.bytes": "1048576",
            "retention.ms": "-1",
            "max.message.bytes": "500",
            "message.timestamp.type": "LogAppendTime",
            "cleanup.policy": "compact",
            "flush.messages": str(2**63 - 1),
            "unknown.thing": "x",
        }
    )
    assert cfg.segment_bytes == 1048576 and cfg.retention_ms == -1 and cfg.max_message_bytes == 500
    assert cfg.is_log_append_time and not cfg.deletes_by_retention and cfg.flush_messages is None
    with pytest.raises(ValueError):
        LogConfig(message_timestamp_type="Nope")
