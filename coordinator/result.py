"""What every coordinator entry point returns: records to append, then a response.

The runtime contract (kbroker owns the I/O):

1. append ``result.records`` to ``__consumer_offsets`` (partition
   ``partition_for(record.group_id, n)``), in order;
2. once they are durable, call every function in ``result.replies`` (answers to parked
   JoinGroup/SyncGroup requests, possibly including the caller's own);
3. answer the request with ``result.response``; ``None`` means the request is parked
   and its answer arrives through the ``reply`` callback it was given.

``apply_result`` does exactly that for a synchronous ``append``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

__all__ = ["Effects", "Record", "Result", "apply_result"]

R = TypeVar("R")


class Record(NamedTuple):
    """One ``__consumer_offsets`` record: Kafka's key and value bytes (None = tombstone).

    A ``producer_id`` other than -1 marks a transactional offset commit: append it in a
    transactional batch of that producer id/epoch; it counts once the transaction's
    COMMIT marker is written (then call ``GroupCoordinator.replay_end_transaction``).
    """

    key: bytes
    value: bytes | None
    group_id: str
    producer_id: int = -1
    producer_epoch: int = -1


@dataclass(slots=True)
class Effects:
    """Side effects collected while a handler or timeout runs (records, deferred replies)."""

    records: list[Record] = field(default_factory=list)
    replies: list[Callable[[], None]] = field(default_factory=list)

    def result(self, response: R | None) -> Result[R]:
        return Result(records=self.records, response=response, replies=self.replies)


@dataclass(slots=True)
class Result(Generic[R]):
    """Records to append, replies to send once they are appended, and the response."""

    records: list[Record] = field(default_factory=list)
    response: R | None = None
    replies: list[Callable[[], None]] = field(default_factory=list)


def apply_result(result: Result[R], append: Callable[[list[Record]], None]) -> R | None:
    """Append the records (if any), deliver the deferred replies, return the response."""
    if result.records:
        append(result.records)
    for reply in result.replies:
        reply()
    return result.response
