"""KIP-932 records in Kafka's formats: share-group records in ``__consumer_offsets`` and
share-partition state in ``__share_group_state``.

Key   = int16 record type (the spec's apiKey) + the key struct at version 0.
Value = int16 value version (0) + the flexible value struct; a tombstone has a null value.

``__consumer_offsets`` (the group coordinator's):

=====  ======================================  ===========================================
type   key                                     value
=====  ======================================  ===========================================
10     ShareGroupMemberMetadataKey             the member's client and subscribed topics
11     ShareGroupMetadataKey                   group epoch
12     ShareGroupTargetAssignmentMetadataKey   (read and ignored: the simple assignment
13     ShareGroupTargetAssignmentMemberKey      is recomputed from the members)
14     ShareGroupCurrentMemberAssignmentKey    member epoch and assigned partitions
15     ShareGroupStatePartitionMetadataKey     topics whose share-partitions are initialized
=====  ======================================  ===========================================

``__share_group_state`` (the share coordinator's), keyed by group, topic id, partition:

=====  ======================================  ===========================================
0      ShareSnapshotKey                        start offset and the in-flight state batches
1      ShareUpdateKey                          (read: applied over the snapshot)
=====  ======================================  ===========================================
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from kbroker.coordinator.records import RecordFormatError
from kbroker.coordinator.share_partition import StateBatch
from kbroker.wire.codec import decode_from, encode
from kbroker.wire.messages.internal.share_group_current_member_assignment_key import (
    ShareGroupCurrentMemberAssignmentKey,
)
from kbroker.wire.messages.internal.share_group_current_member_assignment_value import (
    ShareGroupCurrentMemberAssignmentValue,
    TopicPartitions,
)
from kbroker.wire.messages.internal.share_group_member_metadata_key import (
    ShareGroupMemberMetadataKey,
)
from kbroker.wire.messages.internal.share_group_member_metadata_value import (
    ShareGroupMemberMetadataValue,
)
from kbroker.wire.messages.internal.share_group_metadata_key import ShareGroupMetadataKey
from kbroker.wire.messages.internal.share_group_metadata_value import ShareGroupMetadataValue
from kbroker.wire.messages.internal.share_group_state_partition_metadata_key import (
    ShareGroupStatePartitionMetadataKey,
)
from kbroker.wire.messages.internal.share_group_state_partition_metadata_value import (
    ShareGroupStatePartitionMetadataValue,
    TopicPartitionsInfo,
)
from kbroker.wire.messages.internal.share_group_target_assignment_member_key import (
    ShareGroupTargetAssignmentMemberKey,
)
from kbroker.wire.messages.internal.share_group_target_assignment_metadata_key import (
    ShareGroupTargetAssignmentMetadataKey,
)
from kbroker.wire.messages.internal.share_snapshot_key import ShareSnapshotKey
from kbroker.wire.messages.internal.share_snapshot_value import ShareSnapshotValue
from kbroker.wire.messages.internal.share_snapshot_value import StateBatch as WireStateBatch
from kbroker.wire.messages.internal.share_update_key import ShareUpdateKey
from kbroker.wire.messages.internal.share_update_value import ShareUpdateValue

__all__ = [
    "SHARE_GROUP_RECORD_TYPES",
    "ShareGroupRecord",
    "ShareStateRecord",
    "decode_share_group_record",
    "decode_share_state_record",
    "encode_record",
    "share_state_key",
]

SHARE_MEMBER_METADATA = 10
SHARE_GROUP_METADATA = 11
SHARE_TARGET_METADATA = 12
SHARE_TARGET_MEMBER = 13
SHARE_CURRENT_ASSIGNMENT = 14
SHARE_STATE_PARTITION_METADATA = 15
SHARE_SNAPSHOT = 0
SHARE_UPDATE = 1
_VERSION = 0
_INT16 = struct.Struct(">h")

_GROUP_TYPES: dict[int, tuple[type[Any], type[Any] | None]] = {
    SHARE_MEMBER_METADATA: (ShareGroupMemberMetadataKey, ShareGroupMemberMetadataValue),
    SHARE_GROUP_METADATA: (ShareGroupMetadataKey, ShareGroupMetadataValue),
    SHARE_TARGET_METADATA: (ShareGroupTargetAssignmentMetadataKey, None),
    SHARE_TARGET_MEMBER: (ShareGroupTargetAssignmentMemberKey, None),
    SHARE_CURRENT_ASSIGNMENT: (
        ShareGroupCurrentMemberAssignmentKey,
        ShareGroupCurrentMemberAssignmentValue,
    ),
    SHARE_STATE_PARTITION_METADATA: (
        ShareGroupStatePartitionMetadataKey,
        ShareGroupStatePartitionMetadataValue,
    ),
}
SHARE_GROUP_RECORD_TYPES = frozenset(_GROUP_TYPES)
_STATE_TYPES: dict[int, tuple[type[Any], type[Any]]] = {
    SHARE_SNAPSHOT: (ShareSnapshotKey, ShareSnapshotValue),
    SHARE_UPDATE: (ShareUpdateKey, ShareUpdateValue),
}
_TYPE_OF_KEY: dict[type[Any], int] = {k: t for t, (k, _v) in _GROUP_TYPES.items()}
_TYPE_OF_KEY.update({k: t for t, (k, _v) in _STATE_TYPES.items()})


@dataclass(frozen=True, slots=True)
class ShareGroupRecord:
    record_type: int
    key: Any
    value: Any | None


@dataclass(frozen=True, slots=True)
class ShareStateRecord:
    record_type: int
    group_id: str
    topic_id: UUID
    partition: int
    value: Any | None


def encode_record(key: Any, value: Any | None) -> tuple[bytes, bytes | None]:
    key_bytes = _INT16.pack(_TYPE_OF_KEY[type(key)]) + encode(key, _VERSION)
    if value is None:
        return key_bytes, None
    return key_bytes, _INT16.pack(_VERSION) + encode(value, _VERSION)


def _decode(
    table: Mapping[int, tuple[type[Any], type[Any] | None]], key: bytes, value: bytes | None
) -> tuple[int, Any, Any] | None:
    if len(key) < _INT16.size:
        raise RecordFormatError(f"share record key of {len(key)} bytes")
    (record_type,) = _INT16.unpack_from(key)
    entry = table.get(record_type)
    if entry is None:
        return None
    key_type, value_type = entry
    decoded_key, _ = decode_from(key_type, _VERSION, memoryview(key)[2:])
    if value is None or value_type is None:
        return record_type, decoded_key, None
    if len(value) < _INT16.size:
        raise RecordFormatError(f"share record value of {len(value)} bytes")
    (version,) = _INT16.unpack_from(value)
    if version != _VERSION:
        raise RecordFormatError(f"unknown value version {version} of share record type {record_type}")
    decoded_value, _ = decode_from(value_type, _VERSION, memoryview(value)[2:])
    return record_type, decoded_key, decoded_value


def decode_share_group_record(key: bytes, value: bytes | None) -> ShareGroupRecord | None:
    """A share-group record of ``__consumer_offsets``; None for other types."""
    decoded = _decode(_GROUP_TYPES, key, value)
    if decoded is None:
        return None
    record_type, k, v = decoded
    if record_type in (SHARE_TARGET_METADATA, SHARE_TARGET_MEMBER):
        v = None  # recognised, not used
    return ShareGroupRecord(record_type, k, v)


def decode_share_state_record(key: bytes, value: bytes | None) -> ShareStateRecord | None:
    decoded = _decode(_STATE_TYPES, key, value)
    if decoded is None:
        return None
    record_type, k, v = decoded
    return ShareStateRecord(record_type, k.group_id, k.topic_id, k.partition, v)


def share_state_key(group_id: str, topic_id: UUID, partition: int) -> str:
    """The string Kafka hashes to pick the ``__share_group_state`` partition."""
    return f"{group_id}:{topic_id}:{partition}"


# -- builders ------------------------------------------------------------------------------
def group_epoch_record(group_id: str, epoch: int) -> tuple[Any, Any]:
    return ShareGroupMetadataKey(group_id=group_id), ShareGroupMetadataValue(
        epoch=epoch, metadata_hash=0
    )


def member_record(
    group_id: str,
    member_id: str,
    *,
    rack_id: str | None,
    client_id: str,
    client_host: str,
    topics: list[str],
) -> tuple[Any, Any]:
    return ShareGroupMemberMetadataKey(
        group_id=group_id, member_id=member_id
    ), ShareGroupMemberMetadataValue(
        rack_id=rack_id,
        client_id=client_id,
        client_host=client_host,
        subscribed_topic_names=list(topics),
    )


def current_assignment_record(
    group_id: str,
    member_id: str,
    *,
    member_epoch: int,
    previous_member_epoch: int,
    assigned: Mapping[UUID, frozenset[int]],
) -> tuple[Any, Any]:
    return ShareGroupCurrentMemberAssignmentKey(
        group_id=group_id, member_id=member_id
    ), ShareGroupCurrentMemberAssignmentValue(
        member_epoch=member_epoch,
        previous_member_epoch=previous_member_epoch,
        state=0,
        assigned_partitions=[
            TopicPartitions(topic_id=t, partitions=sorted(p))
            for t, p in sorted(assigned.items())
            if p
        ],
    )


def state_partition_metadata_record(
    group_id: str, initialized: Mapping[UUID, tuple[str, frozenset[int]]]
) -> tuple[Any, Any]:
    return ShareGroupStatePartitionMetadataKey(
        group_id=group_id
    ), ShareGroupStatePartitionMetadataValue(
        initialized_topics=[
            TopicPartitionsInfo(topic_id=t, topic_name=name, partitions=sorted(parts))
            for t, (name, parts) in sorted(initialized.items())
        ]
    )


def member_tombstones(group_id: str, member_id: str) -> list[tuple[Any, Any]]:
    return [
        (ShareGroupCurrentMemberAssignmentKey(group_id=group_id, member_id=member_id), None),
        (ShareGroupTargetAssignmentMemberKey(group_id=group_id, member_id=member_id), None),
        (ShareGroupMemberMetadataKey(group_id=group_id, member_id=member_id), None),
    ]


def group_tombstones(group_id: str) -> list[tuple[Any, Any]]:
    return [
        (ShareGroupStatePartitionMetadataKey(group_id=group_id), None),
        (ShareGroupTargetAssignmentMetadataKey(group_id=group_id), None),
        (ShareGroupMetadataKey(group_id=group_id), None),
    ]


def snapshot_record(
    group_id: str,
    topic_id: UUID,
    partition: int,
    *,
    snapshot_epoch: int,
    state_epoch: int,
    start_offset: int,
    batches: list[StateBatch],
    now_ms: int,
) -> tuple[Any, Any]:
    key = ShareSnapshotKey(group_id=group_id, topic_id=topic_id, partition=partition)
    value = ShareSnapshotValue(
        snapshot_epoch=snapshot_epoch,
        state_epoch=state_epoch,
        leader_epoch=0,
        start_offset=start_offset,
        delivery_complete_count=-1,
        create_timestamp=now_ms,
        write_timestamp=now_ms,
        state_batches=[
            WireStateBatch(
                first_offset=b.first_offset,
                last_offset=b.last_offset,
                delivery_state=b.delivery_state,
                delivery_count=b.delivery_count,
            )
            for b in batches
        ],
    )
    return key, value


def snapshot_tombstone(group_id: str, topic_id: UUID, partition: int) -> tuple[Any, Any]:
    return ShareSnapshotKey(group_id=group_id, topic_id=topic_id, partition=partition), None


def state_batches_of(value: Any) -> list[StateBatch]:
    return [
        StateBatch(b.first_offset, b.last_offset, b.delivery_state, b.delivery_count)
        for b in value.state_batches
    ]
