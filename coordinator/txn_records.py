"""``__transaction_state`` records in Kafka's own formats.

Key   = int16 key version (0) + ``TransactionLogKey`` v0 (the transactional id).
Value = int16 value version + ``TransactionLogValue``; a tombstone (None) removes an
        expired transactional id.
We write value v1 (flexible; Kafka 4.x writes v1 once transaction version 1 is on), with
the tagged ``PreviousProducerId`` set after a producer-id rotation, ``NextProducerId`` in
a TV_2 PrepareCommit/PrepareAbort whose epoch bump exhausted the epoch (KIP-890 part 2),
and ``ClientTransactionVersion`` (the level of the request behind the last add or end;
not written while 0, so a TV_0 transaction's records are what they were before TV_2).
We read v0 and v1, so logs written by Kafka itself replay. Empty has a null partition
list, as Kafka writes it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kbroker.coordinator.records import java_string_hashcode, kafka_partition_for
from kbroker.coordinator.txn_state import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TopicPartition,
    TransactionMetadata,
    TransactionState,
)
from kbroker.wire.codec import decode_from, encode
from kbroker.wire.messages.internal.transaction_log_key import TransactionLogKey
from kbroker.wire.messages.internal.transaction_log_value import (
    PartitionsSchema,
    TransactionLogValue,
)

__all__ = [
    "TRANSACTION_STATE_TOPIC",
    "TxnRecord",
    "TxnRecordFormatError",
    "decode_txn_record",
    "java_string_hashcode",
    "txn_partition_for",
    "txn_record",
    "txn_tombstone",
]

TRANSACTION_STATE_TOPIC = "__transaction_state"
KEY_VERSION = 0
VALUE_VERSION = 1
_INT16 = struct.Struct(">h")


class TxnRecord(NamedTuple):
    """One ``__transaction_state`` record: Kafka's key and value bytes (None = tombstone).

    It goes to partition ``txn_partition_for(transactional_id, n)``."""

    key: bytes
    value: bytes | None
    transactional_id: str


# In-memory states only: Dead (an expired id is written as a tombstone) and
# PrepareEpochFence (becomes PrepareAbort before anything is written).
_NEVER_WRITTEN = frozenset({TransactionState.DEAD, TransactionState.PREPARE_EPOCH_FENCE})


class TxnRecordFormatError(ValueError):
    """A ``__transaction_state`` record this coordinator cannot read."""


def txn_partition_for(transactional_id: str, num_partitions: int) -> int:
    """The ``__transaction_state`` partition of a transactional id, as Kafka computes it:
    ``Utils.abs(transactionalId.hashCode()) % transaction.state.log.num.partitions``,
    where ``Utils.abs(Integer.MIN_VALUE)`` is 0 (not ``h & 0x7fffffff``, which differs for
    negative hash codes)."""
    return kafka_partition_for(transactional_id, num_partitions)


def _key(transactional_id: str) -> bytes:
    key = TransactionLogKey(transactional_id=transactional_id)
    return _INT16.pack(KEY_VERSION) + encode(key, KEY_VERSION)


def _grouped(partitions: frozenset[TopicPartition]) -> list[PartitionsSchema]:
    by_topic: dict[str, list[int]] = {}
    for tp in sorted(partitions):
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return [PartitionsSchema(topic=t, partition_ids=ps) for t, ps in by_topic.items()]


def txn_record(meta: TransactionMetadata) -> TxnRecord:
    """The record that makes ``meta`` durable."""
    if meta.state in _NEVER_WRITTEN:
        raise ValueError(f"{meta.state} is never written to the log")
    prev = meta.prev_producer_id if meta.prev_producer_id != meta.producer_id else NO_PRODUCER_ID
    value = TransactionLogValue(
        producer_id=meta.producer_id,
        previous_producer_id=prev,
        next_producer_id=meta.next_producer_id,
        producer_epoch=meta.producer_epoch,
        transaction_timeout_ms=meta.txn_timeout_ms,
        transaction_status=meta.state.value,
        transaction_partitions=(
            None if meta.state is TransactionState.EMPTY else _grouped(meta.partitions)
        ),
        transaction_last_update_timestamp_ms=meta.txn_last_update_timestamp_ms,
        transaction_start_timestamp_ms=meta.txn_start_timestamp_ms,
        client_transaction_version=meta.client_transaction_version,
    )
    raw = _INT16.pack(VALUE_VERSION) + encode(value, VALUE_VERSION)
    return TxnRecord(_key(meta.transactional_id), raw, meta.transactional_id)


def txn_tombstone(transactional_id: str) -> TxnRecord:
    """The record that removes an expired transactional id."""
    return TxnRecord(_key(transactional_id), None, transactional_id)


def _version_and_body(data: bytes) -> tuple[int, memoryview]:
    if len(data) < 2:
        raise TxnRecordFormatError("record shorter than its version prefix")
    return _INT16.unpack_from(data)[0], memoryview(data)[2:]


def decode_txn_record(key: bytes, value: bytes | None) -> tuple[str, TransactionMetadata | None]:
    """(transactional id, metadata or None for a tombstone)."""
    key_version, key_body = _version_and_body(key)
    if key_version != 0:
        raise TxnRecordFormatError(f"unknown TransactionLogKey version {key_version}")
    tkey, _ = decode_from(TransactionLogKey, key_version, key_body)
    txn_id = tkey.transactional_id
    if value is None:
        return txn_id, None
    value_version, value_body = _version_and_body(value)
    if not 0 <= value_version <= 1:
        raise TxnRecordFormatError(f"unknown TransactionLogValue version {value_version}")
    tv, _ = decode_from(TransactionLogValue, value_version, value_body)
    try:
        state = TransactionState(tv.transaction_status)
    except ValueError:
        raise TxnRecordFormatError(f"unknown transaction status {tv.transaction_status}") from None
    if state in _NEVER_WRITTEN:
        # txn_record refuses to write these; replaying one would break the coordinator's
        # state assertions (EndTxn on a Dead transaction)
        raise TxnRecordFormatError(f"transaction status {state} is never written to the log")
    partitions = frozenset(
        TopicPartition(p.topic, i) for p in tv.transaction_partitions or [] for i in p.partition_ids
    )
    prev = tv.previous_producer_id if tv.previous_producer_id != NO_PRODUCER_ID else tv.producer_id
    meta = TransactionMetadata(
        transactional_id=txn_id,
        producer_id=tv.producer_id,
        producer_epoch=tv.producer_epoch,
        txn_timeout_ms=tv.transaction_timeout_ms,
        state=state,
        partitions=partitions,
        txn_start_timestamp_ms=tv.transaction_start_timestamp_ms,
        txn_last_update_timestamp_ms=tv.transaction_last_update_timestamp_ms,
        prev_producer_id=prev,
        last_producer_epoch=NO_PRODUCER_EPOCH,
        next_producer_id=tv.next_producer_id,  # tagged: -1 and 0 in a v0 value
        client_transaction_version=tv.client_transaction_version,
    )
    return txn_id, meta
