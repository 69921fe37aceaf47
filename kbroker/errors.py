"""Errors a handler raises, and the mapping of ``log`` exceptions to Kafka error codes."""

from __future__ import annotations

from typing import Any

from kbroker.wire.errors import ErrorCode


class KafkaError(Exception):
    """The whole request fails with ``code`` (per-item errors go in the response instead)."""

    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


def fill_error(response: Any, code: ErrorCode, message: str | None = None) -> bool:
    """Set the top-level error fields of ``response``; False if it has none."""
    if not hasattr(response, "error_code"):
        return False
    response.error_code = int(code)
    if message is not None and hasattr(response, "error_message"):
        response.error_message = message
    return True


def log_error_code(exc: Exception) -> ErrorCode:
    """The Kafka error code for an exception raised by ``log``."""
    from kbroker.log import errors as e

    mapping: list[tuple[type[Exception], ErrorCode]] = [
        (e.UnsupportedMagicError, ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT),
        (e.CorruptBatchError, ErrorCode.CORRUPT_MESSAGE),
        (e.InvalidRecordError, ErrorCode.INVALID_RECORD),
        (e.RecordTooLargeError, ErrorCode.MESSAGE_TOO_LARGE),
        (e.RecordBatchTooLargeError, ErrorCode.RECORD_LIST_TOO_LARGE),
        (e.OffsetOutOfRangeError, ErrorCode.OFFSET_OUT_OF_RANGE),
        (e.OutOfOrderSequenceError, ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER),
        (e.InvalidProducerEpochError, ErrorCode.INVALID_PRODUCER_EPOCH),
        (e.InvalidTxnStateError, ErrorCode.INVALID_TXN_STATE),
        (e.LogStorageError, ErrorCode.KAFKA_STORAGE_ERROR),
        (e.TransactionCoordinatorFencedError, ErrorCode.TRANSACTION_COORDINATOR_FENCED),
        (e.UnknownPartitionError, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    for cls, code in mapping:
        if isinstance(exc, cls):
            return code
    return ErrorCode.UNKNOWN_SERVER_ERROR
