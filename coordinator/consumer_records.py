"""KIP-848 consumer-group records in ``__consumer_offsets``, in Kafka's own formats.

Key   = int16 record type (the spec's apiKey) + the key struct at version 0.
Value = int16 value version (0) + the flexible value struct; a tombstone has a null value.

=====  ===========================================  ======================================
type   key                                          value
=====  ===========================================  ======================================
3      ConsumerGroupMetadataKey(group)              group epoch
4      ConsumerGroupPartitionMetadataKey(group)     subscribed topics: id, name, partitions
5      ConsumerGroupMemberMetadataKey(group, mem)   the member's subscription and client
6      ConsumerGroupTargetAssignmentMetadataKey     assignment epoch
7      ConsumerGroupTargetAssignmentMemberKey       the member's target partitions
8      ConsumerGroupCurrentMemberAssignmentKey      epoch, state, owned, pending revocation
16     ConsumerGroupRegularExpressionKey            (read and ignored: regexes are
                                                    re-evaluated against live metadata)
=====  ===========================================  ======================================

Partition sets travel as ``{topic_id: frozenset(partitions)}`` (``Assignment``).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kbroker.coordinator.consumer_group import MemberState
from kbroker.coordinator.records import RecordFormatError
from kbroker.wire.codec import decode_from, encode
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_key import (
    ConsumerGroupCurrentMemberAssignmentKey,
)
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_value import (
    ConsumerGroupCurrentMemberAssignmentValue,
)
from kbroker.wire.messages.internal.consumer_group_current_member_assignment_value import (
    TopicPartitions as CurrentTopicPartitions,
)
from kbroker.wire.messages.internal.consumer_group_member_metadata_key import (
    ConsumerGroupMemberMetadataKey,
)
from kbroker.wire.messages.internal.consumer_group_member_metadata_value import (
    ClassicMemberMetadata,
    ClassicProtocol,
    ConsumerGroupMemberMetadataValue,
)
from kbroker.wire.messages.internal.consumer_group_metadata_key import ConsumerGroupMetadataKey
from kbroker.wire.messages.internal.consumer_group_metadata_value import (
    ConsumerGroupMetadataValue,
)
from kbroker.wire.messages.internal.consumer_group_partition_metadata_key import (
    ConsumerGroupPartitionMetadataKey,
)
from kbroker.wire.messages.internal.consumer_group_partition_metadata_value import (
    ConsumerGroupPartitionMetadataValue,
    TopicMetadata,
)
from kbroker.wire.messages.internal.consumer_group_target_assignment_member_key import (
    ConsumerGroupTargetAssignmentMemberKey,
)
from kbroker.wire.messages.internal.consumer_group_target_assignment_member_value import (
    ConsumerGroupTargetAssignmentMemberValue,
    TopicPartition,
)
from kbroker.wire.messages.internal.consumer_group_target_assignment_metadata_key import (
    ConsumerGroupTargetAssignmentMetadataKey,
)
from kbroker.wire.messages.internal.consumer_group_target_assignment_metadata_value import (
    ConsumerGroupTargetAssignmentMetadataValue,
)

__all__ = [
    "CONSUMER_RECORD_TYPES",
    "Assignment",
    "ConsumerRecord",
    "decode_consumer_record",
    "encode_record",
    "from_topic_partitions",
    "group_id_of",
]

Assignment = Mapping[UUID, frozenset[int]]

GROUP_METADATA = 3
PARTITION_METADATA = 4
MEMBER_METADATA = 5
TARGET_ASSIGNMENT_METADATA = 6
TARGET_ASSIGNMENT_MEMBER = 7
CURRENT_MEMBER_ASSIGNMENT = 8
REGULAR_EXPRESSION = 16
_VALUE_VERSION = 0
_KEY_VERSION = 0
_INT16 = struct.Struct(">h")

_TYPES: dict[int, tuple[type[Any], type[Any] | None]] = {
    GROUP_METADATA: (ConsumerGroupMetadataKey, ConsumerGroupMetadataValue),
    PARTITION_METADATA: (ConsumerGroupPartitionMetadataKey, ConsumerGroupPartitionMetadataValue),
    MEMBER_METADATA: (ConsumerGroupMemberMetadataKey, ConsumerGroupMemberMetadataValue),
    TARGET_ASSIGNMENT_METADATA: (
        ConsumerGroupTargetAssignmentMetadataKey,
        ConsumerGroupTargetAssignmentMetadataValue,
    ),
    TARGET_ASSIGNMENT_MEMBER: (
        ConsumerGroupTargetAssignmentMemberKey,
        ConsumerGroupTargetAssignmentMemberValue,
    ),
    CURRENT_MEMBER_ASSIGNMENT: (
        ConsumerGroupCurrentMemberAssignmentKey,
        ConsumerGroupCurrentMemberAssignmentValue,
    ),
    REGULAR_EXPRESSION: (object, None),  # recognised, not decoded
}
CONSUMER_RECORD_TYPES = frozenset(_TYPES)
_MEMBER_STATES = frozenset(MemberState)
_TYPE_OF_KEY: dict[type[Any], int] = {k: t for t, (k, _v) in _TYPES.items() if k is not object}


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    """A decoded consumer-group record: ``key`` one of the key structs above, ``value``
    its value struct or None (tombstone)."""

    record_type: int
    key: Any
    value: Any | None


def encode_record(key: Any, value: Any | None) -> tuple[bytes, bytes | None]:
    record_type = _TYPE_OF_KEY[type(key)]
    key_bytes = _INT16.pack(record_type) + encode(key, _KEY_VERSION)
    if value is None:
        return key_bytes, None
    return key_bytes, _INT16.pack(_VALUE_VERSION) + encode(value, _VALUE_VERSION)


def decode_consumer_record(key: bytes, value: bytes | None) -> ConsumerRecord | None:
    """Decode a consumer-group record; None for other record types and for regex records."""
    if len(key) < 2:
        raise RecordFormatError("record shorter than its type prefix")
    (record_type,) = _INT16.unpack_from(key)
    entry = _TYPES.get(record_type)
    if entry is None or entry[1] is None:
        return None
    key_type, value_type = entry
    assert value_type is not None
    decoded_key, _ = decode_from(key_type, _KEY_VERSION, memoryview(key)[2:])
    if value is None:
        return ConsumerRecord(record_type, decoded_key, None)
    if len(value) < 2:
        raise RecordFormatError(f"consumer-group record {record_type}: value too short")
    (version,) = _INT16.unpack_from(value)
    if version != _VALUE_VERSION:
        raise RecordFormatError(
            f"unknown value version {version} of consumer-group record {record_type}"
        )
    decoded_value, _ = decode_from(value_type, _VALUE_VERSION, memoryview(value)[2:])
    if record_type == CURRENT_MEMBER_ASSIGNMENT and decoded_value.state not in _MEMBER_STATES:
        raise RecordFormatError(f"unknown member state {decoded_value.state}")
    return ConsumerRecord(record_type, decoded_key, decoded_value)


def group_id_of(record: ConsumerRecord) -> str:
    group_id: str = record.key.group_id
    return group_id


def from_topic_partitions(items: list[Any]) -> dict[UUID, frozenset[int]]:
    """``[TopicPartitions(topic_id, partitions)]`` (any of the generated twins) -> mapping."""
    out: dict[UUID, frozenset[int]] = {}
    for item in items:
        parts = out.get(item.topic_id, frozenset()) | frozenset(item.partitions)
        if parts:
            out[item.topic_id] = parts
    return out


def _sorted_items(assignment: Assignment) -> list[tuple[UUID, list[int]]]:
    return [(t, sorted(p)) for t, p in sorted(assignment.items()) if p]


# -- builders (one per record) ------------------------------------------------------------
def group_epoch_record(group_id: str, epoch: int) -> tuple[Any, Any]:
    return ConsumerGroupMetadataKey(group_id=group_id), ConsumerGroupMetadataValue(epoch=epoch)


def partition_metadata_record(
    group_id: str, topics: Mapping[str, tuple[UUID, int]]
) -> tuple[Any, Any]:
    value = ConsumerGroupPartitionMetadataValue(
        topics=[
            TopicMetadata(topic_id=tid, topic_name=name, num_partitions=n)
            for name, (tid, n) in sorted(topics.items())
        ]
    )
    return ConsumerGroupPartitionMetadataKey(group_id=group_id), value


def target_metadata_record(group_id: str, assignment_epoch: int) -> tuple[Any, Any]:
    return (
        ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id),
        ConsumerGroupTargetAssignmentMetadataValue(assignment_epoch=assignment_epoch),
    )


def target_member_record(
    group_id: str, member_id: str, assignment: Assignment | None
) -> tuple[Any, Any]:
    key = ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id)
    if assignment is None:
        return key, None
    value = ConsumerGroupTargetAssignmentMemberValue(
        topic_partitions=[
            TopicPartition(topic_id=t, partitions=p) for t, p in _sorted_items(assignment)
        ]
    )
    return key, value


def current_assignment_record(
    group_id: str,
    member_id: str,
    *,
    member_epoch: int,
    previous_member_epoch: int,
    state: int,
    assigned: Assignment,
    pending_revocation: Assignment,
) -> tuple[Any, Any]:
    key = ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member_id)
    value = ConsumerGroupCurrentMemberAssignmentValue(
        member_epoch=member_epoch,
        previous_member_epoch=previous_member_epoch,
        state=state,
        assigned_partitions=[
            CurrentTopicPartitions(topic_id=t, partitions=p) for t, p in _sorted_items(assigned)
        ],
        partitions_pending_revocation=[
            CurrentTopicPartitions(topic_id=t, partitions=p)
            for t, p in _sorted_items(pending_revocation)
        ],
    )
    return key, value


def member_tombstones(group_id: str, member_id: str) -> list[tuple[Any, Any]]:
    """Kafka's order: current assignment, target assignment, then the member itself."""
    return [
        (ConsumerGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member_id), None),
        (ConsumerGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id), None),
        (ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member_id), None),
    ]


