"""Transaction coordinator scenarios: every transition, fencing, timeouts, retries."""

from __future__ import annotations

from kbroker.coordinator.records import partition_for
from kbroker.coordinator.txn_coordinator import TransactionCoordinator, markers_key
from kbroker.coordinator.txn_records import decode_txn_record, txn_record
from kbroker.coordinator.txn_result import TxnMarker
from kbroker.coordinator.txn_state import TopicPartition, TransactionMetadata
from kbroker.coordinator.txn_state import TransactionState as S
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.wire.errors import ErrorCode as E
from kbroker.wire.messages.add_partitions_to_txn_request import (
    AddPartitionsToTxnRequest,
    AddPartitionsToTxnTopic,
    AddPartitionsToTxnTransaction,
)
from kbroker.wire.messages.end_txn_request import EndTxnRequest

TXN = "txn-1"


def started(ctx: TxnTestContext, txn_id: str = TXN, **kwargs: object) -> tuple[int, int]:
    """InitProducerId, then AddPartitions of topic-0/1: an Ongoing transaction."""
    pid, epoch = ctx.init_ok(txn_id, **kwargs)
    assert ctx.add(txn_id, pid, epoch, {"topic": [0, 1]}) == E.NONE
    assert ctx.state(txn_id) is S.ONGOING
    return pid, epoch


# -- InitProducerId ---------------------------------------------------------------------------
def test_new_transactional_id_gets_a_producer_id_and_epoch_zero() -> None:
    ctx = TxnTestContext()
    assert ctx.init_ok(TXN) == (1000, 0)
    assert ctx.state(TXN) is S.EMPTY
    assert len(ctx.log) == 1
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.txn_timeout_ms == 60_000 and meta.txn_start_timestamp_ms == -1


def test_init_again_bumps_the_epoch_and_keeps_the_producer_id() -> None:
    ctx = TxnTestContext()
    assert ctx.init_ok(TXN) == (1000, 0)
    assert ctx.init_ok(TXN, timeout_ms=5_000) == (1000, 1)
    assert ctx.coord.get(TXN).txn_timeout_ms == 5_000  # type: ignore[union-attr]
    assert ctx.transitions == [(S.EMPTY, S.EMPTY)]


def test_second_producer_fences_the_first_with_version_dependent_errors() -> None:
    ctx = TxnTestContext()
    pid, old = ctx.init_ok(TXN)
    _, new = ctx.init_ok(TXN)
    assert new == old + 1
    for version, code in [
        (0, E.INVALID_PRODUCER_EPOCH),
        (1, E.INVALID_PRODUCER_EPOCH),
        (2, E.PRODUCER_FENCED),
        (3, E.PRODUCER_FENCED),
    ]:
        assert ctx.add(TXN, pid, old, version=version) == code
        assert ctx.add_offsets(TXN, pid, old, "group", version=version) == code
    for version, code in [
        (0, E.INVALID_PRODUCER_EPOCH),
        (1, E.INVALID_PRODUCER_EPOCH),
        (2, E.PRODUCER_FENCED),
        (4, E.PRODUCER_FENCED),
    ]:
        assert ctx.end(TXN, pid, old, version=version) == code
    assert ctx.state(TXN) is S.EMPTY  # nothing changed
    assert ctx.add(TXN, pid, new) == E.NONE  # the new producer is fine


def test_invalid_timeouts_and_requests() -> None:
    ctx = TxnTestContext(transaction_max_timeout_ms=10_000)
    assert ctx.init(TXN, timeout_ms=10_001).error_code == E.INVALID_TRANSACTION_TIMEOUT
    assert ctx.init(TXN, timeout_ms=0).error_code == E.INVALID_TRANSACTION_TIMEOUT
    assert ctx.init("", timeout_ms=1_000).error_code == E.INVALID_REQUEST
    bad = ctx.init(TXN, timeout_ms=1_000, version=3, producer_id=5, producer_epoch=-1)
    assert (bad.error_code, bad.producer_id, bad.producer_epoch) == (E.INVALID_REQUEST, -1, -1)
    assert ctx.log == [] and ctx.coord.get(TXN) is None
    assert ctx.init_ok(TXN, timeout_ms=10_000) == (1000, 0)


