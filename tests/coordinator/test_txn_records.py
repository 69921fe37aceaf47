"""``__transaction_state`` record formats, the partition function and the state table."""

from __future__ import annotations

import struct

import pytest
from kbroker.coordinator.txn_records import (
    TxnRecordFormatError,
    decode_txn_record,
    java_string_hashcode,
    txn_partition_for,
    txn_record,
    txn_tombstone,
)
from kbroker.coordinator.txn_result import TxnMarker, TxnResult, apply_txn_result
from kbroker.coordinator.txn_state import (
    ALLOWED_PREVIOUS,
    IllegalTransition,
    TopicPartition,
    TransactionMetadata,
    assert_valid_transition,
)
from kbroker.coordinator.txn_state import TransactionState as S
from kbroker.wire.codec import decode, encode
from kbroker.wire.messages.internal.transaction_log_value import (
    PartitionsSchema,
    TransactionLogValue,
)


def test_java_hashcode_and_kafka_partition() -> None:
    assert java_string_hashcode("") == 0
    assert java_string_hashcode("hello") == 99162322
    assert java_string_hashcode("polygenelubricants") == -(2**31)
    assert java_string_hashcode("my-group") == -1906497762
    assert java_string_hashcode("\u00e9t\u00e9") == (233 * 31 + 116) * 31 + 233
    assert txn_partition_for("polygenelubricants", 50) == 0  # Utils.abs(MIN_VALUE) == 0
    assert txn_partition_for("my-group", 50) == 1906497762 % 50  # abs, not & 0x7fffffff
    assert txn_partition_for("hello", 50) == 99162322 % 50


def test_key_is_version_zero_then_the_id() -> None:
    record = txn_tombstone("tx")
    assert record.key == struct.pack(">hh", 0, 2) + b"tx"
    assert record.value is None
    assert decode_txn_record(record.key, None) == ("tx", None)


def test_value_round_trip_and_layout() -> None:
    meta = TransactionMetadata(
        "tx",
        producer_id=5,
        producer_epoch=3,
        txn_timeout_ms=60_000,
        state=S.ONGOING,
        partitions=frozenset(
            {TopicPartition("b", 1), TopicPartition("a", 2), TopicPartition("b", 0)}
        ),
        txn_start_timestamp_ms=100,
        txn_last_update_timestamp_ms=200,
        prev_producer_id=5,
    )
    record = txn_record(meta)
    assert record.value is not None and record.value[:2] == b"\x00\x01"  # value v1
    expected_body = encode(
        TransactionLogValue(
            producer_id=5,
            producer_epoch=3,
            transaction_timeout_ms=60_000,
            transaction_status=1,
            transaction_partitions=[
                PartitionsSchema(topic="a", partition_ids=[2]),
                PartitionsSchema(topic="b", partition_ids=[0, 1]),
            ],
            transaction_last_update_timestamp_ms=200,
            transaction_start_timestamp_ms=100,
        ),
        1,
    )
    assert record.value[2:] == expected_body
    assert decode_txn_record(record.key, record.value) == ("tx", meta)


def test_empty_has_null_partitions_and_rotation_keeps_the_previous_id() -> None:
    meta = TransactionMetadata(
        "tx", producer_id=9, producer_epoch=0, txn_timeout_ms=1, state=S.EMPTY, prev_producer_id=4
    )
    record = txn_record(meta)
    assert record.value is not None
    _, decoded = decode_txn_record(record.key, record.value)
    assert decoded == meta
    value = decode(TransactionLogValue, 1, record.value[2:])
    assert value.transaction_partitions is None and value.previous_producer_id == 4


def test_value_v0_written_by_older_kafka_is_read() -> None:
    body = encode(
        TransactionLogValue(
            producer_id=77,
            producer_epoch=2,
            transaction_timeout_ms=10,
            transaction_status=2,
            transaction_partitions=[PartitionsSchema(topic="t", partition_ids=[4])],
            transaction_last_update_timestamp_ms=5,
            transaction_start_timestamp_ms=4,
        ),
        0,
    )
    key = txn_tombstone("old").key
    _, meta = decode_txn_record(key, b"\x00\x00" + body)
    assert meta is not None
    assert (meta.state, meta.producer_id, meta.prev_producer_id, meta.partitions) == (
        S.PREPARE_COMMIT,
        77,
        77,
        frozenset({TopicPartition("t", 4)}),
    )


def test_bad_records_are_refused() -> None:
    key = txn_tombstone("x").key
    with pytest.raises(TxnRecordFormatError):
        decode_txn_record(b"\x00", None)
    with pytest.raises(TxnRecordFormatError):
        decode_txn_record(b"\x00\x01" + key[2:], None)
    with pytest.raises(TxnRecordFormatError):
        decode_txn_record(key, b"\x00\x07")
    bad_status = encode(TransactionLogValue(transaction_status=42), 1)
    with pytest.raises(TxnRecordFormatError):
        decode_txn_record(key, b"\x00\x01" + bad_status)
    for state in (S.DEAD, S.PREPARE_EPOCH_FENCE):
        with pytest.raises(ValueError):
            txn_record(TransactionMetadata("x", 1, 0, 1, state))


def test_state_names_ids_and_docs() -> None:
    assert [str(s) for s in S] == [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ]
    assert [s.value for s in S] == list(range(8))
    for s in S:
        assert S.from_name(str(s)) is s
        assert "action:" in (s.__doc__ or "") and "transition:" in (s.__doc__ or "")
    assert S.from_name("ongoing") is None


def test_transition_table() -> None:
    assert set(ALLOWED_PREVIOUS) == set(S)
    assert ALLOWED_PREVIOUS[S.DEAD] == {S.EMPTY, S.COMPLETE_COMMIT, S.COMPLETE_ABORT}
    assert not any(S.DEAD in prev for prev in ALLOWED_PREVIOUS.values())  # final
    assert_valid_transition(S.ONGOING, S.PREPARE_COMMIT)
    with pytest.raises(IllegalTransition):
        assert_valid_transition(S.EMPTY, S.PREPARE_COMMIT)
    meta = TransactionMetadata("x", 1, 0, 1, S.PREPARE_COMMIT)
    with pytest.raises(IllegalTransition):
        meta.transit(S.ONGOING)


def test_apply_txn_result_runs_the_contract_in_order() -> None:
    calls: list[object] = []
    marker = TxnMarker("t", "topic", 0, 5, 1, True, 0)
    completion_record = txn_tombstone("after")
    follow_up: TxnResult[None] = TxnResult(txn_records=[completion_record])
    result: TxnResult[str] = TxnResult(
        response="answer", txn_records=[txn_tombstone("t")], markers=[marker, marker]
    )

    def markers_written(txn_id: str, pid: int, epoch: int) -> TxnResult[None]:
        calls.append(("done", txn_id, pid, epoch))
        return follow_up

    response = apply_txn_result(
        result,
        append=lambda records: calls.append(("append", [r.transactional_id for r in records])),
        write_marker=lambda m: calls.append(("marker", m.partition)),
        markers_written=markers_written,
    )
    assert response == "answer"
    assert calls == [
        ("append", ["t"]),
        ("marker", 0),
        ("marker", 0),
        ("done", "t", 5, 1),
        ("append", ["after"]),
    ]
