"""The transaction state machine, as a table (Kafka's ``TransactionState``), and the
per-transactional-id metadata value.

Everything that decides which state may follow which lives here; the handlers in
``txn_coordinator`` only ask for a transition, and ``assert_valid_transition`` refuses an
edge the table does not list. The table is Kafka 4.x's, with KIP-890 part 2's extra
edges Empty/Complete* -> PrepareAbort (a transaction version 2 client may abort when no
partition was added, because partitions join implicitly and it cannot know).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import NamedTuple

__all__ = [
    "ALLOWED_PREVIOUS",
    "NO_PRODUCER_EPOCH",
    "NO_PRODUCER_ID",
    "TV_0",
    "TV_2",
    "IllegalTransition",
    "TopicPartition",
    "TransactionMetadata",
    "TransactionState",
    "assert_valid_transition",
    "is_epoch_exhausted",
    "supports_epoch_bump",
]

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_PRODUCER_EPOCH = 32767
"""Epochs are int16 on the wire."""

# Kafka's TransactionVersion levels as a client speaks them (``ClientTransactionVersion``
# of TransactionLogValue).  The coordinator derives the level from the request version,
# as Kafka does: AddPartitionsToTxn v4+ (sent by brokers: the implicit add of a Produce
# v12+ or TxnOffsetCommit v5+) and EndTxn v5+ are TV_2; older versions and
# AddOffsetsToTxn are TV_0.  Level 1 only changes the log format, never a client's view.
TV_0 = 0
TV_2 = 2


def supports_epoch_bump(client_transaction_version: int) -> bool:
    """KIP-890 part 2: every transaction end bumps the producer epoch (TV_2 and up)."""
    return client_transaction_version >= TV_2


def is_epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch (32767) in reserve: a timeout or InitProducerId must
    always be able to fence the client's epoch with one bump, so an epoch >= 32766 is
    never handed out bumped again; the producer id is rotated instead."""
    return epoch >= MAX_PRODUCER_EPOCH - 1


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class TransactionState(Enum):
    """A transactional id's state. ``value`` is Kafka's id (the int8 ``TransactionStatus``
    of ``TransactionLogValue``); ``str()`` is Kafka's display name (Describe/ListTransactions).
    """

    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    def __str__(self) -> str:
        return _NAMES[self]

    @classmethod
    def from_name(cls, name: str) -> TransactionState | None:
        return _BY_NAME.get(name)

    @property
    def is_complete(self) -> bool:
        return self in (TransactionState.COMPLETE_COMMIT, TransactionState.COMPLETE_ABORT)

    @property
    def is_prepared(self) -> bool:
        return self in (TransactionState.PREPARE_COMMIT, TransactionState.PREPARE_ABORT)

    @property
    def can_start_transaction(self) -> bool:
        """No transaction in progress: InitProducerId bumps, AddPartitions starts one."""
        return self in (
            TransactionState.EMPTY,
            TransactionState.COMPLETE_COMMIT,
            TransactionState.COMPLETE_ABORT,
        )


S = TransactionState

