"""Transaction version 2 (KIP-890 part 2): EndTxn v5's decision table and epoch bump.

Theory of operation
-------------------
A TV_2 client (EndTxn v5+, Produce v12+, TxnOffsetCommit v5+) never sends
AddPartitionsToTxn: the partition's leader adds the partition for it (in kbroker, the
Produce and TxnOffsetCommit handlers call ``TransactionCoordinator.add_partitions_implicitly``).
Every end of a transaction bumps the producer epoch:

    Ongoing(pid, e) --EndTxn v5--> Prepare*(pid, e + 1)   markers carry e + 1
                                   CompleteX(pid, e + 1)  EndTxn answers (pid, e + 1)

so a zombie still holding epoch ``e`` is fenced by the markers themselves.  When the bump
reaches the last epoch (``e + 1 == 32767``, ``is_epoch_exhausted(e)``) the Prepare*
record also names a freshly allocated ``next_producer_id``; the completion moves to it
with epoch 0 and EndTxn answers (next_producer_id, 0).  The client never holds 32767.

Because the epoch moves at each end, "same epoch" means "the next transaction", not a
retry.  A retry of an EndTxn whose answer was lost carries the epoch *before* the bump
(``retry_on_epoch_bump``) or, after a rotation, the old producer id at 32766
(``retry_on_overflow``).  Which requests are valid, per state:

    Ongoing, Empty       the current epoch
    Prepare*             a retry only (answered CONCURRENT_TRANSACTIONS, or INVALID_TXN_STATE
                         for the other outcome)
    Complete*            a retry, or the current epoch

and then ``END_TXN_V2`` below says what each (state, commit/abort, retry?) does: a target
state (prepare with a bump), or an error code (NONE for an answered retry).  A request
that fails the validity check gets PRODUCER_FENCED; an unknown producer id (that is not
the overflow retry) INVALID_PRODUCER_ID_MAPPING.  Pure functions; the coordinator does
the writing.
"""

from __future__ import annotations

from kbroker.coordinator.txn_state import (
    MAX_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TV_2,
    TransactionMetadata,
    TransactionState,
)
from kbroker.wire.errors import ErrorCode

__all__ = [
    "END_TXN_V2",
    "complete",
    "completed_ids",
    "end_txn_v2_outcome",
    "is_retry",
    "prepare_end_v2",
]

S = TransactionState
E = ErrorCode
Outcome = TransactionState | ErrorCode

END_TXN_V2: dict[tuple[TransactionState, bool], tuple[Outcome | None, Outcome | None]] = {
    # (state, committed) -> (outcome with the current epoch, outcome of a retry);
    # None where the validity check has already answered PRODUCER_FENCED.
    (S.ONGOING, True): (S.PREPARE_COMMIT, None),
    (S.ONGOING, False): (S.PREPARE_ABORT, None),
    (S.EMPTY, True): (E.INVALID_TXN_STATE, None),
    (S.EMPTY, False): (S.PREPARE_ABORT, None),
    (S.COMPLETE_COMMIT, True): (E.INVALID_TXN_STATE, E.NONE),
    (S.COMPLETE_COMMIT, False): (S.PREPARE_ABORT, E.INVALID_TXN_STATE),
    (S.COMPLETE_ABORT, True): (E.INVALID_TXN_STATE, E.INVALID_TXN_STATE),
    (S.COMPLETE_ABORT, False): (S.PREPARE_ABORT, E.NONE),
    (S.PREPARE_COMMIT, True): (None, E.CONCURRENT_TRANSACTIONS),
    (S.PREPARE_COMMIT, False): (None, E.INVALID_TXN_STATE),
    (S.PREPARE_ABORT, True): (None, E.INVALID_TXN_STATE),
    (S.PREPARE_ABORT, False): (None, E.CONCURRENT_TRANSACTIONS),
}
"""Kafka 4's EndTxn v5 answers (its TransactionCoordinator's TV_2 table, plus Ongoing and
Prepare*).  ``test_txn_v2`` checks every entry."""