def group_tombstones(group_id: str) -> list[tuple[Any, Any]]:
    return [
        (ConsumerGroupTargetAssignmentMetadataKey(group_id=group_id), None),
        (ConsumerGroupPartitionMetadataKey(group_id=group_id), None),
        (ConsumerGroupMetadataKey(group_id=group_id), None),
    ]


def member_metadata_record(
    group_id: str,
    member_id: str,
    *,
    instance_id: str | None,
    rack_id: str | None,
    client_id: str,
    client_host: str,
    subscribed_topic_names: list[str],
    subscribed_topic_regex: str | None,
    rebalance_timeout_ms: int,
    server_assignor: str | None,
    classic_protocols: list[tuple[str, bytes]] | None = None,
    classic_session_timeout_ms: int = -1,
) -> tuple[Any, Any]:
    """``classic_protocols`` (a classic member of a consumer group, online migration) is
    stored as Kafka's ClassicMemberMetadata (tagged field 0)."""
    key = ConsumerGroupMemberMetadataKey(group_id=group_id, member_id=member_id)
    classic = (
        None
        if classic_protocols is None
        else ClassicMemberMetadata(
            session_timeout_ms=classic_session_timeout_ms,
            supported_protocols=[
                ClassicProtocol(name=name, metadata=metadata) for name, metadata in classic_protocols
            ],
        )
    )
    value = ConsumerGroupMemberMetadataValue(
        instance_id=instance_id,
        rack_id=rack_id,
        client_id=client_id,
        client_host=client_host,
        subscribed_topic_names=list(subscribed_topic_names),
        subscribed_topic_regex=subscribed_topic_regex,
        rebalance_timeout_ms=rebalance_timeout_ms,
        server_assignor=server_assignor,
        classic_member_metadata=classic,
    )
    return key, value
