"""``__consumer_offsets`` records in Kafka's own formats, plus small protocol helpers.

Key   = int16 record type + the key struct (its only version, 0). Since Kafka 4.0 the specs call
        the prefix the record type (the spec's apiKey): 0 legacy and 1 current OffsetCommitKey
        (same layout), 2 GroupMetadataKey; 3+ are KIP-848/share-group records, which this
        coordinator skips on replay.
Value = int16 value version + the value struct; a tombstone has a null value.
We write OffsetCommitKey v1 + OffsetCommitValue v3 (v1 when the commit carries an
expire timestamp, as Kafka does) and GroupMetadataKey v2 + GroupMetadataValue v3; we
read every version (values 0-4), so logs written by Kafka itself replay.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kbroker.wire.codec import decode_from, encode
from kbroker.wire.messages.internal.group_metadata_key import GroupMetadataKey
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue
from kbroker.wire.messages.internal.offset_commit_key import OffsetCommitKey
from kbroker.wire.messages.internal.offset_commit_value import OffsetCommitValue

__all__ = [
    "GROUP_METADATA_VALUE_VERSION",
    "DecodedRecord",
    "GroupMetadataRecord",
    "OffsetCommitRecord",
    "decode_record",
    "group_metadata_key",
    "group_metadata_value",
    "offset_commit_key",
    "offset_commit_value",
    "partition_for",
    "subscribed_topics",
]

# record types (the int16 prefix of a key); every key struct is at version 0
OFFSET_COMMIT_KEY_TYPE = 1
GROUP_METADATA_KEY_TYPE = 2
_KEY_STRUCT_VERSION = 0
OFFSET_COMMIT_VALUE_VERSION = 3
OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY = 1
GROUP_METADATA_VALUE_VERSION = 3

_INT16 = struct.Struct(">h")


def _prefixed(version: int, body: bytes) -> bytes:
    return _INT16.pack(version) + body


def offset_commit_key(group: str, topic: str, partition: int) -> bytes:
    key = OffsetCommitKey(group=group, topic=topic, partition=partition)
    return _prefixed(OFFSET_COMMIT_KEY_TYPE, encode(key, _KEY_STRUCT_VERSION))


def offset_commit_value(value: OffsetCommitValue) -> bytes:
    version = (
        OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY
        if value.expire_timestamp != -1
        else OFFSET_COMMIT_VALUE_VERSION
    )
    return _prefixed(version, encode(value, version))


def group_metadata_key(group: str) -> bytes:
    key = GroupMetadataKey(group=group)
    return _prefixed(GROUP_METADATA_KEY_TYPE, encode(key, _KEY_STRUCT_VERSION))


def group_metadata_value(value: GroupMetadataValue) -> bytes:
    return _prefixed(GROUP_METADATA_VALUE_VERSION, encode(value, GROUP_METADATA_VALUE_VERSION))


@dataclass(frozen=True, slots=True)
class OffsetCommitRecord:
    key: OffsetCommitKey
    value: OffsetCommitValue | None


@dataclass(frozen=True, slots=True)
class GroupMetadataRecord:
    key: GroupMetadataKey
    value: GroupMetadataValue | None


DecodedRecord = OffsetCommitRecord | GroupMetadataRecord


class RecordFormatError(ValueError):
    """A ``__consumer_offsets`` record this coordinator cannot read."""


def _version_and_body(data: bytes) -> tuple[int, memoryview]:
    if len(data) < 2:
        raise RecordFormatError("record shorter than its version prefix")
    return _INT16.unpack_from(data)[0], memoryview(data)[2:]


def _check_members(value: GroupMetadataValue) -> None:
    """A group holds each member id and each static instance id once (what replay builds
    the group from; ``ClassicGroup.add`` asserts it)."""
    member_ids = [m.member_id for m in value.members]
    instance_ids = [m.group_instance_id for m in value.members if m.group_instance_id is not None]
    if len(set(member_ids)) != len(member_ids) or len(set(instance_ids)) != len(instance_ids):
        raise RecordFormatError("GroupMetadataValue lists a member or instance id twice")


def decode_record(key: bytes, value: bytes | None) -> DecodedRecord | None:
    """Decode a record; ``None`` for record types this coordinator does not own."""
    record_type, key_body = _version_and_body(key)
    if record_type in (0, OFFSET_COMMIT_KEY_TYPE):
        okey, _ = decode_from(OffsetCommitKey, _KEY_STRUCT_VERSION, key_body)
        if value is None:
            return OffsetCommitRecord(okey, None)
        value_version, value_body = _version_and_body(value)
        if not 0 <= value_version <= 4:
            raise RecordFormatError(f"unknown OffsetCommitValue version {value_version}")
        ovalue, _ = decode_from(OffsetCommitValue, value_version, value_body)
        return OffsetCommitRecord(okey, ovalue)
    if record_type == GROUP_METADATA_KEY_TYPE:
        gkey, _ = decode_from(GroupMetadataKey, _KEY_STRUCT_VERSION, key_body)
        if value is None:
            return GroupMetadataRecord(gkey, None)
        value_version, value_body = _version_and_body(value)
        if not 0 <= value_version <= 4:
            raise RecordFormatError(f"unknown GroupMetadataValue version {value_version}")
        gvalue, _ = decode_from(GroupMetadataValue, value_version, value_body)
        _check_members(gvalue)
        return GroupMetadataRecord(gkey, gvalue)
    return None


def java_string_hashcode(s: str) -> int:
    """Java's ``String.hashCode()`` (over UTF-16 code units), as a signed int32."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def kafka_partition_for(key: str, num_partitions: int) -> int:
    """``Utils.abs(key.hashCode()) % numPartitions``, Kafka's placement of a group or a
    transactional id in its internal topic; ``Utils.abs(Integer.MIN_VALUE)`` is 0 (this is
    not ``h & 0x7fffffff``, which differs for every negative hash code)."""
    h = java_string_hashcode(key)
    return (0 if h == -(1 << 31) else abs(h)) % num_partitions


def partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition of a group, as Kafka computes it."""
    return kafka_partition_for(group_id, num_partitions)


def subscribed_topics(metadata: bytes) -> set[str] | None:
    """Topics of a ConsumerProtocolSubscription (any version), or None if unparsable.

    Only the leading version and topic array are read; they are the same in v0-v3.
    """
    try:
        pos = 2
        (count,) = struct.unpack_from(">i", metadata, pos)
        pos += 4
        if count < 0 or count > len(metadata):
            return None
        topics: set[str] = set()
        for _ in range(count):
            (length,) = struct.unpack_from(">h", metadata, pos)
            pos += 2
            if length < 0 or pos + length > len(metadata):
                return None
            topics.add(metadata[pos : pos + length].decode("utf-8"))
            pos += length
        return topics
    except (struct.error, UnicodeDecodeError):
        return None
