"""Bounded resources in the log: the LRU of segment descriptors and lazy loading."""

from __future__ import annotations

import os

import pytest
from kbroker.log import LogConfig, LogManager
from kbroker.log.file_cache import MIN_OPEN_FILES, FileCache, default_max_open_files
from kbroker.log.manager import CLEAN_SHUTDOWN_MARKER

CFG = LogConfig(segment_bytes=600, index_interval_bytes=100)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def crash(m: LogManager) -> None:
    """Drop every log like a killed process: no flush, no checkpoint, no marker."""
    for log in m.logs.values():
        for seg in log.segments:
            seg.close()


def test_descriptors_stay_bounded_and_evicted_segments_keep_working(tmp_path, h):
    before = open_fds()
    m = LogManager(str(tmp_path), CFG, 0, max_open_files=MIN_OPEN_FILES)
    m.open_all()
    logs = [m.create("t", p) for p in range(60)]
    expected: dict[int, list[bytes]] = {p: [] for p in range(60)}
    for round_ in range(14):  # several segments per partition (600-byte segments)
        for p, log in enumerate(logs):
            batch = h.batch(2, size=30, ts=1000 + round_)
            log.append(batch, leader_epoch=0, now_ms=0)
            expected[p].append(bytes(batch[61:]))  # the body: offsets are patched
            assert open_fds() - before <= MIN_OPEN_FILES
    assert all(len(log.segments) > 2 for log in logs)
    assert m.files.evictions > 0
    for p, log in enumerate(logs):
        data = h.read_all(log)
        bodies = [b[61:] for *_, b in h.all_batches(log)]
        assert bodies == expected[p] and len(data) == sum(len(b) + 61 for b in bodies)
        assert open_fds() - before <= MIN_OPEN_FILES
    m.close()
    assert open_fds() == before


def test_pinned_segments_are_not_evicted(tmp_path, h):
    m = LogManager(str(tmp_path), CFG, 0, max_open_files=MIN_OPEN_FILES)
    m.open_all()
    first = m.create("t", 0)
    first.append(h.batch(1), leader_epoch=0, now_ms=0)
    seg = first.active_segment
    with seg.pinned():
        for p in range(1, 3 * MIN_OPEN_FILES):
            m.create("t", p).append(h.batch(1), leader_epoch=0, now_ms=0)
        assert seg._fd >= 0  # still open: a rename now would not lose it
    for p in range(1, 3 * MIN_OPEN_FILES):
        m.get("t", p)
        m.get("t", p).read(0, 1000)
    assert seg._fd < 0  # unpinned, it is evicted like any other
    m.close()


def test_default_limit_follows_rlimit_nofile():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        assert default_max_open_files() == max(MIN_OPEN_FILES, soft // 4)
    with pytest.raises(ValueError):
        FileCache(MIN_OPEN_FILES - 1)


def test_partitions_load_on_first_use_after_a_clean_stop(tmp_path, h):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    for p in range(5):
        m.create("t", p).append(h.batch(p + 1), leader_epoch=0, now_ms=0)
    m.close()
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert m.logs == {} and m.unloaded_partitions == 5
    assert m.has("t", 3) and not m.has("t", 5)
    assert m.get("t", 3).log_end_offset == 4
    assert list(m.logs) == [("t", 3)] and m.unloaded_partitions == 4
    m.checkpoint()  # unloaded partitions keep their checkpointed offsets
    m.close()
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert m.had_clean_shutdown
    assert [m.get("t", p).log_end_offset for p in range(5)] == [1, 2, 3, 4, 5]
    # close() wrote every index (one file-system sync, no fsync per file): nothing rebuilt
    assert m.load_report.rebuilt_indexes == 0 and m.load_report.recovered_segments == 0
    m.close()


def _corrupt_last_batch(path: str) -> None:
    """Flip a byte in the body of the file's last batch (its CRC-32C then fails)."""
    with open(path, "r+b") as f:
        f.seek(-3, os.SEEK_END)
        byte = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_unclean_partitions_are_recovered_before_first_use(tmp_path, h):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    log = m.create("t", 0)
    log.append(h.batch(1), leader_epoch=0, now_ms=0)
    log.flush()
    m.checkpoint()
    log.append(h.batch(1), leader_epoch=0, now_ms=0)  # past the recovery point
    path = log.active_segment.log_path
    crash(m)
    _corrupt_last_batch(path)
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert not m.had_clean_shutdown and m.unloaded_partitions == 1
    log = m.get("t", 0)
    assert log.log_end_offset == 1 and log.load_report.truncated_bytes > 0
    m.close()


def test_close_recovers_unloaded_partitions_before_vouching_for_them(tmp_path, h):
    """An unclean start closed before the partitions were touched must not write a
    clean-shutdown marker over unchecked files: the next start would trust them."""
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    for p in range(3):
        log = m.create("t", p)
        log.append(h.batch(1), leader_epoch=0, now_ms=0)
        log.flush()
        m.checkpoint()
        log.append(h.batch(1), leader_epoch=0, now_ms=0)
    paths = [m.get("t", p).active_segment.log_path for p in range(3)]
    crash(m)
    for path in paths:
        _corrupt_last_batch(path)
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    m.get("t", 1)  # one touched; two never were
    m.close()
    assert os.path.exists(tmp_path / CLEAN_SHUTDOWN_MARKER)
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert m.had_clean_shutdown
    for p in range(3):
        log = m.get("t", p)
        assert log.log_end_offset == 1
        assert len(h.all_batches(log)) == 1  # the corrupt batch is gone, not trusted
    m.close()


def test_background_loading_reaches_every_partition(tmp_path, h):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    for p in range(30):
        m.create("t", p).append(h.batch(1), leader_epoch=0, now_ms=0)
    m.close()
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    loaded = []
    m.on_load = lambda key, log: loaded.append(key)
    assert m.load_pending(0) == 1  # a zero budget still makes progress
    for now in range(1000, 40_000, 1000):
        m.run_periodic(now)
        if not m.unloaded_partitions:
            break
    assert m.unloaded_partitions == 0
    assert sorted(loaded) == [("t", p) for p in range(30)]
    m.close()


def test_deleting_an_unloaded_topic(tmp_path, h):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    for p in range(2):
        m.create("gone", p).append(h.batch(1), leader_epoch=0, now_ms=0)
    m.close()
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert m.delete_topic("gone") == 2
    assert m.partition_keys() == [] and not (tmp_path / "gone-0").exists()
    m.close()


def test_a_lazily_started_leader_epoch_is_fsynced_with_the_log(tmp_path, h, monkeypatch):
    from kbroker.log import PartitionLog
    from kbroker.log.checkpoints import LeaderEpochCache

    log = PartitionLog(str(tmp_path / "t-0"), CFG, now_ms=0)
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    log.epoch_cache.assign(3, 0, durable=False)
    assert synced == []  # no fsync on the way: thousands of partitions may load at once
    assert LeaderEpochCache(log.directory).epochs == [3]  # but written (survives a kill)
    log.append(h.batch(1), leader_epoch=3, now_ms=0)
    log.flush()
    assert synced and not log.epoch_cache._unsynced  # fsynced before the data counts as durable
    log.close()
