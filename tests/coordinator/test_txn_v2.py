"""Transaction version 2 (KIP-890 part 2) in the pure coordinator: implicit adds, the
epoch bump at every EndTxn v5, retries, fencing, producer-id rotation, restart replay."""

from __future__ import annotations

import pytest
from kbroker.coordinator.txn_records import decode_txn_record, txn_record
from kbroker.coordinator.txn_state import (
    TV_0,
    TV_2,
    TopicPartition,
    TransactionMetadata,
)
from kbroker.coordinator.txn_state import TransactionState as S
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.coordinator.txn_v2 import END_TXN_V2
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode as E
from kbroker.wire.messages.internal.transaction_log_value import TransactionLogValue

TXN = "tv2"
LAST_CLIENT_EPOCH = 32766  # the highest epoch a client is ever handed (32767 is kept back)


def logged_value(ctx: TxnTestContext, index: int = -1) -> TransactionLogValue:
    raw = ctx.log[index].value
    assert raw is not None and raw[:2] == b"\x00\x01"  # value version 1
    return decode(TransactionLogValue, 1, raw[2:])


def ongoing(ctx: TxnTestContext, txn_id: str = TXN) -> tuple[int, int]:
    pid, epoch = ctx.init_ok(txn_id)
    assert ctx.add_implicitly(txn_id, pid, epoch, "t", 0) == E.NONE
    return pid, epoch


def at_epoch(ctx: TxnTestContext, epoch: int, state: S = S.EMPTY, pid: int = 500) -> None:
    """Load a transactional id at ``epoch`` (as a restart would, from its record)."""
    meta = TransactionMetadata(
        transactional_id=TXN,
        producer_id=pid,
        producer_epoch=epoch,
        txn_timeout_ms=60_000,
        state=state,
        txn_last_update_timestamp_ms=0,
        txn_start_timestamp_ms=-1 if state is S.EMPTY else 0,
    )
    record = txn_record(meta)
    ctx.coord.replay(record.key, record.value)
    ctx.log.append(record)


# -- implicit add ------------------------------------------------------------------------------
def test_a_produce_adds_its_partition_implicitly_and_records_the_client_version() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.add_implicitly(TXN, pid, epoch, "t", 0) == E.NONE
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.state is S.ONGOING
    assert meta.partitions == {TopicPartition("t", 0)} and meta.client_transaction_version == TV_2
    assert logged_value(ctx).client_transaction_version == TV_2
    records = len(ctx.log)
    assert ctx.add_implicitly(TXN, pid, epoch, "t", 0) == E.NONE  # already in: no write
    assert len(ctx.log) == records
    assert ctx.add_implicitly(TXN, pid, epoch, "t", 1) == E.NONE
    assert ctx.coord.get(TXN).partitions == {TopicPartition("t", 0), TopicPartition("t", 1)}  # type: ignore[union-attr]


def test_an_implicit_add_with_a_wrong_producer_is_refused() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.add_implicitly(TXN, pid + 1, epoch, "t", 0) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.add_implicitly(TXN, pid, epoch + 1, "t", 0) == E.PRODUCER_FENCED
    assert ctx.add_implicitly("unknown", pid, epoch, "t", 0) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.add_implicitly("", pid, epoch, "t", 0) == E.INVALID_REQUEST
    assert ctx.state(TXN) is S.EMPTY


def test_an_implicit_add_while_markers_are_pending_is_concurrent() -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    ctx.hold_markers = True
    code, _, new_epoch = ctx.end_v2(TXN, pid, epoch)
    assert code == E.NONE and ctx.state(TXN) is S.PREPARE_COMMIT
    assert ctx.add_implicitly(TXN, pid, new_epoch, "t", 0) == E.CONCURRENT_TRANSACTIONS
    ctx.release_markers()
    assert ctx.add_implicitly(TXN, pid, new_epoch, "t", 0) == E.NONE


def test_tv0_requests_record_client_version_0_as_before() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.add(TXN, pid, epoch, {"t": [0]}) == E.NONE  # AddPartitionsToTxn v3
    assert ctx.add_offsets(TXN, pid, epoch, "g") == E.NONE
    assert ctx.end(TXN, pid, epoch, version=4) == E.NONE
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.client_transaction_version == TV_0
    assert meta.producer_epoch == epoch  # v4: no bump
    assert {m.producer_epoch for m in ctx.markers} == {epoch}
    for i in range(len(ctx.log)):
        value = logged_value(ctx, i)
        assert value.client_transaction_version == 0 and value.next_producer_id == -1
        assert not value.unknown_tagged_fields


