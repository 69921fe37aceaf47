"""LogManager housekeeping: each duty at its own interval, durable DeleteRecords."""

from __future__ import annotations

import os

import kbroker.log.manager as manager_module
import pytest
from kbroker.log import LogConfig, LogManager
from kbroker.log.checkpoints import read_offset_checkpoint
from kbroker.log.errors import UnknownPartitionError
from kbroker.log.manager import LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT

CFG = LogConfig(segment_bytes=3000, index_interval_bytes=200)


def crash(m: LogManager) -> None:
    """Drop every log like a killed process: no flush, no checkpoint, no marker."""
    for log in m.logs.values():
        for seg in log.segments:
            seg.close()


@pytest.fixture
def writes(monkeypatch):
    """The checkpoint file names written, in order."""
    seen: list[str] = []
    real = manager_module.write_offset_checkpoint

    def spy(path, offsets):
        seen.append(os.path.basename(path))
        real(path, offsets)

    monkeypatch.setattr(manager_module, "write_offset_checkpoint", spy)
    return seen


def test_run_periodic_checkpoints_only_at_their_intervals(tmp_path, h, writes):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    log = m.create("t", 0)
    writes.clear()
    for now in range(1000, 30_000, 1000):
        log.append(h.batch(1), leader_epoch=0, now_ms=now)
        log.flush()  # the recovery point moves every second
        m.run_periodic(now)
    assert writes == []  # nothing before Kafka's 30 s initial delay
    m.run_periodic(30_000)
    assert sorted(writes) == [LOG_START_CHECKPOINT, RECOVERY_POINT_CHECKPOINT]
    writes.clear()
    for now in range(31_000, 90_000, 1000):
        log.append(h.batch(1), leader_epoch=0, now_ms=now)
        log.flush()
        m.run_periodic(now)
    assert writes == []  # the next is due a full interval (60 s) later
    m.run_periodic(90_000)
    # the log start offset did not move: that checkpoint is unchanged and skipped
    assert writes == [RECOVERY_POINT_CHECKPOINT]
    cp = read_offset_checkpoint(str(tmp_path / RECOVERY_POINT_CHECKPOINT))
    assert cp[("t", 0)] == log.log_end_offset
    m.close()


def test_intervals_are_constructor_arguments(tmp_path, h, writes):
    m = LogManager(
        str(tmp_path),
        CFG,
        0,
        offset_checkpoint_interval_ms=2000,
        start_offset_checkpoint_interval_ms=5000,
        retention_check_interval_ms=7000,
    )
    m.open_all()
    log = m.create("t", 0)
    writes.clear()
    for now in range(1000, 11_000, 1000):
        log.append(h.batch(1), leader_epoch=0, now_ms=now)
        log.flush()
        m.run_periodic(now)
    assert writes.count(RECOVERY_POINT_CHECKPOINT) == 5  # at 2, 4, 6, 8, 10 s
    assert writes.count(LOG_START_CHECKPOINT) == 1  # at 5 s; unchanged at 10 s
    with pytest.raises(ValueError):
        LogManager(str(tmp_path), CFG, 0, retention_check_interval_ms=0)
    m.close()


def test_retention_runs_at_the_retention_check_interval(tmp_path, h):
    cfg = LogConfig(segment_bytes=300, retention_ms=10_000, file_delete_delay_ms=0)
    m = LogManager(str(tmp_path), cfg, 0, retention_check_interval_ms=60_000)
    m.open_all()
    log = m.create("t", 0)
    for _ in range(10):
        log.append(h.batch(1, size=100, ts=1000), leader_epoch=0, now_ms=1000)
    segments = len(log.segments)
    assert segments > 3
    for now in range(20_000, 30_000, 1000):
        m.run_periodic(now)  # expired, but the first check is due at 30 s
    assert len(log.segments) == segments and log.log_start_offset == 0
    m.run_periodic(30_000)
    assert log.log_start_offset == 10 and log.log_end_offset == 10
    for _ in range(3):
        log.append(h.batch(1, size=100, ts=31_000), leader_epoch=0, now_ms=31_000)
    for now in range(31_000, 90_000, 1000):
        m.run_periodic(now)
    assert log.log_start_offset == 10  # the next check is at 90 s
    m.run_periodic(90_000)
    assert log.log_start_offset == 13
    m.close()


