"""Idempotence and transaction state: the rule table of log/producer_state.py."""

from __future__ import annotations

import pytest
from kbroker.log import AppendOrigin
from kbroker.log.errors import (
    DuplicateSequence,
    InvalidProducerEpochError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
)
from kbroker.log.producer_state import BatchMetadata
from kbroker.wire.records import build_control_batch, make_batch

PID = 42


def idem(n: int, seq: int, epoch: int = 0, pid: int = PID, txn: bool = False) -> bytearray:
    return make_batch(
        [b"v"] * n, producer_id=pid, producer_epoch=epoch, base_sequence=seq, is_transactional=txn
    )


def marker(epoch: int = 0, commit: bool = True) -> bytearray:
    return build_control_batch(
        1 if commit else 0,
        producer_id=PID,
        producer_epoch=epoch,
        coordinator_epoch=0,
        timestamp_ms=1,
    )


def put(log, batch, origin=AppendOrigin.CLIENT):
    return log.append(batch, leader_epoch=0, now_ms=0, origin=origin)


def test_in_sequence_batches_are_accepted(open_log):
    log = open_log()
    assert put(log, idem(3, 0)).base_offset == 0
    assert put(log, idem(2, 3)).base_offset == 3
    assert put(log, make_batch([b"x"])).base_offset == 5  # no producer id: no state


@pytest.mark.parametrize("back", [1, 2, 3, 4, 5])
def test_a_duplicate_of_one_of_the_last_five_batches_returns_its_offsets(open_log, back):
    log = open_log()
    for i in range(5):
        put(log, idem(2, 2 * i))
    end = log.log_end_offset
    i = 5 - back
    with pytest.raises(DuplicateSequence) as exc:
        put(log, idem(2, 2 * i))
    assert (exc.value.base_offset, exc.value.last_offset) == (2 * i, 2 * i + 1)
    assert log.log_end_offset == end


def test_older_than_five_batches_is_out_of_order(open_log):
    log = open_log()
    for i in range(6):
        put(log, idem(1, i))
    with pytest.raises(OutOfOrderSequenceError):
        put(log, idem(1, 0))


@pytest.mark.parametrize("seq", [0, 2, 5, 100])
def test_a_gap_or_a_step_back_is_out_of_order(open_log, seq):
    log = open_log()
    put(log, idem(2, 0))
    put(log, idem(1, 2)) if seq != 2 else None
    if seq == 2:
        put(log, idem(1, 2))
        seq = 4
    with pytest.raises(OutOfOrderSequenceError):
        put(log, idem(1, seq))


def test_sequence_wraps_at_int32_max(open_log):
    log = open_log()
    put(log, idem(1, 0))
    start = 2**31 - 3
    # pretend the producer has already sent up to start - 1
    log.producer_state.producers[PID].batches = [BatchMetadata(start - 1, start - 1, 0, 0)]
    put(log, idem(3, start))  # last sequence = INT32_MAX
    assert put(log, idem(1, 0)).base_offset == 4  # wraps to 0


def test_epochs(open_log):
    log = open_log()
    put(log, idem(1, 0, epoch=3))
    with pytest.raises(InvalidProducerEpochError):
        put(log, idem(1, 1, epoch=2))
    with pytest.raises(OutOfOrderSequenceError):
        put(log, idem(1, 1, epoch=4))  # new epoch must start at 0
    assert put(log, idem(1, 0, epoch=4)).base_offset == 1
    with pytest.raises(InvalidProducerEpochError):
        put(log, idem(1, 1, epoch=3))  # fenced by epoch 4


def test_duplicate_only_within_the_same_epoch(open_log):
    log = open_log()
    put(log, idem(1, 0, epoch=0))
    put(log, idem(1, 0, epoch=1))
    with pytest.raises(DuplicateSequence):
        put(log, idem(1, 0, epoch=1))


def test_unknown_producer_must_start_at_zero(open_log):
    log = open_log()
    with pytest.raises(OutOfOrderSequenceError):
        put(log, idem(1, 7))
    assert log.log_end_offset == 0


def test_duplicate_check_happens_before_anything_is_written(open_log):
    log = open_log()
    put(log, idem(2, 0))
    size = log.active_segment.size_bytes
    with pytest.raises(DuplicateSequence):
        put(log, bytes(make_batch([b"a"])) + bytes(idem(2, 0)))  # the first batch is not written
    assert log.active_segment.size_bytes == size and log.log_end_offset == 2


def test_transactions_and_last_stable_offset(open_log):
    log = open_log()
    put(log, make_batch([b"a"]))
    assert log.last_stable_offset == 1
    put(log, idem(2, 0, txn=True))
    put(log, idem(1, 2, txn=True))
    assert log.last_stable_offset == 1 and log.high_watermark == 4
    with pytest.raises(InvalidTxnStateError):
        put(log, idem(1, 3, txn=False))
    with pytest.raises(InvalidProducerEpochError):
        put(
            log,
            build_control_batch(
                1, producer_id=PID, producer_epoch=-1, coordinator_epoch=0, timestamp_ms=1
            ),
            AppendOrigin.COORDINATOR,
        )
    put(log, marker(), AppendOrigin.COORDINATOR)
    assert log.last_stable_offset == log.high_watermark == 5
    assert put(log, idem(1, 3)).base_offset == 5  # sequence continues after the marker


@pytest.mark.parametrize("clean", [True, False])
def test_state_survives_restarts(open_log, clean):
    log = open_log()
    for i in range(4):
        put(log, idem(1, i))
        log.roll(0) if i == 1 else None  # a snapshot at the roll, the rest replayed
    put(log, idem(1, 0, pid=7, txn=True))
    if clean:
        log.close()
    else:
        for seg in log.segments:
            seg.close()
    log = open_log(had_clean_shutdown=clean)
    with pytest.raises(DuplicateSequence) as exc:
        put(log, idem(1, 3))
    assert exc.value.base_offset == 3
    with pytest.raises(OutOfOrderSequenceError):
        put(log, idem(1, 5))
    assert log.last_stable_offset == 4
    assert put(log, idem(1, 4)).base_offset == 5


def test_a_corrupt_snapshot_falls_back_to_replay(open_log):
    log = open_log()
    put(log, idem(1, 0))
    log.roll(0)
    put(log, idem(1, 1))
    log.close()
    for off in log.producer_state.snapshot_offsets():
        with open(log.producer_state.snapshot_path(off), "r+b") as f:
            f.seek(10)
            f.write(b"\xff\xff")
    log = open_log(had_clean_shutdown=True)
    with pytest.raises(DuplicateSequence):
        put(log, idem(1, 1))