def test_kip360_resume_retry_and_fencing() -> None:
    ctx = TxnTestContext()
    pid, e0 = ctx.init_ok(TXN)
    # the producer resumes after an abortable error with its current id and epoch
    assert ctx.init_ok(TXN, producer_id=pid, producer_epoch=e0) == (pid, e0 + 1)
    # its answer was lost: the retry (same old epoch) gets the same epoch, no second bump
    records = len(ctx.log)
    assert ctx.init_ok(TXN, producer_id=pid, producer_epoch=e0) == (pid, e0 + 1)
    assert len(ctx.log) == records + 1  # Kafka still writes the (unchanged) Empty state
    # an unknown epoch or another producer id is fenced; v3 says INVALID_PRODUCER_EPOCH
    assert ctx.init(TXN, producer_id=pid, producer_epoch=7).error_code == E.PRODUCER_FENCED
    assert ctx.init(TXN, producer_id=pid + 5, producer_epoch=e0 + 1).error_code == E.PRODUCER_FENCED
    assert (
        ctx.init(TXN, producer_id=pid + 5, producer_epoch=e0 + 1, version=3).error_code
        == E.INVALID_PRODUCER_EPOCH
    )
    # an init without ids (new producer) resets last_producer_epoch: the old retry is fenced
    assert ctx.init_ok(TXN) == (pid, e0 + 2)
    assert ctx.init(TXN, producer_id=pid, producer_epoch=e0).error_code == E.PRODUCER_FENCED


def test_kip360_unknown_transactional_id_with_ids_starts_fresh() -> None:
    ctx = TxnTestContext()
    assert ctx.init_ok(TXN, producer_id=42, producer_epoch=3) == (1000, 0)


def put(ctx: TxnTestContext, meta: TransactionMetadata) -> None:
    """Seed a state through the log, as a restart would."""
    record = txn_record(meta)
    ctx.log.append(record)
    ctx.coord.replay(record.key, record.value)


def test_epoch_exhaustion_rotates_the_producer_id() -> None:
    ctx = TxnTestContext(first_producer_id=2000)
    put(
        ctx,
        TransactionMetadata(
            TXN, producer_id=7, producer_epoch=32765, txn_timeout_ms=60_000, state=S.COMPLETE_COMMIT
        ),
    )
    assert ctx.init_ok(TXN) == (7, 32766)
    assert ctx.init_ok(TXN) == (2000, 0)  # 32766 is exhausted: a new producer id
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.prev_producer_id == 7
    assert ctx.replayed().snapshot() == ctx.coord.snapshot()


def test_kip360_rotation_retry_returns_the_rotated_id() -> None:
    ctx = TxnTestContext(first_producer_id=2000)
    put(
        ctx,
        TransactionMetadata(
            TXN, producer_id=7, producer_epoch=32766, txn_timeout_ms=60_000, state=S.COMPLETE_ABORT
        ),
    )
    assert ctx.init_ok(TXN, producer_id=7, producer_epoch=32766) == (2000, 0)
    # the answer was lost; the retry names the old id, which is recognised
    assert ctx.init_ok(TXN, producer_id=7, producer_epoch=32766) == (2000, 0)
    # once the new id has moved on, the old id is fenced
    assert ctx.add(TXN, 2000, 0) == E.NONE
    assert ctx.end(TXN, 2000, 0) == E.NONE
    assert ctx.init(TXN, producer_id=7, producer_epoch=32766).error_code == E.PRODUCER_FENCED


def test_fence_at_the_last_usable_epoch_then_rotation() -> None:
    ctx = TxnTestContext(first_producer_id=2000)
    put(
        ctx,
        TransactionMetadata(
            TXN,
            producer_id=7,
            producer_epoch=32766,
            txn_timeout_ms=60_000,
            state=S.ONGOING,
            partitions=frozenset({TopicPartition("t", 0)}),
            txn_start_timestamp_ms=ctx.clock.ms,
        ),
    )
    assert ctx.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS
    assert ctx.markers[-1].producer_epoch == 32767  # the reserved fencing epoch
    assert ctx.init_ok(TXN) == (2000, 0)


# -- a transaction's life ----------------------------------------------------------------------
def test_commit_moves_through_prepare_and_writes_commit_markers() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    assert ctx.end(TXN, pid, epoch, commit=True) == E.NONE
    assert ctx.state(TXN) is S.PREPARE_COMMIT
    assert ctx.markers == [
        TxnMarker(TXN, "topic", p, pid, epoch, commit=True, coordinator_epoch=0) for p in (0, 1)
    ]
    ctx.release_markers()
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.state is S.COMPLETE_COMMIT and meta.partitions == frozenset()
    assert ctx.transitions == [
        (S.EMPTY, S.ONGOING),
        (S.ONGOING, S.PREPARE_COMMIT),
        (S.PREPARE_COMMIT, S.COMPLETE_COMMIT),
    ]
    states = [decode_txn_record(r.key, r.value)[1].state for r in ctx.log]  # type: ignore[union-attr]
    assert states == [S.EMPTY, S.ONGOING, S.PREPARE_COMMIT, S.COMPLETE_COMMIT]
    assert not ctx.timer.is_scheduled(markers_key(TXN))