def test_segment_ms_rolls_and_flush_ms_flushes_on_every_call(tmp_path, h):
    cfg = LogConfig(segment_ms=1500, flush_ms=1000)
    m = LogManager(str(tmp_path), cfg, 0)
    m.open_all()
    log = m.create("t", 0)
    log.append(h.batch(1, ts=0), leader_epoch=0, now_ms=0)
    m.run_periodic(1000)
    assert log.recovery_point == 1 and len(log.segments) == 1
    m.run_periodic(2000)
    assert len(log.segments) == 2
    m.close()


@pytest.mark.parametrize("via", ["partition_log", "manager"])
def test_delete_records_is_checkpointed_before_it_returns(tmp_path, h, via):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    log = m.create("t", 0)
    for _ in range(30):
        log.append(h.batch(2, size=40), leader_epoch=0, now_ms=0)
    if via == "manager":
        assert m.delete_records("t", 0, 25) == 25
    else:
        assert log.delete_records_before(25) == 25
    starts = read_offset_checkpoint(str(tmp_path / LOG_START_CHECKPOINT))
    assert starts[("t", 0)] == 25
    crash(m)  # no run_periodic, no close: the acknowledged deletion must survive
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    assert m.get("t", 0).log_start_offset == 25
    m.close()


def test_delete_records_of_an_unknown_partition(tmp_path):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    with pytest.raises(UnknownPartitionError):
        m.delete_records("nope", 0, 1)
    m.close()


def test_delete_records_that_moves_nothing_writes_nothing(tmp_path, h, writes):
    m = LogManager(str(tmp_path), CFG, 0)
    m.open_all()
    log = m.create("t", 0)
    log.append(h.batch(3), leader_epoch=0, now_ms=0)
    assert log.delete_records_before(2) == 2
    writes.clear()
    assert log.delete_records_before(1) == 2
    assert writes == []
    m.close()


def _deleted_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.endswith(".deleted"))


def test_file_delete_delay_ms_is_honoured(tmp_path, h):
    cfg = LogConfig(segment_bytes=300, file_delete_delay_ms=5000)
    m = LogManager(str(tmp_path), cfg, 0)
    m.open_all()
    log = m.create("t", 0)
    for _ in range(10):
        log.append(h.batch(1, size=100), leader_epoch=0, now_ms=0)
    m.run_periodic(1000)
    first = log.segments[1].base_offset
    assert m.delete_records("t", 0, first) == first
    renamed = _deleted_files(log.directory)
    assert [n.split(".")[1] for n in renamed] == ["index", "log", "timeindex", "txnindex"]
    m.run_periodic(5999)
    assert _deleted_files(log.directory) == renamed  # not before the delay
    log.delete_records_before(log.segments[1].base_offset, now_ms=6000)  # due at 11000
    second = _deleted_files(log.directory)
    assert len(second) == 4 and not set(second) & set(renamed)  # the first lot was due
    m.run_periodic(10_999)
    assert _deleted_files(log.directory) == second
    m.run_periodic(11_000)
    assert _deleted_files(log.directory) == []
    m.close()


def test_leftover_deleted_files_are_removed_on_restart(tmp_path, h):
    cfg = LogConfig(segment_bytes=300, file_delete_delay_ms=60_000)
    m = LogManager(str(tmp_path), cfg, 0)
    m.open_all()
    log = m.create("t", 0)
    for _ in range(10):
        log.append(h.batch(1, size=100), leader_epoch=0, now_ms=0)
    log.delete_records_before(log.segments[2].base_offset)
    assert len(_deleted_files(log.directory)) == 8
    crash(m)  # killed before the delay ran out
    m = LogManager(str(tmp_path), cfg, 0)
    m.open_all()
    assert _deleted_files(m.get("t", 0).directory) == []
    assert m.get("t", 0).log_start_offset == m.get("t", 0).segments[0].base_offset
    m.close()