# -- the epoch bump ----------------------------------------------------------------------------
@pytest.mark.parametrize("commit", [True, False])
def test_every_end_bumps_the_epoch_and_the_markers_carry_it(commit: bool) -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    ctx.hold_markers = True
    assert ctx.end_v2(TXN, pid, epoch, commit) == (E.NONE, pid, epoch + 1)
    prepared = ctx.coord.get(TXN)
    assert prepared is not None
    assert prepared.state is (S.PREPARE_COMMIT if commit else S.PREPARE_ABORT)
    assert prepared.producer_epoch == epoch + 1 and prepared.last_producer_epoch == epoch
    assert [(m.producer_id, m.producer_epoch, m.commit) for m in ctx.markers] == [
        (pid, epoch + 1, commit)
    ]
    ctx.release_markers()
    assert ctx.state(TXN) is (S.COMPLETE_COMMIT if commit else S.COMPLETE_ABORT)
    assert ctx.coord.get(TXN).producer_epoch == epoch + 1  # type: ignore[union-attr]
    # the next transaction runs at the bumped epoch; the old one is fenced
    assert ctx.add_implicitly(TXN, pid, epoch, "t", 0) == E.PRODUCER_FENCED
    assert ctx.add_implicitly(TXN, pid, epoch + 1, "t", 0) == E.NONE
    assert ctx.end_v2(TXN, pid, epoch + 1, commit) == (E.NONE, pid, epoch + 2)


def test_a_lost_answer_is_retried_with_the_epoch_before_the_bump() -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    assert ctx.end_v2(TXN, pid, epoch, True) == (E.NONE, pid, epoch + 1)
    records = len(ctx.log)
    assert ctx.end_v2(TXN, pid, epoch, True) == (E.NONE, pid, epoch + 1)  # the retry
    assert len(ctx.log) == records
    assert ctx.end_v2(TXN, pid, epoch, False)[0] == E.INVALID_TXN_STATE
    ctx.hold_markers = True
    assert ctx.add_implicitly(TXN, pid, epoch + 1, "t", 0) == E.NONE
    assert ctx.end_v2(TXN, pid, epoch + 1, True) == (E.NONE, pid, epoch + 2)
    assert ctx.end_v2(TXN, pid, epoch + 1, True)[0] == E.CONCURRENT_TRANSACTIONS  # Prepare*
    assert ctx.end_v2(TXN, pid, epoch + 2, True)[0] == E.PRODUCER_FENCED  # Prepare*: retry only
    assert ctx.end_v2(TXN, pid, epoch, True)[0] == E.PRODUCER_FENCED  # two bumps ago


def test_an_older_epoch_is_fenced_and_tv0_versions_get_their_codes() -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    assert ctx.end_v2(TXN, pid, epoch, True) == (E.NONE, pid, epoch + 1)
    assert ctx.add_implicitly(TXN, pid, epoch + 1, "t", 0) == E.NONE
    assert ctx.end_v2(TXN, pid, epoch, True)[0] == E.PRODUCER_FENCED  # Ongoing: current only
    assert ctx.end(TXN, pid, epoch, version=4) == E.PRODUCER_FENCED
    assert ctx.end(TXN, pid, epoch, version=1) == E.INVALID_PRODUCER_EPOCH
    assert ctx.end_v2(TXN, pid + 5, epoch + 1, True)[0] == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.end_v2("nobody", pid, epoch, True)[0] == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.end_v2("", pid, epoch, True)[0] == E.INVALID_REQUEST
    assert ctx.state(TXN) is S.ONGOING


def test_a_new_producer_fences_a_tv2_transaction_with_one_bump() -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    assert ctx.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS  # fence + abort first
    assert ctx.state(TXN) is S.COMPLETE_ABORT
    assert [(m.producer_epoch, m.commit) for m in ctx.markers] == [(epoch + 1, False)]
    assert ctx.init_ok(TXN) == (pid, epoch + 2)
    assert ctx.end_v2(TXN, pid, epoch, False)[0] == E.PRODUCER_FENCED  # the zombie