def test_abort_writes_abort_markers() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    assert ctx.end(TXN, pid, epoch, commit=False) == E.NONE
    assert [m.commit for m in ctx.markers] == [False, False]
    assert ctx.state(TXN) is S.COMPLETE_ABORT


def test_commit_abort_commit_again_with_the_same_epoch() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    for commit, final in [
        (True, S.COMPLETE_COMMIT),
        (False, S.COMPLETE_ABORT),
        (True, S.COMPLETE_COMMIT),
    ]:
        ctx.clock.ms += 100
        assert ctx.add(TXN, pid, epoch, {"a": [0]}) == E.NONE
        assert ctx.coord.get(TXN).txn_start_timestamp_ms == ctx.clock.ms  # type: ignore[union-attr]
        ctx.clock.ms += 5
        assert ctx.add(TXN, pid, epoch, {"b": [3]}) == E.NONE
        assert ctx.coord.get(TXN).txn_start_timestamp_ms == ctx.clock.ms - 5  # type: ignore[union-attr]
        assert ctx.end(TXN, pid, epoch, commit=commit) == E.NONE
        assert ctx.state(TXN) is final
    assert len(ctx.markers) == 6
    assert ctx.replayed().snapshot() == ctx.coord.snapshot()


def test_end_txn_retries_and_wrong_outcomes() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.end(TXN, pid, epoch, commit=True) == E.INVALID_TXN_STATE  # Empty
    assert ctx.add(TXN, pid, epoch) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=True) == E.NONE
    records = len(ctx.log)
    assert ctx.end(TXN, pid, epoch, commit=True) == E.NONE  # retry of a completed commit
    assert ctx.end(TXN, pid, epoch, commit=False) == E.INVALID_TXN_STATE
    assert ctx.add(TXN, pid, epoch) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=False) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=False) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=True) == E.INVALID_TXN_STATE
    assert len(ctx.log) == records + 3  # retries and errors write nothing
    assert ctx.end(TXN, pid + 1, epoch) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.end("unknown", pid, epoch) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.end("", pid, epoch) == E.INVALID_REQUEST


def test_pending_markers_answer_concurrent_transactions() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    assert ctx.end(TXN, pid, epoch, commit=True) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=True) == E.CONCURRENT_TRANSACTIONS
    assert ctx.end(TXN, pid, epoch, commit=False) == E.INVALID_TXN_STATE
    assert ctx.add(TXN, pid, epoch, {"other": [0]}) == E.CONCURRENT_TRANSACTIONS
    assert ctx.add_offsets(TXN, pid, epoch, "g") == E.CONCURRENT_TRANSACTIONS
    assert ctx.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS
    assert ctx.state(TXN) is S.PREPARE_COMMIT
    ctx.release_markers()
    assert ctx.state(TXN) is S.COMPLETE_COMMIT
    assert ctx.add(TXN, pid, epoch) == E.NONE


def test_prepare_abort_answers_concurrent_transactions_to_abort_retries() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    assert ctx.end(TXN, pid, epoch, commit=False) == E.NONE
    assert ctx.end(TXN, pid, epoch, commit=False) == E.CONCURRENT_TRANSACTIONS
    assert ctx.end(TXN, pid, epoch, commit=True) == E.INVALID_TXN_STATE


def test_init_during_a_transaction_fences_aborts_and_asks_for_a_retry() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    response = ctx.init(TXN)
    assert (response.error_code, response.producer_id, response.producer_epoch) == (
        E.CONCURRENT_TRANSACTIONS,
        -1,
        -1,
    )
    assert ctx.state(TXN) is S.PREPARE_ABORT
    assert ctx.markers == [
        TxnMarker(TXN, "topic", p, pid, epoch + 1, commit=False, coordinator_epoch=0)
        for p in (0, 1)
    ]
    assert ctx.transitions[-2:] == [
        (S.ONGOING, S.PREPARE_EPOCH_FENCE),
        (S.PREPARE_EPOCH_FENCE, S.PREPARE_ABORT),
    ]
    assert ctx.init(TXN).error_code == E.CONCURRENT_TRANSACTIONS  # markers still pending
    assert ctx.end(TXN, pid, epoch) == E.PRODUCER_FENCED  # the zombie
    ctx.release_markers()
    assert ctx.state(TXN) is S.COMPLETE_ABORT
    assert ctx.init_ok(TXN) == (pid, epoch + 2)  # the retry gets a second bump
    assert ctx.add(TXN, pid, epoch + 1) == E.PRODUCER_FENCED  # the fencing epoch is never used