_NAMES: dict[TransactionState, str] = {
    S.EMPTY: "Empty",
    S.ONGOING: "Ongoing",
    S.PREPARE_COMMIT: "PrepareCommit",
    S.PREPARE_ABORT: "PrepareAbort",
    S.COMPLETE_COMMIT: "CompleteCommit",
    S.COMPLETE_ABORT: "CompleteAbort",
    S.DEAD: "Dead",
    S.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
_BY_NAME = {name: state for state, name in _NAMES.items()}

_DOCS: dict[TransactionState, str] = {
    S.EMPTY: """A producer id and epoch are assigned; no transaction has been started yet.

    action: InitProducerId bumps the epoch (fencing the previous producer) or rotates the
            producer id when the epoch is exhausted; AddPartitionsToTxn/AddOffsetsToTxn
            (or, TV_2, a Produce/TxnOffsetCommit adding implicitly) start a transaction;
            EndTxn gets INVALID_TXN_STATE, except EndTxn(abort) v5+ with the current
            epoch, which aborts the empty transaction with an epoch bump (TV_2).
    transition: InitProducerId => Empty (new epoch)
                partitions added => Ongoing
                EndTxn(abort) v5+ => PrepareAbort (epoch + 1, no partitions)
                transactional.id.expiration.ms passed => Dead
    """,
    S.ONGOING: """A transaction is in progress; partitions have been added to it.

    action: AddPartitionsToTxn/AddOffsetsToTxn add partitions (answered at once when they
            are already in); EndTxn(commit) prepares the commit, EndTxn(abort) the abort
            (v5+, TV_2: with the epoch bumped, and a next producer id when the epoch is
            exhausted); InitProducerId fences the epoch, aborts, and answers
            CONCURRENT_TRANSACTIONS.
    transition: more partitions => Ongoing
                EndTxn(commit) => PrepareCommit;  EndTxn(abort) => PrepareAbort
                transaction.timeout.ms passed, or InitProducerId => PrepareEpochFence
    """,
    S.PREPARE_COMMIT: """The commit decision is durable; markers are being written.

    action: EndTxn(commit) and InitProducerId and AddPartitions get CONCURRENT_TRANSACTIONS
            (retriable); EndTxn(abort) gets INVALID_TXN_STATE.  A TV_2 transaction holds
            the bumped epoch here (its markers carry it); EndTxn v5 is accepted only with
            the epoch before the bump (a retry).
    transition: every partition has its COMMIT marker => CompleteCommit (the next
                producer id, epoch 0, when the bump exhausted the epoch)
    """,
    S.PREPARE_ABORT: """The abort decision is durable; markers are being written.

    action: as PrepareCommit, with commit and abort swapped.
    transition: every partition has its ABORT marker => CompleteAbort
    """,
    S.COMPLETE_COMMIT: """The last transaction committed; no transaction in progress.

    action: as Empty, except EndTxn(commit) v0-v4 with the current epoch answers NONE (a
            retry of the commit whose answer was lost) and EndTxn(abort) INVALID_TXN_STATE.
            EndTxn v5+ (TV_2): commit with the epoch before the bump (or the old
            producer id at 32766 after a rotation) is the retry and answers NONE with
            the current ids; abort with the current epoch starts an empty abort.
    transition: InitProducerId => Empty;  partitions added => Ongoing
                EndTxn(abort) v5+ => PrepareAbort (epoch + 1, no partitions)
                transactional.id.expiration.ms passed => Dead
    """,
    S.COMPLETE_ABORT: """The last transaction aborted; no transaction in progress.

    action: as CompleteCommit, with commit and abort swapped (EndTxn(abort) v5+ with the
            current epoch starts another, empty abort).
    transition: InitProducerId => Empty;  partitions added => Ongoing
                EndTxn(abort) v5+ => PrepareAbort (epoch + 1, no partitions)
                transactional.id.expiration.ms passed => Dead
    """,
    S.DEAD: """The transactional id expired; its tombstone is being written.

    action: never observed by requests: the metadata is removed in the same step.
    transition: none; Dead is final.
    """,
    S.PREPARE_EPOCH_FENCE: """The coordinator is fencing the producer (timeout, or a new
    InitProducerId while a transaction is open): the epoch is bumped by one, then the
    transaction aborts under the new epoch, so the old producer's requests are fenced.
    A TV_2 transaction gets that one bump as its end-of-transaction bump (a next
    producer id when it exhausts the epoch), as Kafka's newest coordinators do.

    action: transient; it is never written to the log nor seen by a request (kbroker runs
            the fence and the PrepareAbort in one step).
    transition: => PrepareAbort (with the bumped epoch)
    """,
}
for _state, _doc in _DOCS.items():
    _state.__doc__ = _doc  # each state documents its action and transitions


ALLOWED_PREVIOUS: dict[TransactionState, frozenset[TransactionState]] = {
    S.EMPTY: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.ONGOING: frozenset({S.ONGOING, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_COMMIT: frozenset({S.ONGOING}),
    S.PREPARE_ABORT: frozenset(
        {S.ONGOING, S.PREPARE_EPOCH_FENCE, S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}
    ),
    S.COMPLETE_COMMIT: frozenset({S.PREPARE_COMMIT}),
    S.COMPLETE_ABORT: frozenset({S.PREPARE_ABORT}),
    S.DEAD: frozenset({S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}),
    S.PREPARE_EPOCH_FENCE: frozenset({S.ONGOING}),
}
"""For each target state, the states it may be entered from (Kafka's validPreviousStates)."""


class IllegalTransition(AssertionError):
    """A transition that ``ALLOWED_PREVIOUS`` does not list: a coordinator bug."""


def assert_valid_transition(current: TransactionState, target: TransactionState) -> None:
    if current not in ALLOWED_PREVIOUS[target]:
        raise IllegalTransition(f"illegal transaction state transition {current} -> {target}")


@dataclass(frozen=True, slots=True)
class TransactionMetadata:
    """Everything the coordinator knows about one transactional id (an immutable value;
    a transition makes a new one with ``transit``).

    Invariants: ``partitions`` is empty in Empty/Complete*/Dead and non-empty in Ongoing
    and Prepare*, except a TV_2 abort of a transaction without partitions (an empty
    PrepareAbort); ``txn_start_timestamp_ms`` is -1 in Empty and the time the first
    partition was added otherwise; ``producer_epoch`` is in [0, 32767].

    ``prev_producer_id`` is the producer id before the latest transition: it differs from
    ``producer_id`` only right after an epoch-exhaustion rotation, so that a KIP-360 retry
    of that InitProducerId (carrying the old id) is recognised.

    ``last_producer_epoch`` is the epoch before the last InitProducerId bump (KIP-360:
    a retry whose answer was lost returns the current epoch again), or before a TV_2
    end-of-transaction bump; like Kafka it is not in the log, so a reloaded coordinator
    starts with -1 there.

    ``next_producer_id`` (TV_2) is set in PrepareCommit/PrepareAbort when the bump
    reached the last epoch: the completion moves to that producer id with epoch 0.
    ``client_transaction_version`` is the TV level of the request behind the last
    add or end (``TV_0``/``TV_2``); both are logged (tagged fields).
    """

    transactional_id: str
    producer_id: int
    producer_epoch: int
    txn_timeout_ms: int
    state: TransactionState
    partitions: frozenset[TopicPartition] = frozenset()
    txn_start_timestamp_ms: int = -1
    txn_last_update_timestamp_ms: int = -1
    prev_producer_id: int = NO_PRODUCER_ID
    last_producer_epoch: int = NO_PRODUCER_EPOCH
    next_producer_id: int = NO_PRODUCER_ID
    client_transaction_version: int = TV_0

    def transit(self, target: TransactionState, **changes: object) -> TransactionMetadata:
        """The metadata after moving to ``target``; refuses an edge the table lacks.

        ``prev_producer_id`` becomes the producer id before this transition unless given
        (Kafka: only right after a rotation do they differ)."""
        assert_valid_transition(self.state, target)
        changes.setdefault("prev_producer_id", self.producer_id)
        return replace(self, state=target, **changes)  # type: ignore[arg-type]

    def durable(self) -> TransactionMetadata:
        """This metadata as the log records it (what a replay rebuilds)."""
        return replace(self, last_producer_epoch=NO_PRODUCER_EPOCH)

    @property
    def is_epoch_exhausted(self) -> bool:
        return is_epoch_exhausted(self.producer_epoch)