def _retry_on_overflow(meta: TransactionMetadata, producer_id: int, producer_epoch: int) -> bool:
    return (
        meta.prev_producer_id == producer_id
        and meta.producer_id != producer_id
        and producer_epoch == MAX_PRODUCER_EPOCH - 1
        and meta.producer_epoch == 0
    )


def is_retry(meta: TransactionMetadata, producer_id: int, producer_epoch: int) -> bool:
    """Does (producer_id, producer_epoch) name the epoch before this metadata's last bump?"""
    if _retry_on_overflow(meta, producer_id, producer_epoch):
        return True
    return meta.producer_id == producer_id and meta.producer_epoch == producer_epoch + 1


def end_txn_v2_outcome(
    meta: TransactionMetadata, producer_id: int, producer_epoch: int, committed: bool
) -> Outcome:
    """The error code, or the Prepare* state to move to, for an EndTxn v5+."""
    if meta.producer_id != producer_id and not _retry_on_overflow(
        meta, producer_id, producer_epoch
    ):
        return E.INVALID_PRODUCER_ID_MAPPING
    retry = is_retry(meta, producer_id, producer_epoch)
    current = producer_epoch == meta.producer_epoch
    if meta.state in (S.ONGOING, S.EMPTY):
        valid = current
    elif meta.state.is_prepared:
        valid = retry
    elif meta.state.is_complete:
        valid = retry or current
    else:  # Dead / PrepareEpochFence are never stored
        raise AssertionError(f"{meta.transactional_id} found in {meta.state}")
    if not valid:
        return E.PRODUCER_FENCED
    outcome = END_TXN_V2[(meta.state, committed)][1 if retry else 0]
    assert outcome is not None, (meta.state, committed, retry)
    if isinstance(outcome, TransactionState) and meta.producer_epoch >= MAX_PRODUCER_EPOCH:
        # only the coordinator's own fencing epoch reaches 32767; no client holds it
        return E.PRODUCER_FENCED
    return outcome


def prepare_end_v2(
    meta: TransactionMetadata,
    target: TransactionState,
    *,
    now_ms: int,
    next_producer_id: int,
    no_partition_added: bool,
) -> TransactionMetadata:
    """Ongoing/Empty/Complete* -> ``target`` (PrepareCommit/PrepareAbort) with the epoch
    bumped; ``next_producer_id`` is the id to move to at completion when the bump reaches
    the last epoch (else NO_PRODUCER_ID).  A transaction without partitions gets ``now_ms``
    as its start time, as Kafka does."""
    assert meta.producer_epoch < MAX_PRODUCER_EPOCH, meta
    return meta.transit(
        target,
        producer_epoch=meta.producer_epoch + 1,
        last_producer_epoch=meta.producer_epoch,
        next_producer_id=next_producer_id,
        txn_start_timestamp_ms=now_ms if no_partition_added else meta.txn_start_timestamp_ms,
        txn_last_update_timestamp_ms=now_ms,
        client_transaction_version=TV_2,
    )


def completed_ids(meta: TransactionMetadata) -> tuple[int, int]:
    """(producer id, epoch) of the Complete* state that follows the Prepare* ``meta``."""
    if meta.next_producer_id != NO_PRODUCER_ID:
        return meta.next_producer_id, 0
    return meta.producer_id, meta.producer_epoch


def complete(
    meta: TransactionMetadata, target: TransactionState, now_ms: int
) -> TransactionMetadata:
    """Prepare* -> Complete*: partitions cleared; a TV_2 rotation moves to the next id."""
    pid, epoch = completed_ids(meta)
    return meta.transit(  # prev_producer_id: the id before (differs after a rotation)
        target,
        partitions=frozenset(),
        txn_last_update_timestamp_ms=now_ms,
        producer_id=pid,
        producer_epoch=epoch,
        next_producer_id=NO_PRODUCER_ID,
    )