def test_the_zombies_late_abort_after_a_timeout_is_a_retry() -> None:
    ctx = TxnTestContext(transaction_abort_timed_out_transaction_cleanup_interval_ms=1_000)
    pid, epoch = ctx.init_ok(TXN, timeout_ms=5_000)
    assert ctx.add_implicitly(TXN, pid, epoch, "t", 0) == E.NONE
    ctx.sleep(7_000)
    assert ctx.state(TXN) is S.COMPLETE_ABORT
    assert [(m.producer_epoch, m.commit) for m in ctx.markers] == [(epoch + 1, False)]
    assert ctx.end_v2(TXN, pid, epoch, False) == (E.NONE, pid, epoch + 1)
    assert ctx.end_v2(TXN, pid, epoch, True)[0] == E.INVALID_TXN_STATE


# -- aborting without partitions ---------------------------------------------------------------
@pytest.mark.parametrize("previous", ["empty", "committed", "aborted"])
def test_a_tv2_client_may_abort_when_no_partition_was_added(previous: str) -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    if previous != "empty":
        assert ctx.add_implicitly(TXN, pid, epoch, "t", 0) == E.NONE
        _, _, epoch = ctx.end_v2(TXN, pid, epoch, previous == "committed")
    markers = len(ctx.markers)
    ctx.clock.ms += 123
    assert ctx.end_v2(TXN, pid, epoch, False) == (E.NONE, pid, epoch + 1)
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.state is S.COMPLETE_ABORT and not meta.partitions
    assert meta.txn_start_timestamp_ms == ctx.clock.ms  # no partition: the abort's own time
    assert len(ctx.markers) == markers  # nothing to mark
    assert ctx.end_v2(TXN, pid, epoch + 1, True)[0] == E.INVALID_TXN_STATE  # commit: nothing open
    assert ctx.end(TXN, pid, epoch + 1, commit=False, version=4) == E.NONE  # v4: CompleteAbort
    pid2, epoch2 = ctx.init_ok("fresh")
    assert ctx.end("fresh", pid2, epoch2, commit=False, version=4) == E.INVALID_TXN_STATE


def test_the_end_txn_v5_table_matches_kafka() -> None:
    # Kafka's TV_2 table for Empty/Complete* (PF = fenced, ITS, NONE, EB = bump), plus
    # Ongoing and Prepare*; None marks a cell the fencing check answers first.
    assert END_TXN_V2 == {
        (S.EMPTY, False): (S.PREPARE_ABORT, None),
        (S.EMPTY, True): (E.INVALID_TXN_STATE, None),
        (S.COMPLETE_ABORT, False): (S.PREPARE_ABORT, E.NONE),
        (S.COMPLETE_ABORT, True): (E.INVALID_TXN_STATE, E.INVALID_TXN_STATE),
        (S.COMPLETE_COMMIT, False): (S.PREPARE_ABORT, E.INVALID_TXN_STATE),
        (S.COMPLETE_COMMIT, True): (E.INVALID_TXN_STATE, E.NONE),
        (S.ONGOING, False): (S.PREPARE_ABORT, None),
        (S.ONGOING, True): (S.PREPARE_COMMIT, None),
        (S.PREPARE_ABORT, False): (None, E.CONCURRENT_TRANSACTIONS),
        (S.PREPARE_ABORT, True): (None, E.INVALID_TXN_STATE),
        (S.PREPARE_COMMIT, False): (None, E.INVALID_TXN_STATE),
        (S.PREPARE_COMMIT, True): (None, E.CONCURRENT_TRANSACTIONS),
    }
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.end_v2(TXN, pid, epoch - 1, False)[0] == E.PRODUCER_FENCED  # Empty: PF on retry