def test_add_partitions_already_in_writes_nothing() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    records = len(ctx.log)
    assert ctx.add(TXN, pid, epoch, {"topic": [1]}) == E.NONE
    assert len(ctx.log) == records
    assert ctx.add(TXN, pid, epoch, {"topic": [1, 2]}) == E.NONE
    assert len(ctx.log) == records + 1
    assert ctx.coord.get(TXN).partitions == {TopicPartition("topic", p) for p in (0, 1, 2)}  # type: ignore[union-attr]


def test_add_partitions_to_unknown_or_foreign_ids() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.add("nope", pid, epoch) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.add(TXN, pid + 1, epoch) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.add("", pid, epoch) == E.INVALID_REQUEST
    assert ctx.add_offsets("", pid, epoch, "g") == E.INVALID_REQUEST


def test_unknown_partitions_are_reported_and_nothing_is_added() -> None:
    ctx = TxnTestContext()
    ctx.coord.partition_exists = lambda topic, partition: topic == "known"
    pid, epoch = ctx.init_ok(TXN)
    request = AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=TXN,
        v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=[
            AddPartitionsToTxnTopic(name="known", partitions=[0]),
            AddPartitionsToTxnTopic(name="missing", partitions=[0]),
        ],
    )
    response = ctx.finish(ctx.coord.add_partitions_to_txn(request, api_version=0))
    assert response is not None
    codes = {
        (t.name, p.partition_index): p.partition_error_code
        for t in response.results_by_topic_v3_and_below
        for p in t.results_by_partition
    }
    assert codes == {
        ("known", 0): E.OPERATION_NOT_ATTEMPTED,
        ("missing", 0): E.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert ctx.state(TXN) is S.EMPTY


def test_add_offsets_adds_the_groups_consumer_offsets_partition() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    assert ctx.add_offsets(TXN, pid, epoch, "my-group", version=0) == E.NONE
    expected = TopicPartition("__consumer_offsets", partition_for("my-group", 50))
    assert ctx.coord.get(TXN).partitions == {expected}  # type: ignore[union-attr]
    assert ctx.end(TXN, pid, epoch) == E.NONE
    assert [(m.topic, m.partition, m.commit) for m in ctx.markers] == [(*expected, True)]


def test_batched_v4_add_and_verify_only() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    topics = [AddPartitionsToTxnTopic(name="t", partitions=[0])]
    request = AddPartitionsToTxnRequest(
        transactions=[
            AddPartitionsToTxnTransaction(
                transactional_id=TXN,
                producer_id=pid,
                producer_epoch=epoch,
                verify_only=True,
                topics=topics,
            ),
            AddPartitionsToTxnTransaction(
                transactional_id=TXN, producer_id=pid, producer_epoch=epoch, topics=topics
            ),
            AddPartitionsToTxnTransaction(
                transactional_id=TXN,
                producer_id=pid,
                producer_epoch=epoch,
                verify_only=True,
                topics=topics,
            ),
            AddPartitionsToTxnTransaction(
                transactional_id="x", producer_id=pid, producer_epoch=epoch, topics=topics
            ),
        ]
    )
    response = ctx.finish(ctx.coord.add_partitions_to_txn(request, api_version=4))
    assert response is not None and response.error_code == 0
    codes = [
        r.topic_results[0].results_by_partition[0].partition_error_code
        for r in response.results_by_transaction
    ]
    assert codes == [E.INVALID_TXN_STATE, E.NONE, E.NONE, E.INVALID_PRODUCER_ID_MAPPING]


def test_end_txn_v5_returns_the_producer_id_and_the_bumped_epoch() -> None:
    # KIP-890 part 2: v5 bumps the epoch at every end (v0-v4 keep it; see test_txn_v2)
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    request = EndTxnRequest(
        transactional_id=TXN, producer_id=pid, producer_epoch=epoch, committed=True
    )
    response = ctx.finish(ctx.coord.end_txn(request, api_version=5))
    assert response is not None and (
        response.error_code,
        response.producer_id,
        response.producer_epoch,
    ) == (0, pid, epoch + 1)


# -- timers ------------------------------------------------------------------------------------
def test_timed_out_transaction_is_fenced_and_aborted() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx, timeout_ms=1_000)
    started(ctx, "patient", timeout_ms=60_000)
    ctx.sleep(10_000)  # one sweep of transaction.abort.timed.out.transaction.cleanup.interval.ms
    assert ctx.state(TXN) is S.COMPLETE_ABORT
    assert ctx.state("patient") is S.ONGOING
    meta = ctx.coord.get(TXN)
    assert meta is not None and meta.producer_epoch == epoch + 1
    assert [(m.partition, m.producer_epoch, m.commit) for m in ctx.markers] == [
        (0, epoch + 1, False),
        (1, epoch + 1, False),
    ]
    # the zombie is fenced everywhere, including a KIP-360 resume with its epoch
    assert ctx.end(TXN, pid, epoch) == E.PRODUCER_FENCED
    assert ctx.add(TXN, pid, epoch) == E.PRODUCER_FENCED
    assert ctx.init(TXN, producer_id=pid, producer_epoch=epoch).error_code == E.PRODUCER_FENCED
    assert ctx.init_ok(TXN) == (pid, epoch + 2)
    ctx.sleep(60_000)
    assert ctx.state("patient") is S.COMPLETE_ABORT


