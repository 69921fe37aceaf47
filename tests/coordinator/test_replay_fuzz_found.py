"""Records the groups and transactions fuzz targets (``fuzz/targets/``) found, minimised.

Replaying a record the coordinator cannot read must raise its documented record-format
error (``RecordFormatError`` / ``TxnRecordFormatError``) and leave the state untouched --
never another exception, and never a record that breaks a later request.
"""

from __future__ import annotations

import pytest
from kbroker.coordinator.consumer_records import encode_record
from kbroker.coordinator.rebalance import join_key
from kbroker.coordinator.records import RecordFormatError, group_metadata_key, group_metadata_value
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.testing import CoordinatorTestContext
from kbroker.coordinator.txn_records import TxnRecordFormatError
from kbroker.coordinator.txn_testing import TxnTestContext
from kbroker.wire import codec
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
)
from kbroker.wire.messages.internal.consumer_group_member_metadata_key import (
    ConsumerGroupMemberMetadataKey,
)
from kbroker.wire.messages.internal.consumer_group_member_metadata_value import (
    ConsumerGroupMemberMetadataValue,
)
from kbroker.wire.messages.internal.consumer_group_metadata_key import ConsumerGroupMetadataKey
from kbroker.wire.messages.internal.consumer_group_metadata_value import ConsumerGroupMetadataValue
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue, MemberMetadata
from kbroker.wire.messages.internal.transaction_log_key import TransactionLogKey
from kbroker.wire.messages.internal.transaction_log_value import TransactionLogValue
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity

ASSIGNMENT_KEY = ConsumerGroupCurrentMemberAssignmentKey(group_id="g", member_id="m")
G = "group"


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


def test_a_join_phase_nobody_rejoined_is_not_rechecked_in_a_zero_delay_loop() -> None:
    # fuzz (groups target, a timeout): with only static members left and none of them
    # rejoined, complete_join postpones itself by the group's rebalance timeout; with 0
    # (or a negative one replayed from the log) that is a 0 ms timer that fires again at
    # once, forever -- FakeTimer.advance never returned, and a real event loop would spin
    # until the members' sessions expire.  Here: a loaded group whose static member has
    # rebalance timeout 0, and a dynamic member that joins and leaves again.
    ctx = CoordinatorTestContext(group_initial_rebalance_delay_ms=0)
    member = MemberMetadata(
        member_id="static-1",
        group_instance_id="static",
        session_timeout=10_000,
        rebalance_timeout=0,
        subscription=b"",
        assignment=b"",
    )
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=1,
        protocol="range",
        leader="static-1",
        members=[member],
    )
    ctx.coord.replay(group_metadata_key(G), group_metadata_value(value))
    ctx.finish(ctx.coord.on_loaded())
    dynamic_id, _parked = ctx.join_new_dynamic_member(G, rebalance_timeout_ms=0)
    left = ctx.finish(
        ctx.coord.leave_group(
            LeaveGroupRequest(group_id=G, members=[MemberIdentity(member_id=dynamic_id)]),
            api_version=5,
        )
    )
    assert left is not None and left.error_code == 0
    assert ctx.state(G) is GroupState.PREPARING_REBALANCE
    # what the join timer does when it fires: nobody rejoined, so it postpones itself
    ctx.finish(ctx.coord.groups.complete_join_on_timeout(G))
    deadline = ctx.timer.deadline_of(join_key(G))
    assert deadline is not None and deadline > ctx.clock.ms
    ctx.sleep(60_000)  # returns: the static member's session (10 s) expires
    assert ctx.state(G) is GroupState.EMPTY


def test_a_consumer_group_tombstone_while_the_group_has_members_is_rejected() -> None:
    # fuzz: the tombstone of a ConsumerGroupMetadata record replayed while the group still
    # had a member raised IllegalTransition (Stable -> Dead)
    ctx = CoordinatorTestContext()
    group_key = ConsumerGroupMetadataKey(group_id="cg")
    for key, value in (
        (group_key, ConsumerGroupMetadataValue(epoch=1)),
        (
            ConsumerGroupMemberMetadataKey(group_id="cg", member_id="m"),
            ConsumerGroupMemberMetadataValue(subscribed_topic_names=["t"]),
        ),
    ):
        ctx.coord.replay(*encode_record(key, value))
    tombstone, _ = encode_record(group_key, None)
    with pytest.raises(RecordFormatError, match="tombstone"):
        ctx.coord.replay(tombstone, None)
    group = ctx.coord.consumer_groups.get("cg")
    assert group is not None and list(group.members) == ["m"]


def test_member_metadata_with_a_regex_re2_refuses_is_rejected_before_any_change() -> None:
    # fuzz: a ConsumerGroupMemberMetadata record whose subscribed regex RE2 cannot parse was
    # replayed; DescribeGroups of that group then raised HeartbeatError out of the coordinator
    ctx = CoordinatorTestContext()
    key = ConsumerGroupMemberMetadataKey(group_id="cg", member_id="m")
    value = ConsumerGroupMemberMetadataValue(subscribed_topic_regex="member-1 (")
    with pytest.raises(RecordFormatError, match="member metadata of group cg"):
        ctx.coord.replay(*encode_record(key, value))
    assert ctx.coord.consumer_groups.get("cg") is None
    described = ctx.coord.describe_groups(DescribeGroupsRequest(groups=["cg"]), api_version=5).response
    assert described is not None and [g.group_id for g in described.groups] == ["cg"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        # the groups target's find: a ShareGroupMemberMetadata (type 11) value of version 3
        (b"\x00\x0b\x00\x02ab\x00\x02cd", b"\x00\x03\x00\x00"),
        # a value too short to hold its version
        (b"\x00\x0b\x00\x02ab\x00\x02cd", b"\x00"),
    ],
)
def test_share_group_record_with_an_unreadable_value_raises_record_format_error(
    key: bytes, value: bytes
) -> None:
    ctx = CoordinatorTestContext()
    with pytest.raises(RecordFormatError):
        ctx.coord.replay(key, value)


def test_share_state_record_with_a_short_key_raises_record_format_error() -> None:
    from kbroker.coordinator.share_records import decode_share_state_record

    with pytest.raises(RecordFormatError):
        decode_share_state_record(b"\x00", None)
