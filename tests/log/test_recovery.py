"""Crash tests: damaged tails and indexes, SIGKILL mid-append, multi-file operations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kbroker.log import LogConfig, LogManager
from kbroker.log.manager import CLEAN_SHUTDOWN_MARKER, RECOVERY_POINT_CHECKPOINT
from kbroker.log.segment import INDEX_SUFFIX, TIME_INDEX_SUFFIX

CFG = LogConfig(segment_bytes=3000, index_interval_bytes=200)


def fill(log, h, n=60):
    for i in range(n):
        log.append(h.batch(1 + i % 3, size=30, ts=1000 + i), leader_epoch=1, now_ms=0)
    return h.all_batches(log)


def crash(log):
    """Drop the log like a killed process: no flush, no snapshot, no marker."""
    for seg in log.segments:
        seg.close()


@pytest.mark.parametrize(
    "tail",
    [
        b"garbage!" * 50,
        b"\x00" * 4096,
        "half",  # the first half of a real batch
        "bad-crc",  # a whole batch with one flipped byte
    ],
)
def test_damaged_tail_of_the_active_segment_is_truncated(open_log, h, tail):
    log = open_log(CFG)
    before = fill(log, h)
    last = log.active_segment.log_path
    crash(log)
    if tail == "half":
        tail = bytes(h.batch(3, size=100))[:90]
    elif tail == "bad-crc":
        raw = bytearray(h.batch(3, size=100))
        raw[-1] ^= 0xFF
        tail = bytes(raw)
    with open(last, "ab") as f:
        f.write(tail)
    log = open_log(CFG)
    assert log.load_report.truncated_bytes == len(tail)
    assert h.all_batches(log) == before
    assert log.append(h.batch(1), leader_epoch=1, now_ms=0).base_offset == before[-1][1] + 1


def test_corruption_in_a_middle_segment_drops_everything_after_it(open_log, h):
    log = open_log(CFG)
    before = fill(log, h)
    assert len(log.segments) >= 3
    middle = log.segments[1]
    keep_until = middle.base_offset
    crash(log)
    with open(middle.log_path, "r+b") as f:
        f.seek(100)
        f.write(b"\xde\xad\xbe\xef")
    log = open_log(CFG, recovery_point=0)
    after = h.all_batches(log)
    assert after == before[: len(after)]
    assert keep_until <= log.log_end_offset < before[-1][1]
    assert len(log.segments) == 2


@pytest.mark.parametrize("which", [INDEX_SUFFIX, TIME_INDEX_SUFFIX])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete", "out-of-order"])
@pytest.mark.parametrize("clean", [True, False])
def test_damaged_indexes_are_rebuilt(open_log, h, which, damage, clean):
    log = open_log(CFG)
    before = fill(log, h)
    if clean:
        log.close()
    else:
        log.flush()  # recovery point at the end: only the index check can notice
        crash(log)
    first = log.segments[0]
    path = first.log_path[: -len(".log")] + which
    data = Path(path).read_bytes()
    assert len(data) >= 24
    if damage == "truncate":
        Path(path).write_bytes(data[:-3])
    elif damage == "garbage":
        Path(path).write_bytes(data + b"\x7f" * 24)
    elif damage == "delete":
        os.unlink(path)
    else:
        Path(path).write_bytes(data[-12:] + data[:-12])
    log = open_log(CFG, had_clean_shutdown=clean, recovery_point=log.log_end_offset)
    assert log.load_report.rebuilt_indexes >= 1
    assert h.all_batches(log) == before
    for _base, last, raw in before:
        assert bytes(log.read(last, 1).records) == raw
    assert log.offset_for_timestamp(1030).offset == [b for b, *_ in before][30]


def test_indexes_past_the_recovery_point_are_always_rebuilt(open_log, h):
    log = open_log(CFG)
    before = fill(log, h)
    crash(log)
    seg = log.segments[-1]
    Path(seg.index.path).write_bytes(b"")  # an old, too short index file
    log = open_log(CFG, recovery_point=seg.base_offset)
    assert log.load_report.recovered_segments == 1
    assert h.all_batches(log) == before


WRITER = textwrap.dedent(
    """
    import sys
    from kbroker.log import LogConfig, PartitionLog
    from kbroker.wire.records import make_batch
    log = PartitionLog(sys.argv[1], LogConfig(segment_bytes=20000, index_interval_bytes=300), now_ms=0)
    i = log.log_end_offset
    while True:
        b = make_batch([bytes([65 + i % 26]) * (10 + i % 200)] * (1 + i % 4), timestamp_ms=i)
        r = log.append(b, leader_epoch=0, now_ms=0)
        print(r.base_offset, r.last_offset, flush=True)
        i += 1
    """
)


def test_sigkill_mid_append_loses_nothing_acknowledged(tmp_path, open_log, h):
    directory = tmp_path / "t-0"
    acked: list[tuple[int, int]] = []
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(directory)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        got = 0
        while got < 300 + 200 * round_ and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(tuple(map(int, line.split())))  # type: ignore[arg-type]
            got += 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        log = open_log(LogConfig(segment_bytes=20000, index_interval_bytes=300))
        stored = h.all_batches(log)
        offsets = [(b, last) for b, last, _ in stored]
        assert offsets[: len(acked)] == acked  # every acknowledged batch, in order
        for (_b, last), (nb, _) in zip(offsets, offsets[1:]):
            assert nb == last + 1  # contiguous, no torn batch in between
        assert log.log_end_offset == offsets[-1][1] + 1
        assert h.read_all(log) == b"".join(raw for *_, raw in stored)
        acked = offsets  # unacknowledged-but-written batches are kept too
        crash(log)
    assert len(acked) > 900


def test_topic_deletion_crash_phases(tmp_path, h):
    data = tmp_path / "data"
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    for p in range(3):
        m.create("my.topic-x", p).append(h.batch(2), leader_epoch=0, now_ms=0)
    m.create("other", 0).append(h.batch(2), leader_epoch=0, now_ms=0)
    m.close()
    # phase 1: crash after renaming one partition dir (not yet removed)
    os.rename(data / "my.topic-x-0", data / ("my.topic-x-0." + "a" * 32 + "-delete"))
    # phase 2: crash midway through removing another
    doomed = data / ("my.topic-x-1." + "b" * 32 + "-delete")
    os.rename(data / "my.topic-x-1", doomed)
    for f in sorted(doomed.iterdir())[:2]:
        f.unlink()
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    assert sorted(m.partition_keys()) == [("my.topic-x", 2), ("other", 0)]
    assert not [n for n in os.listdir(data) if n.endswith("-delete")]
    assert m.delete_topic("my.topic-x") == 1
    assert sorted(m.partition_keys()) == [("other", 0)]
    assert not (data / "my.topic-x-2").exists()
    assert m.get("other", 0).log_end_offset == 2
    m.close()


def test_segment_deletion_crash_phases(open_log, h):
    log = open_log(CFG)
    fill(log, h)
    first, second = log.segments[0], log.segments[1]
    crash(log)
    # segment 0: crash after renaming the .log only; segment 1 untouched
    os.rename(first.log_path, first.log_path + ".deleted")
    log = open_log(CFG, log_start_offset=first.base_offset)
    assert log.segments[0].base_offset == second.base_offset
    assert log.log_start_offset == second.base_offset
    names = h.files(log.directory)
    assert not [
        n for n in names if n.endswith(".deleted") or n.startswith(f"{first.base_offset:020d}")
    ]


def test_checkpoint_writes_are_atomic(tmp_path, h):
    data = tmp_path / "data"
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    log = m.create("t", 0)
    fill(log, h, 30)
    m.close()
    cp = data / RECOVERY_POINT_CHECKPOINT
    good = cp.read_text()
    (data / (RECOVERY_POINT_CHECKPOINT + ".tmp")).write_text("0\n1\nt 0 9")  # torn tmp
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    assert m.had_clean_shutdown and cp.read_text() == good
    assert not (data / CLEAN_SHUTDOWN_MARKER).exists()
    crash(m.get("t", 0))
    cp.write_text("0\n5\nt 0")  # a damaged checkpoint: treated as absent (full rescan)
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    assert not m.had_clean_shutdown
    assert m.get("t", 0).load_report.recovered_segments == len(m.get("t", 0).segments)
    m.close()


def test_manager_parses_partition_dirs_from_the_right(tmp_path, h):
    from kbroker.log.manager import parse_partition_dir

    assert parse_partition_dir("a-b.c_d-12") == ("a-b.c_d", 12)
    assert parse_partition_dir("nodash") is None
    assert parse_partition_dir("x-") is None
    data = tmp_path / "data"
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    m.create("foo-delete", 0).append(h.batch(1), leader_epoch=0, now_ms=0)
    m.close()
    m = LogManager(str(data), CFG, 0)
    m.open_all()
    assert m.get("foo-delete", 0).log_end_offset == 1
    m.close()