# -- epoch exhaustion --------------------------------------------------------------------------
def test_the_bump_to_the_last_epoch_rotates_to_a_new_producer_id() -> None:
    ctx = TxnTestContext(first_producer_id=7000)
    at_epoch(ctx, LAST_CLIENT_EPOCH - 1)
    assert ctx.add_implicitly(TXN, 500, LAST_CLIENT_EPOCH - 1, "t", 0) == E.NONE
    assert ctx.end_v2(TXN, 500, LAST_CLIENT_EPOCH - 1) == (E.NONE, 500, LAST_CLIENT_EPOCH)
    assert ctx.add_implicitly(TXN, 500, LAST_CLIENT_EPOCH, "t", 0) == E.NONE
    ctx.hold_markers = True
    assert ctx.end_v2(TXN, 500, LAST_CLIENT_EPOCH) == (E.NONE, 7000, 0)
    prepared = ctx.coord.get(TXN)
    assert prepared is not None and prepared.state is S.PREPARE_COMMIT
    assert (prepared.producer_id, prepared.producer_epoch, prepared.next_producer_id) == (
        500,
        32767,
        7000,
    )
    assert logged_value(ctx).next_producer_id == 7000  # NextProducerId, tagged
    assert (ctx.markers[-1].producer_id, ctx.markers[-1].producer_epoch) == (500, 32767)
    replayed = ctx.replayed()  # a restart before the markers: same state, same markers
    assert replayed.snapshot() == ctx.coord.snapshot()
    ctx.release_markers()
    done = ctx.coord.get(TXN)
    assert done is not None and done.state is S.COMPLETE_COMMIT
    assert (done.producer_id, done.producer_epoch, done.next_producer_id) == (7000, 0, -1)
    assert done.prev_producer_id == 500
    assert logged_value(ctx).previous_producer_id == 500
    # the lost answer is retried with the old id at 32766
    assert ctx.end_v2(TXN, 500, LAST_CLIENT_EPOCH) == (E.NONE, 7000, 0)
    assert ctx.end_v2(TXN, 500, LAST_CLIENT_EPOCH - 1)[0] == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.add_implicitly(TXN, 7000, 0, "t", 0) == E.NONE
    assert ctx.end_v2(TXN, 7000, 0) == (E.NONE, 7000, 1)
    assert ctx.replayed().snapshot() == ctx.coord.snapshot()


def test_a_timeout_at_the_last_client_epoch_rotates_too() -> None:
    ctx = TxnTestContext(
        first_producer_id=7000, transaction_abort_timed_out_transaction_cleanup_interval_ms=1_000
    )
    at_epoch(ctx, LAST_CLIENT_EPOCH)
    assert ctx.add_implicitly(TXN, 500, LAST_CLIENT_EPOCH, "t", 0) == E.NONE
    ctx.sleep(62_000)
    done = ctx.coord.get(TXN)
    assert done is not None and done.state is S.COMPLETE_ABORT
    assert (done.producer_id, done.producer_epoch) == (7000, 0)
    assert [(m.producer_id, m.producer_epoch) for m in ctx.markers] == [(500, 32767)]
    assert ctx.end_v2(TXN, 500, LAST_CLIENT_EPOCH, False) == (E.NONE, 7000, 0)


def test_an_epoch_no_client_holds_is_fenced_not_overflowed() -> None:
    ctx = TxnTestContext()
    at_epoch(ctx, 32767, S.COMPLETE_ABORT)  # only a TV_0 fence leaves an id here
    assert ctx.end_v2(TXN, 500, 32767, False)[0] == E.PRODUCER_FENCED
    assert ctx.state(TXN) is S.COMPLETE_ABORT


# -- restart -----------------------------------------------------------------------------------
def test_a_restart_rebuilds_tv2_state_and_resends_the_bumped_markers() -> None:
    ctx = TxnTestContext()
    pid, epoch = ongoing(ctx)
    ctx.hold_markers = True
    assert ctx.end_v2(TXN, pid, epoch, True) == (E.NONE, pid, epoch + 1)
    fresh = ctx.replayed()
    assert fresh.snapshot() == ctx.coord.snapshot()
    meta = fresh.get(TXN)
    assert meta is not None and meta.client_transaction_version == TV_2
    loaded = fresh.on_loaded()
    assert [(m.producer_id, m.producer_epoch, m.commit) for m in loaded.markers] == [
        (pid, epoch + 1, True)
    ]
    done = fresh.markers_written(TXN, pid, epoch + 1)
    assert [decode_txn_record(r.key, r.value)[1] for r in done.txn_records][0].state is (  # type: ignore[union-attr]
        S.COMPLETE_COMMIT
    )
