"""What every transaction coordinator entry point returns, and the runtime contract.

A ``TxnResult`` is a ``coordinator.result.Result`` (so timeouts fit the shared ``Timer``
protocol) with two more fields: ``txn_records`` for ``__transaction_state`` and
``markers`` to write. Its inherited ``records`` (``__consumer_offsets``) stays empty.

The runtime contract (kbroker owns the I/O), in order:

1. append ``result.txn_records`` to ``__transaction_state``, partition
   ``txn_partition_for(record.transactional_id, transaction.state.log.num.partitions)``,
   in order, and wait until they are durable (acks=all semantics);
2. for each ``TxnMarker`` in ``result.markers``: append a control batch
   (``wire.records.build_control_batch(COMMIT if m.commit else ABORT, producer_id=...,
   producer_epoch=..., coordinator_epoch=...)``) to ``m.topic``/``m.partition`` with
   origin COORDINATOR; if the partition is ``__consumer_offsets``, also tell the group
   coordinator (pending transactional offsets of ``m.producer_id`` become visible on
   commit, are dropped on abort). A partition that no longer exists is skipped, as Kafka
   does;
3. once every marker of a transaction is written, call
   ``coordinator.markers_written(transactional_id, producer_id, producer_epoch)`` (one
   call per entry of ``result.completions``) and finish *its* result the same way (it
   only carries the CompleteCommit/CompleteAbort record);
4. run ``result.replies`` (always empty today: no transactional request is parked) and
   answer the request with ``result.response``.

``apply_txn_result`` does exactly that for synchronous ``append`` / ``write_marker``.
If writing a marker fails, stop (the transaction stays PrepareCommit/PrepareAbort and
answers CONCURRENT_TRANSACTIONS); the coordinator re-emits the markers itself after
``transaction_marker_retry_backoff_ms`` through its timer, and again at start-up.
Kafka answers EndTxn as soon as step 1 is done; answering after step 3 (as
``apply_txn_result`` does) is also correct and spares the client a
CONCURRENT_TRANSACTIONS on its next transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from kbroker.coordinator.result import Result
from kbroker.coordinator.txn_records import TxnRecord

__all__ = ["TxnCompletion", "TxnMarker", "TxnResult", "apply_txn_result"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TxnMarker:
    """One end-transaction marker (a control batch) to write to one partition."""

    transactional_id: str
    topic: str
    partition: int
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int


@dataclass(frozen=True, slots=True)
class TxnCompletion:
    """The arguments of the ``markers_written`` call that completes one transaction."""

    transactional_id: str
    producer_id: int
    producer_epoch: int


@dataclass(slots=True)
class TxnResult(Result[R]):
    """``__transaction_state`` records to append, markers to write, then the response."""

    txn_records: list[TxnRecord] = field(default_factory=list)
    markers: list[TxnMarker] = field(default_factory=list)

    @property
    def completions(self) -> list[TxnCompletion]:
        """One entry per transaction among ``markers``, in order of first appearance."""
        seen: dict[TxnCompletion, None] = {}
        for m in self.markers:
            seen[TxnCompletion(m.transactional_id, m.producer_id, m.producer_epoch)] = None
        return list(seen)


def apply_txn_result(
    result: TxnResult[R],
    *,
    append: Callable[[list[TxnRecord]], None],
    write_marker: Callable[[TxnMarker], None],
    markers_written: Callable[[str, int, int], TxnResult[None]],
) -> R | None:
    """Run the contract above synchronously; returns the response."""
    if result.txn_records:
        append(result.txn_records)
    for marker in result.markers:
        write_marker(marker)
    for done in result.completions:
        follow_up = markers_written(done.transactional_id, done.producer_id, done.producer_epoch)
        apply_txn_result(
            follow_up, append=append, write_marker=write_marker, markers_written=markers_written
        )
    for reply in result.replies:
        reply()
    return result.response
