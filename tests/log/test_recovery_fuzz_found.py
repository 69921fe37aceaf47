"""Inputs the log_recovery fuzz target (``fuzz/targets/log_recovery.py``) found, minimised.

Each test writes the damaged partition directory the fuzzer produced and checks that
opening it recovers instead of raising.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from kbroker.log import LogConfig, PartitionLog
from kbroker.log.errors import CorruptBatchError
from kbroker.wire.records import iter_batches, make_batch

CFG = LogConfig(segment_bytes=2048, index_interval_bytes=128, segment_index_bytes=4096)


def _clean_log_with_tail(tmp_path: Path, tail: bytes) -> tuple[int, int]:
    """A cleanly closed one-segment log, then ``tail`` appended to its .log file;
    returns (log end offset, file size) before the tail."""
    log = PartitionLog(str(tmp_path), CFG, now_ms=0)
    for i in range(3):
        log.append(make_batch([b"v%d" % i]), leader_epoch=0, now_ms=0)
    end, size = log.log_end_offset, log.active_segment.size_bytes
    path = log.active_segment.log_path
    log.close(clean=True)
    with open(path, "ab") as f:
        f.write(tail)
    return end, size


def test_clean_shutdown_segment_with_a_legacy_magic_header_at_its_tail_is_rescanned(
    tmp_path: Path,
) -> None:
    # fuzz: after a clean stop the segment is trusted and only its tail (after the last
    # index entry) is walked; a header there with magic 0 raised LegacyMessageFormat out
    # of PartitionLog() instead of sending the segment to recovery
    header = struct.pack(">qiib", 3, 49, 0, 0) + bytes(44)  # batch_length 49, magic 0
    end, size = _clean_log_with_tail(tmp_path, header)
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        assert log.log_end_offset == end
        assert log.active_segment.size_bytes == size
        assert log.load_report.truncated_bytes == len(header)
        assert [v.base_offset for v in iter_batches(log.read(0, 1 << 16).records)] == [0, 1, 2]
    finally:
        log.close(clean=False)


def test_clean_shutdown_segment_with_an_impossible_batch_length_at_its_tail_is_rescanned(
    tmp_path: Path,
) -> None:
    header = struct.pack(">qiib", 3, 10, 0, 2) + bytes(44)  # batch_length 10 < 49
    end, size = _clean_log_with_tail(tmp_path, header)
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        assert log.log_end_offset == end
        assert log.active_segment.size_bytes == size
    finally:
        log.close(clean=False)


def _two_segments_cleanly_closed_without_snapshots(tmp_path: Path) -> tuple[int, str]:
    log = PartitionLog(str(tmp_path), CFG, now_ms=0)
    while len(log.segments) < 2:
        log.append(make_batch([b"x" * 200]), leader_epoch=0, now_ms=0)
    end = log.log_end_offset
    first = log.segments[0].log_path
    log.close(clean=True)
    for snapshot in tmp_path.glob("*.snapshot"):
        snapshot.unlink()
    return end, first


def _set_magic(path: str, batch_position: int, magic: int) -> None:
    with open(path, "r+b") as f:
        f.seek(batch_position + 16)
        f.write(bytes([magic]))


def _opens_and_serves_the_active_segment(tmp_path: Path, end: int) -> None:
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        assert log.log_end_offset == end
        assert log.read(log.segments[-1].base_offset, 1 << 16).records
    finally:
        log.close(clean=False)


def test_clean_shutdown_with_a_damaged_second_batch_in_an_older_segment_opens(
    tmp_path: Path,
) -> None:
    # fuzz: after a clean stop older segments are trusted unread; without a producer
    # snapshot the producer state is replayed from them, and a batch there with magic 1
    # raised LegacyMessageFormat out of PartitionLog()
    end, first = _two_segments_cleanly_closed_without_snapshots(tmp_path)
    with open(first, "rb") as f:
        second_batch = next(iter(iter_batches(f.read()))).size_bytes
    _set_magic(first, second_batch, 1)
    _opens_and_serves_the_active_segment(tmp_path, end)


def test_clean_shutdown_with_a_damaged_first_batch_header_opens(tmp_path: Path) -> None:
    # fuzz: the first batch header of every trusted segment is read for its timestamp
    # (segment.ms rolling base); magic 1 there raised LegacyMessageFormat
    end, first = _two_segments_cleanly_closed_without_snapshots(tmp_path)
    _set_magic(first, 0, 1)
    _opens_and_serves_the_active_segment(tmp_path, end)


def test_reads_of_a_damaged_trusted_segment_serve_what_precedes_the_damage_then_raise_corrupt_batch(
    tmp_path: Path,
) -> None:
    # fuzz: a read whose bytes ended inside a header with batch_length 0 (in a segment
    # trusted after a clean stop) raised struct.error from read_slice
    end, first = _two_segments_cleanly_closed_without_snapshots(tmp_path)
    with open(first, "rb") as f:
        first_batch = next(iter(iter_batches(f.read())))
        size0, next0 = first_batch.size_bytes, first_batch.next_offset
    with open(first, "r+b") as f:
        f.seek(size0 + 8)
        f.write(struct.pack(">i", 0))  # the second batch's batch_length
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        fetched = log.read(0, size0 + 12)
        assert [v.base_offset for v in iter_batches(fetched.records)] == [0]
        assert fetched.next_offset == next0
        with pytest.raises(CorruptBatchError):  # CORRUPT_MESSAGE for the fetcher
            log.read(next0, 1 << 16)
        assert log.log_end_offset == end
    finally:
        log.close(clean=False)


def test_a_read_ending_on_a_batch_whose_offsets_go_backwards_raises_instead_of_stalling(
    tmp_path: Path,
) -> None:
    # fuzz: in a segment trusted after a clean stop, the last batch of a read had a base
    # offset below the offset read; read(0) answered next_offset -99, so a reader going on
    # from next_offset (the internal-topic replay at start-up) would never get past it
    log = PartitionLog(str(tmp_path), CFG, now_ms=0)
    while len(log.segments) < 2:
        log.append(make_batch([b"x" * 200]), leader_epoch=0, now_ms=0)
    first = log.segments[0].log_path
    log.close(clean=True)
    with open(first, "r+b") as f:
        views = list(iter_batches(f.read()))
        last, before_last = views[-1].position, views[-2].base_offset
        f.seek(last)
        f.write(struct.pack(">q", -100))  # the segment's last batch's base offset
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        with pytest.raises(CorruptBatchError):
            log.read(before_last, 1 << 16)
    finally:
        log.close(clean=False)


def test_timestamp_lookup_in_a_log_append_time_batch_with_a_huge_offset_delta_is_bounded(
    tmp_path: Path,
) -> None:
    # fuzz (a timeout): ListOffsets by timestamp listed (offset, timestamp) for every
    # offset delta of a LogAppendTime batch -- 2**31 of them for a damaged header in a
    # segment trusted after a clean stop -- before looking at the first
    log = PartitionLog(str(tmp_path), CFG, now_ms=0)
    while len(log.segments) < 2:
        log.append(make_batch([b"x" * 200], timestamp_ms=5), leader_epoch=0, now_ms=0)
    first = log.segments[0].log_path
    log.close(clean=True)
    with open(first, "r+b") as f:
        f.seek(21)  # attributes, then last_offset_delta (the CRC is not checked when trusted)
        f.write(struct.pack(">hi", 0x08, 2**31 - 1))  # LogAppendTime
    log = PartitionLog(str(tmp_path), CFG, now_ms=0, had_clean_shutdown=True)
    try:
        found = log.offset_for_timestamp(5)
        assert found is not None and (found.timestamp, found.offset) == (5, 0)
    finally:
        log.close(clean=False)