def test_timeout_is_measured_from_the_transaction_start() -> None:
    ctx = TxnTestContext()
    started(ctx, timeout_ms=15_000)
    ctx.sleep(10_000)
    assert ctx.state(TXN) is S.ONGOING
    ctx.sleep(10_000)
    assert ctx.state(TXN) is S.COMPLETE_ABORT


def test_idle_transactional_ids_expire_with_a_tombstone() -> None:
    ctx = TxnTestContext(
        transactional_id_expiration_ms=50_000,
        transaction_remove_expired_transaction_cleanup_interval_ms=20_000,
    )
    pid, epoch = ctx.init_ok(TXN)
    started(ctx, "busy", timeout_ms=900_000)
    ctx.sleep(40_000)
    assert ctx.state(TXN) is S.EMPTY
    ctx.sleep(20_000)
    assert ctx.state(TXN) is None
    assert ctx.log[-1].value is None and ctx.log[-1].transactional_id == TXN
    assert ctx.state("busy") is S.ONGOING  # a transaction in progress never expires
    assert ctx.add(TXN, pid, epoch) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.replayed().snapshot() == ctx.coord.snapshot()
    assert ctx.init_ok(TXN) == (1002, 0)


def test_unconfirmed_markers_are_emitted_again() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    assert ctx.end(TXN, pid, epoch) == E.NONE
    ctx.pending.clear()  # kbroker failed to write them
    ctx.sleep(4_999)
    assert len(ctx.markers) == 2
    ctx.sleep(1)
    assert len(ctx.markers) == 4 and ctx.markers[:2] == ctx.markers[2:]
    ctx.release_markers()
    assert ctx.state(TXN) is S.COMPLETE_COMMIT
    ctx.sleep(60_000)
    assert len(ctx.markers) == 4


def test_stale_markers_written_changes_nothing() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    assert ctx.end(TXN, pid, epoch) == E.NONE
    records = len(ctx.log)
    for args in [(TXN, pid, epoch), (TXN, pid, epoch + 1), ("nope", pid, epoch)]:
        result = ctx.coord.markers_written(*args)
        assert result.txn_records == [] and result.markers == []
    assert len(ctx.log) == records


# -- durability --------------------------------------------------------------------------------
def test_replay_equals_live_after_a_busy_history() -> None:
    ctx = TxnTestContext(
        transactional_id_expiration_ms=100_000,
        transaction_remove_expired_transaction_cleanup_interval_ms=50_000,
    )
    a_pid, a_epoch = started(ctx, "a", timeout_ms=5_000)
    b_pid, b_epoch = started(ctx, "b")
    assert ctx.end("b", b_pid, b_epoch) == E.NONE
    c_pid, c_epoch = ctx.init_ok("c")
    assert ctx.add_offsets("c", c_pid, c_epoch, "g") == E.NONE
    ctx.sleep(10_000)  # "a" times out
    ctx.init_ok("b")
    ctx.hold_markers = True
    assert ctx.end("c", c_pid, c_epoch, commit=False) == E.NONE  # left in PrepareAbort
    ctx.init_ok("d")
    ctx.sleep(200_000)
    assert ctx.state("a") is None and ctx.state("b") is None and ctx.state("c") is S.PREPARE_ABORT
    fresh = ctx.replayed()
    assert fresh.snapshot() == ctx.coord.snapshot()
    assert fresh.snapshot() != {}


