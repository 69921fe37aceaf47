"""The exceptions of the log engine.

``log`` never learns the Kafka protocol: the broker maps each class below to an
``ErrorCode`` (the suggested code is named in each docstring).  Every exception
raised by an append leaves the log exactly as it was before the call.
"""

from __future__ import annotations


class LogError(Exception):
    """Base of every exception raised by ``log``."""


class CorruptBatchError(LogError):
    """A batch failed validation: bad size, CRC-32C or header fields (CORRUPT_MESSAGE)."""


class UnsupportedMagicError(CorruptBatchError):
    """A batch uses message format v0/v1 or an unknown magic (UNSUPPORTED_FOR_MESSAGE_FORMAT)."""


class InvalidRecordError(LogError):
    """A well-formed batch that this append may not carry, e.g. a control batch from a
    client or an empty batch (INVALID_RECORD)."""


class RecordTooLargeError(LogError):
    """A batch is larger than ``max.message.bytes`` (MESSAGE_TOO_LARGE)."""


class RecordBatchTooLargeError(LogError):
    """The appended blob is larger than a whole segment (RECORD_LIST_TOO_LARGE)."""


class OffsetOutOfRangeError(LogError):
    """A read or lookup offset is outside [log start offset, log end offset] (OFFSET_OUT_OF_RANGE)."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(f"offset {offset} is outside [{log_start_offset}, {log_end_offset}]")
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class DuplicateSequence(LogError):  # noqa: N818 - the brief's name; it is not a failure
    """The batch repeats one of the producer's last five batches; nothing was written.

    Kafka answers such a produce with NONE and the *original* offsets, so the broker
    should reply success with ``base_offset`` (and ``last_offset`` for its logs).
    """

    def __init__(self, base_offset: int, last_offset: int) -> None:
        super().__init__(f"duplicate of the batch at offsets {base_offset}..{last_offset}")
        self.base_offset = base_offset
        self.last_offset = last_offset


class OutOfOrderSequenceError(LogError):
    """The batch's base sequence does not follow the producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER)."""


class InvalidProducerEpochError(LogError):
    """The batch's producer epoch is older than the one the log knows (INVALID_PRODUCER_EPOCH)."""


class InvalidTxnStateError(LogError):
    """A non-transactional batch from a producer with an open transaction (INVALID_TXN_STATE)."""


class TransactionCoordinatorFencedError(LogError):
    """A transaction marker carries an older coordinator epoch than the last marker
    for that producer (TRANSACTION_COORDINATOR_FENCED)."""


class UnknownPartitionError(LogError):
    """The LogManager holds no log for that topic partition (UNKNOWN_TOPIC_OR_PARTITION)."""


class LogStorageError(LogError):
    """An I/O error (ENOSPC, EIO, ...) while writing or reading files (KAFKA_STORAGE_ERROR).

    After a failed append the log has been truncated back to its last good position.
    A failed fsync (LogFsyncError) marks the log offline: every later append raises
    this, reads are still served.
    """


class LogFsyncError(LogStorageError):
    """An fsync of a segment's ``.log`` file failed (KAFKA_STORAGE_ERROR).

    What the kernel still holds for that file is then unknown (a failed fsync may have
    dropped the dirty pages), so the log goes offline: appends are refused, reads of
    what it holds are still served, and a restart recovers it from its last good
    recovery point.  Other write failures (a full disk: ENOSPC on write, index or
    snapshot files) leave the log online, so appends succeed again once space returns.
    """
