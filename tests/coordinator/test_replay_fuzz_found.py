"""Records the groups and transactions fuzz targets (``fuzz/targets/``) found, minimised.

Replaying a record the coordinator cannot read must raise its documented record-format
error (``RecordFormatError`` / ``TxnRecordFormatError``) and leave the state untouched --
never another exception, and never a record that breaks a later request.
"""

from __future__ import annotations

import pytest
from kbroker.coordinator.consumer_records import encode_record
from kbroker.coordinator.records import RecordFormatError, group_metadata_key, group_metadata_value
from kbroker.coordinator.testing import CoordinatorTestContext
from kbroker.coordinator.txn_records import TxnRecordFormatError
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.wire import codec
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
)
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue, MemberMetadata
from kbroker.wire.messages.internal.transaction_log_key import TransactionLogKey
from kbroker.wire.messages.internal.transaction_log_value import TransactionLogValue

ASSIGNMENT_KEY = ConsumerGroupCurrentMemberAssignmentKey(group_id="g", member_id="m")


def _assignment_key_bytes() -> bytes:
    key, _ = encode_record(ASSIGNMENT_KEY, None)
    return key


@pytest.mark.parametrize(
    "value",
    [
        b"\x02\x61",  # fuzz: value version 609 raised a bare ValueError
        b"\x00",  # fuzz: a value shorter than its version prefix raised struct.error
    ],
)
def test_consumer_record_with_an_unreadable_value_raises_record_format_error(value: bytes) -> None:
    ctx = CoordinatorTestContext()
    with pytest.raises(RecordFormatError):
        ctx.coord.replay(_assignment_key_bytes(), value)
    assert ctx.coord.consumer_groups.get("g") is None


def test_member_assignment_with_an_unknown_member_state_is_rejected_before_any_change() -> None:
    # fuzz: state -1 raised ValueError from MemberState() inside replay, after the group
    # and an empty member had already been created
    _, value = encode_record(ASSIGNMENT_KEY, ConsumerGroupCurrentMemberAssignmentValue(state=-1))
    ctx = CoordinatorTestContext()
    with pytest.raises(RecordFormatError, match="member state"):
        ctx.coord.replay(_assignment_key_bytes(), value)
    assert ctx.coord.consumer_groups.get("g") is None


@pytest.mark.parametrize("status", [6, 7])  # Dead, PrepareEpochFence
def test_transaction_record_in_a_state_never_written_is_rejected(status: int) -> None:
    # fuzz: a replayed Dead transaction made EndTxn fail its state assertion
    key = b"\x00\x00" + codec.encode(TransactionLogKey(transactional_id="t"), 0)
    value = b"\x00\x00" + codec.encode(
        TransactionLogValue(producer_id=1, producer_epoch=0, transaction_status=status), 0
    )
    ctx = TxnTestContext()
    with pytest.raises(TxnRecordFormatError, match="never written"):
        ctx.coord.replay(key, value)
    assert ctx.coord.get("t") is None


@pytest.mark.parametrize(
    ("member_ids", "instance_ids"),
    [
        (["a", "b"], ["", ""]),  # fuzz: AssertionError "static member  already present"
        (["a", "a"], [None, None]),
    ],
)
def test_group_metadata_listing_a_member_twice_is_rejected(
    member_ids: list[str], instance_ids: list[str | None]
) -> None:
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=1,
        protocol="range",
        leader=member_ids[0],
        members=[
            MemberMetadata(member_id=m, group_instance_id=i, session_timeout=10_000)
            for m, i in zip(member_ids, instance_ids, strict=True)
        ],
    )
    ctx = CoordinatorTestContext()
    with pytest.raises(RecordFormatError, match="twice"):
        ctx.coord.replay(group_metadata_key("g"), group_metadata_value(value))
    assert ctx.coord.groups.get("g") is None
