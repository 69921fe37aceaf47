"""A full disk and failing I/O: on a real small filesystem (tmpfs mounted by the test)
and through the test-only fault layer (``kbroker.log.fault_layer``).

The promises checked: a failed append leaves nothing of itself in the log (now and
after recovery), the log keeps serving reads, other logs keep accepting appends, and
appends succeed again once space returns.  An fsync failure takes the log offline
(appends refused, reads served) until a reopen recovers it.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kbroker.log import LogConfig, LogManager, PartitionLog
from kbroker.log.errors import LogFsyncError, LogStorageError
from kbroker.log.fault_layer import install, parse_fault_rules

FILLER_CHUNK_BYTES = 4096


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 512 KiB tmpfs (the tests run as root here and in CI)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "512k")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem is full; returns its path."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * FILLER_CHUNK_BYTES)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    return filler


@pytest.fixture
def faults(tmp_path: Path) -> Iterator[Path]:
    """The fault layer installed in this process; write rules to the returned path."""
    control = tmp_path / "faults"
    uninstall = install(None, str(control))
    try:
        yield control
    finally:
        uninstall()


def set_faults(control: Path, text: str) -> None:
    list(parse_fault_rules(text))  # a typo in a test fails here, not silently
    control.write_text(text)
    st = os.stat(control)  # a new mtime even within the filesystem's time granularity
    os.utime(control, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


def append_until_full(log: PartitionLog, h, now_ms: int = 0) -> list[int]:
    """Append 1-record batches until one fails; returns the base offsets acknowledged."""
    acked = []
    for _ in range(100_000):
        try:
            acked.append(
                log.append(h.batch(1, size=200), leader_epoch=0, now_ms=now_ms).base_offset
            )
        except LogStorageError:
            return acked
    raise AssertionError("the disk never filled")


def on_disk_consistent(log: PartitionLog) -> None:
    for seg in log.segments:
        assert os.path.getsize(seg.log_path) == seg.size_bytes, "partial bytes past the last batch"


SMALL_SEGMENTS = LogConfig(segment_bytes=16384, index_interval_bytes=512, segment_index_bytes=4096)


def test_enospc_on_a_small_filesystem_fails_cleanly_and_recovers(small_disk, tmp_path, h):
    reserve = small_disk / "reserve"
    reserve.write_bytes(b"\0" * 65536)  # deleted below: "space returns"
    log = PartitionLog(str(small_disk / "t-0"), SMALL_SEGMENTS, now_ms=0)
    other = PartitionLog(str(tmp_path / "elsewhere-0"), SMALL_SEGMENTS, now_ms=0)
    acked = append_until_full(log, h)  # fills the disk through appends and rolls
    assert len(log.segments) > 1, "the filesystem filled before any roll"
    end = log.log_end_offset
    assert acked[-1] == end - 1
    on_disk_consistent(log)
    # Still full: every further append fails, nothing of it lands; reads are served.
    for _ in range(3):
        with pytest.raises(LogStorageError):
            log.append(h.batch(5, size=200), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == end and not log.is_offline
    assert len(h.read_all(log)) == sum(s.size_bytes for s in log.segments)
    assert other.append(h.batch(3), leader_epoch=0, now_ms=0).last_offset == 2  # another disk
    # Space returns: appends succeed again, at the next offset.
    reserve.unlink()
    got = log.append(h.batch(2, size=200), leader_epoch=0, now_ms=0)
    assert got.base_offset == end
    log.close(clean=False)  # as if killed: recovery rescans
    other.close()
    log = PartitionLog(str(small_disk / "t-0"), SMALL_SEGMENTS, now_ms=0)
    assert [b for b, _, _ in h.all_batches(log)] == [*acked, end]
    assert log.log_end_offset == end + 2
    log.close()


def test_a_full_disk_at_roll_fails_the_append_and_rolls_later(small_disk, h):
    config = LogConfig(segment_bytes=4096, index_interval_bytes=256, segment_index_bytes=4096)
    log = PartitionLog(str(small_disk / "t-0"), config, now_ms=0)
    while log.active_segment.size_bytes + 300 <= config.segment_bytes:
        log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0)
    filler = fill(small_disk)
    end, segments = log.log_end_offset, len(log.segments)
    with pytest.raises(LogStorageError):  # the roll writes indexes: no room
        log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == end and not log.is_offline
    os.unlink(filler)
    assert log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0).base_offset == end
    assert len(log.segments) == segments + 1
    log.close()
    log = PartitionLog(str(small_disk / "t-0"), config, now_ms=0, had_clean_shutdown=True)
    assert log.log_end_offset == end + 1
    log.close()


def test_eio_on_write_fails_the_append_and_the_log_stays_online(faults, open_log, h):
    log = open_log()
    log.append(h.batch(2), leader_epoch=0, now_ms=0)
    set_faults(faults, "write EIO t-0\n")
    with pytest.raises(LogStorageError):
        log.append(h.batch(3), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 2 and not log.is_offline
    assert len(h.read_all(log)) == log.active_segment.size_bytes
    faults.unlink()
    assert log.append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == 2
    on_disk_consistent(log)


def test_fsync_failure_with_flush_per_message_takes_the_log_offline(faults, open_log, h):
    config = LogConfig(flush_messages=1)
    log = open_log(config)
    log.append(h.batch(2), leader_epoch=0, now_ms=0)
    before = h.read_all(log)
    set_faults(faults, "fsync EIO .log\n")
    with pytest.raises(LogFsyncError):
        log.append(h.batch(3), leader_epoch=0, now_ms=0)
    # Nothing of the failed append is visible, reads go on, appends are refused.
    assert log.log_end_offset == 2 and log.is_offline
    assert h.read_all(log) == before
    on_disk_consistent(log)
    with pytest.raises(LogStorageError):
        log.append(h.batch(1), leader_epoch=0, now_ms=0)
    faults.unlink()
    with pytest.raises(LogStorageError):  # offline until a restart
        log.append(h.batch(1), leader_epoch=0, now_ms=0)
    log.close()
    log = open_log(config)
    assert log.log_end_offset == 2 and h.read_all(log) == before
    assert log.append(h.batch(1), leader_epoch=0, now_ms=0).base_offset == 2


def test_index_write_failure_after_a_durable_append_keeps_the_append(faults, open_log, h):
    config = LogConfig(flush_messages=1, index_interval_bytes=1)
    log = open_log(config)
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    set_faults(faults, "write ENOSPC .index\n")
    got = log.append(h.batch(1), leader_epoch=0, now_ms=0)  # the .log fsync succeeded
    assert got.base_offset == 1 and log.recovery_point == 1 and not log.is_offline
    faults.unlink()
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 3


def test_segment_creation_failure_at_roll(faults, open_log, h):
    config = LogConfig(segment_bytes=1024)
    log = open_log(config)
    while log.active_segment.size_bytes + 300 <= config.segment_bytes:
        log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0)
    end = log.log_end_offset
    set_faults(faults, "create ENOSPC 00000\n")
    with pytest.raises(LogStorageError):
        log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == end and len(log.segments) == 1
    faults.unlink()
    assert log.append(h.batch(1, size=200), leader_epoch=0, now_ms=0).base_offset == end
    assert len(log.segments) == 2


def test_housekeeping_goes_on_past_a_failing_log(faults, tmp_path, h):
    config = LogConfig(segment_ms=10)
    manager = LogManager(str(tmp_path / "data"), config, now_ms=0)
    manager.open_all()
    first = manager.create("a", 0, config)
    second = manager.create("b", 0, config)
    first.append(h.batch(1), leader_epoch=0, now_ms=0)
    second.append(h.batch(1), leader_epoch=0, now_ms=0)
    set_faults(faults, "create ENOSPC a-0\n")  # a's roll cannot create its segment
    with pytest.raises(LogStorageError, match="1 logs"):
        manager.run_periodic(100)
    assert len(first.segments) == 1 and len(second.segments) == 2  # b rolled all the same
    faults.unlink()
    manager.run_periodic(200)
    assert len(first.segments) == 2
    manager.close()


def test_an_offline_log_leaves_no_clean_shutdown_marker(faults, tmp_path, h):
    config = LogConfig(flush_messages=1)
    data = tmp_path / "data"
    manager = LogManager(str(data), config, now_ms=0)
    manager.open_all()
    log = manager.create("a", 0, config)
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    set_faults(faults, "fsync EIO a-0\n")
    with pytest.raises(LogFsyncError):
        log.append(h.batch(1), leader_epoch=0, now_ms=0)
    faults.unlink()
    with pytest.raises(LogStorageError, match="offline"):
        manager.close()
    assert not (data / ".kbroker_cleanshutdown").exists()
    manager = LogManager(str(data), config, now_ms=0)
    manager.open_all()
    reopened = manager.get("a", 0)
    assert reopened is not None and reopened.log_end_offset == 1
    manager.close()
