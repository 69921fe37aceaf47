"""Value objects returned by the log."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple


class AppendOrigin(enum.Enum):
    """Who is appending: a producer (CLIENT) may not write control batches; the
    transaction coordinator (COORDINATOR) writes commit/abort markers."""

    CLIENT = "client"
    COORDINATOR = "coordinator"


class AppendResult(NamedTuple):
    """What an append did: the offsets it assigned, in the produce response's terms.

    ``log_append_time_ms`` is -1 unless the topic uses LogAppendTime.  Immutable
    like the other results, but a NamedTuple rather than a frozen dataclass: one is
    built per append, and a frozen dataclass costs ~3x as much to construct.
    """

    base_offset: int
    last_offset: int
    log_append_time_ms: int
    log_start_offset: int
    record_count: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class FetchSlice:
    """Whole batches read from one segment, exactly as stored.

    ``records`` may start before the requested offset (a read that begins inside a
    batch returns that whole batch) and is empty at the log end.  ``file_position`` /
    ``segment_path`` name the same bytes on disk for a sendfile-style transfer; the
    region is valid until the next retention or truncation call.
    """

    records: bytes | memoryview
    first_offset: int
    next_offset: int
    high_watermark: int
    last_stable_offset: int
    log_start_offset: int
    segment_path: str
    file_position: int

    @property
    def size_bytes(self) -> int:
        return len(self.records)


@dataclass(frozen=True, slots=True)
class TimestampAndOffset:
    """A ListOffsets answer: ``timestamp`` is -1 for the earliest/latest lookups."""

    timestamp: int
    offset: int
    leader_epoch: int = -1


@dataclass(frozen=True, slots=True)
class EpochEndOffset:
    """An OffsetForLeaderEpoch answer (both -1 when the epoch is unknown)."""

    leader_epoch: int
    end_offset: int


@dataclass(frozen=True, slots=True)
class ActiveProducer:
    """One producer's state in a partition, as DescribeProducers reports it.

    ``last_sequence`` is -1 when no data batch of the current epoch is cached;
    ``current_txn_start_offset`` is -1 without an ongoing transaction;
    ``coordinator_epoch`` is that of the producer's last marker (-1: none yet).
    """

    producer_id: int
    producer_epoch: int
    last_sequence: int
    last_timestamp: int
    coordinator_epoch: int
    current_txn_start_offset: int