def test_recovery_completes_prepared_transactions() -> None:
    ctx = TxnTestContext()
    c_pid, c_epoch = started(ctx, "commit-me")
    a_pid, a_epoch = started(ctx, "abort-me")
    ctx.hold_markers = True
    assert ctx.end("commit-me", c_pid, c_epoch, commit=True) == E.NONE
    assert ctx.end("abort-me", a_pid, a_epoch, commit=False) == E.NONE
    written = list(ctx.markers)
    # restart: a new coordinator loads the log, then on_loaded re-emits the markers
    restarted = TxnTestContext()
    for record in ctx.log:
        restarted.log.append(record)
        restarted.coord.replay(record.key, record.value)
    restarted.hold_markers = True
    restarted.finish(restarted.coord.on_loaded())
    assert sorted(restarted.markers, key=str) == sorted(written, key=str)
    assert restarted.state("commit-me") is S.PREPARE_COMMIT
    restarted.release_markers()
    assert restarted.state("commit-me") is S.COMPLETE_COMMIT
    assert restarted.state("abort-me") is S.COMPLETE_ABORT
    assert restarted.end("commit-me", c_pid, c_epoch, commit=True) == E.NONE


def test_recovery_arms_the_timeout_of_ongoing_transactions() -> None:
    ctx = TxnTestContext()
    started(ctx, timeout_ms=1_000)
    fresh_ctx = TxnTestContext()
    for record in ctx.log:
        fresh_ctx.coord.replay(record.key, record.value)
    fresh_ctx.finish(fresh_ctx.coord.on_loaded())
    fresh_ctx.sleep(10_000)
    assert fresh_ctx.state(TXN) is S.COMPLETE_ABORT


def test_coordinator_epoch_is_stamped_on_markers() -> None:
    ctx = TxnTestContext()
    ctx.coord = TransactionCoordinator(
        now_ms=ctx.clock.now_ms,
        timer=ctx.timer,
        allocate_producer_id=lambda: 9,
        coordinator_epoch=3,
    )
    pid, epoch = started(ctx)
    assert ctx.end(TXN, pid, epoch) == E.NONE
    assert {m.coordinator_epoch for m in ctx.markers} == {3}


def test_verify_partition_for_txn_offset_commit() -> None:
    ctx = TxnTestContext()
    pid, epoch = ctx.init_ok(TXN)
    offsets_tp = TopicPartition("__consumer_offsets", partition_for("g", 50))
    assert ctx.coord.verify_partition(TXN, pid, epoch, offsets_tp) == E.INVALID_TXN_STATE
    assert ctx.add_offsets(TXN, pid, epoch, "g") == E.NONE
    assert ctx.coord.verify_partition(TXN, pid, epoch, offsets_tp) == E.NONE
    assert ctx.coord.verify_partition(TXN, pid, epoch - 1, offsets_tp) == E.PRODUCER_FENCED
    assert (
        ctx.coord.verify_partition(TXN, pid + 1, epoch, offsets_tp) == E.INVALID_PRODUCER_ID_MAPPING
    )
    assert ctx.coord.verify_partition("x", pid, epoch, offsets_tp) == E.INVALID_PRODUCER_ID_MAPPING
    assert ctx.end(TXN, pid, epoch) == E.NONE
    assert ctx.coord.verify_partition(TXN, pid, epoch, offsets_tp) == E.INVALID_TXN_STATE


def test_unload_cancels_every_timer_and_forgets_state() -> None:
    ctx = TxnTestContext()
    pid, epoch = started(ctx)
    ctx.hold_markers = True
    assert ctx.end(TXN, pid, epoch) == E.NONE
    assert ctx.timer.keys == sorted(
        ["abort-timed-out-transactions", "remove-expired-transactional-ids", markers_key(TXN)]
    )
    result = ctx.coord.on_unloaded()
    assert result.txn_records == [] and result.markers == []
    assert ctx.timer.keys == [] and ctx.coord.get(TXN) is None
