"""Transactions in the log: markers, the aborted-txn index, LSO, producer queries."""

from __future__ import annotations

import os

import pytest
from kbroker.log import ActiveProducer, AppendOrigin, LogConfig
from kbroker.log.errors import (
    InvalidRecordError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from kbroker.log.txn_index import TXN_INDEX_SUFFIX
from kbroker.wire.records import (
    ControlRecordType,
    build_control_batch,
    build_record_batch,
    make_batch,
)

SEGMENTS = LogConfig(segment_bytes=600, index_interval_bytes=100)


class Producer:
    """A transactional producer writing to one log (sequences kept for it)."""

    def __init__(self, log, pid: int, epoch: int = 0) -> None:
        self.log, self.pid, self.epoch, self.seq = log, pid, epoch, 0

    def send(self, n: int = 1, size: int = 10) -> int:
        batch = make_batch(
            [b"x" * size] * n,
            producer_id=self.pid,
            producer_epoch=self.epoch,
            base_sequence=self.seq,
            is_transactional=True,
            timestamp_ms=50,
        )
        self.seq += n
        return self.log.append(batch, leader_epoch=0, now_ms=0).base_offset

    def end(self, commit: bool, coordinator_epoch: int = 0) -> int:
        marker = build_control_batch(
            ControlRecordType.COMMIT if commit else ControlRecordType.ABORT,
            producer_id=self.pid,
            producer_epoch=self.epoch,
            coordinator_epoch=coordinator_epoch,
            timestamp_ms=5,
        )
        return self.log.append(
            marker, leader_epoch=0, now_ms=0, origin=AppendOrigin.COORDINATOR
        ).base_offset


def plain(log, n: int = 1) -> int:
    return log.append(make_batch([b"p"] * n), leader_epoch=0, now_ms=0).base_offset


def entries(log):
    return [tuple(t) for seg in log.segments for t in seg.txn_index.entries]


def test_commit_and_abort(open_log):
    log = open_log()
    a = Producer(log, 10)
    assert a.send(2) == 0
    assert log.last_stable_offset == 0 and log.high_watermark == 2
    assert a.end(commit=False) == 2
    assert log.last_stable_offset == 3
    assert entries(log) == [(10, 0, 2, 3)]
    assert a.send(1) == 3
    assert log.last_stable_offset == 3
    a.end(commit=True)
    assert log.last_stable_offset == 5
    assert entries(log) == [(10, 0, 2, 3)]  # commits are not indexed
    assert log.aborted_transactions(0, 5) == [(10, 0)]
    assert log.aborted_transactions(1, 2) == [(10, 0)]
    assert log.aborted_transactions(3, 5) == []  # the aborted txn ended before 3
    assert log.read(0, 1 << 20, max_offset=log.last_stable_offset).next_offset == 5


def test_interleaved_producers_and_the_lso(open_log):
    log = open_log()
    a, b = Producer(log, 1), Producer(log, 2)
    plain(log)  # 0
    assert a.send() == 1
    assert b.send(2) == 2
    assert a.send() == 4
    assert log.last_stable_offset == 1
    assert b.end(commit=False) == 5
    assert log.last_stable_offset == 1  # a is still open
    assert entries(log) == [(2, 2, 5, 1)]  # LSO after b's marker: a's first offset
    assert [p.producer_id for p in log.ongoing_transactions()] == [1]
    assert a.end(commit=False) == 6
    assert log.last_stable_offset == 7
    assert entries(log) == [(2, 2, 5, 1), (1, 1, 6, 7)]
    assert log.aborted_transactions(0, 7) == [(2, 2), (1, 1)]
    assert log.aborted_transactions(0, 2) == [(1, 1)]  # b began at 2
    assert log.aborted_transactions(6, 7) == [(1, 1)]
    assert log.ongoing_transactions() == []
    # a read_committed fetch stops at the LSO while a transaction is open
    c = Producer(log, 3)
    assert c.send() == 7
    plain(log)  # 8
    fetched = log.read(0, 1 << 20, max_offset=log.last_stable_offset)
    assert log.last_stable_offset == 7 and fetched.next_offset == 7


def test_aborted_transactions_across_segments(open_log):
    log = open_log(SEGMENTS)
    a, b = Producer(log, 1), Producer(log, 2)
    first = a.send(1, size=100)
    for _ in range(6):
        plain(log)
        b.send(1, size=100)
    b.end(commit=False)
    a.end(commit=False)
    assert len(log.segments) >= 4
    a_marker = log.log_end_offset - 1
    b_first = first + 2  # after a's batch and the first plain batch
    assert [(t[0], t[1]) for t in entries(log)] == [(2, b_first), (1, first)]
    # the markers sit in the last segment, the fetched range in the first one
    first_seg_end = log.segments[1].base_offset
    assert log.aborted_transactions(0, first_seg_end) == [(2, b_first), (1, first)]
    mid = log.segments[2].base_offset
    assert log.aborted_transactions(mid, mid + 1) == [(2, b_first), (1, first)]
    assert log.aborted_transactions(a_marker + 1, a_marker + 2) == []


def test_markers_are_checked(open_log):
    log = open_log()
    a = Producer(log, 1)
    a.send()
    a.end(commit=False, coordinator_epoch=3)
    a.send()
    with pytest.raises(TransactionCoordinatorFencedError):
        a.end(commit=True, coordinator_epoch=2)
    bogus = build_record_batch(
        [(b"not a marker key", b"", [], 1)],
        producer_id=1,
        producer_epoch=0,
        is_transactional=True,
        is_control=True,
    )
    with pytest.raises(InvalidRecordError):
        log.append(bogus, leader_epoch=0, now_ms=0, origin=AppendOrigin.COORDINATOR)
    no_pid = build_control_batch(
        0, producer_id=-1, producer_epoch=0, coordinator_epoch=0, timestamp_ms=1
    )
    with pytest.raises(InvalidRecordError):
        log.append(no_pid, leader_epoch=0, now_ms=0, origin=AppendOrigin.COORDINATOR)
    assert log.log_end_offset == 3 and log.last_stable_offset == 2
    a.end(commit=True, coordinator_epoch=3)
    assert log.last_stable_offset == 4


def test_producer_queries(open_log):
    log = open_log()
    log.append(
        make_batch([b"i"] * 3, producer_id=9, producer_epoch=4, base_sequence=0, timestamp_ms=77),
        leader_epoch=0,
        now_ms=0,
    )
    t = Producer(log, 5, epoch=2)
    t.send(2)
    assert log.active_producers() == [
        ActiveProducer(5, 2, 1, 50, -1, 3),
        ActiveProducer(9, 4, 2, 77, -1, -1),
    ]
    assert log.ongoing_transactions() == [log.active_producers()[0]]
    t.end(commit=True, coordinator_epoch=8)
    assert log.active_producers()[0].coordinator_epoch == 8
    assert log.active_producers()[0].current_txn_start_offset == -1
    assert log.ongoing_transactions() == []


def _abort_everywhere(log):
    """Aborted transactions in each of several segments; returns the entries."""
    a, b = Producer(log, 1), Producer(log, 2)
    for i in range(8):
        a.send(1, size=120)
        if i % 2:
            b.send(1, size=60)
            b.end(commit=False)
        a.end(commit=i % 3 == 0)
    assert len(log.segments) >= 4
    return entries(log)


def _txn_paths(log):
    return [seg.txn_index.path for seg in log.segments]


@pytest.mark.parametrize("damage", ["garbage", "truncated-mid-entry", "deleted", "bad-version"])
def test_a_damaged_txnindex_of_a_trusted_segment_is_rebuilt(open_log, damage):
    log = open_log(SEGMENTS)
    expected = _abort_everywhere(log)
    log.close()
    victim = next(p for p in _txn_paths(log)[:-1] if os.path.getsize(p) > 0)
    if damage == "garbage":
        with open(victim, "ab") as f:
            f.write(b"\x07" * 13)
    elif damage == "truncated-mid-entry":
        os.truncate(victim, os.path.getsize(victim) - 5)
    elif damage == "deleted":
        os.unlink(victim)
    else:
        with open(victim, "r+b") as f:
            f.write(b"\x00\x09")
    log = open_log(SEGMENTS, had_clean_shutdown=True)
    assert entries(log) == expected
    assert all(os.path.exists(p) for p in _txn_paths(log))


def test_recovery_rebuilds_the_txnindex_of_rescanned_segments(open_log):
    log = open_log(SEGMENTS)
    expected = _abort_everywhere(log)
    for seg in log.segments:  # a crash: the last txnindex entries never reached a file
        seg.close()
    for path in _txn_paths(log):
        with open(path, "wb"):
            pass
    log = open_log(SEGMENTS, recovery_point=0)  # unclean: every segment is rescanned
    assert log.load_report.recovered_segments == len(log.segments)
    assert entries(log) == expected
    assert log.aborted_transactions(0, log.log_end_offset)[0] == (2, expected[0][1])


def test_clean_restart_keeps_entries_lso_and_producer_state(open_log):
    log = open_log(SEGMENTS)
    expected = _abort_everywhere(log)
    c = Producer(log, 3)
    c.send()
    lso = log.last_stable_offset
    log.close()
    log = open_log(SEGMENTS, had_clean_shutdown=True)
    assert entries(log) == expected and log.last_stable_offset == lso
    assert [p.producer_id for p in log.ongoing_transactions()] == [3]


def test_truncation_drops_entries_past_the_new_end(open_log):
    log = open_log()
    a = Producer(log, 1)
    a.send()
    a.end(commit=False)  # marker at 1
    a.send()
    a.end(commit=False)  # marker at 3
    log.truncate_to(3)
    assert entries(log) == [(1, 0, 1, 2)]
    assert [p.producer_id for p in log.ongoing_transactions()] == [1]
    assert log.last_stable_offset == 2


def test_deleted_segments_take_their_txnindex_along(open_log):
    log = open_log(LogConfig(segment_bytes=600, file_delete_delay_ms=0))
    _abort_everywhere(log)
    doomed = log.segments[0].txn_index.path
    log.delete_records_before(log.segments[1].base_offset)
    assert not os.path.exists(doomed) and not os.path.exists(doomed + ".deleted")
    assert doomed.endswith(TXN_INDEX_SUFFIX)


def test_coordinator_transactional_writes_carry_no_sequence(open_log):
    """The group coordinator's transactional offset commits have base sequence -1; the
    log must take them (Kafka checks sequences of client appends only) and their marker
    must still end the transaction."""
    log = open_log()
    offsets = build_record_batch(
        [(b"k", b"v", [], 7)], producer_id=42, producer_epoch=3, is_transactional=True
    )
    assert log.append(offsets, leader_epoch=0, now_ms=0, origin=AppendOrigin.COORDINATOR).base_offset == 0
    assert log.last_stable_offset == 0
    Producer(log, 42, epoch=3).end(commit=True)
    assert log.last_stable_offset == 2
    from_client = build_record_batch(
        [(b"k", b"v", [], 7)], producer_id=43, producer_epoch=0, is_transactional=True
    )
    with pytest.raises(OutOfOrderSequenceError):  # a client's batch is checked (sequence -1)
        log.append(from_client, leader_epoch=0, now_ms=0)
