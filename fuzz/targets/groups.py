"""``__consumer_offsets`` replay: classic groups, offsets and KIP-848 consumer groups.

Input: records and transaction markers (layout in ``_internal_records``).  Property:

* ``GroupCoordinator.replay`` of each record raises nothing but the documented
  bad-record errors (``RecordFormatError``, ``DecodeError``), never an IndexError or a
  broken invariant;
* whatever was replayed, the loaded coordinator then serves ListGroups,
  DescribeGroups, ConsumerGroupDescribe, OffsetFetch and heartbeats of every replayed
  member, expires sessions and offsets when time passes, and every response it gives
  encodes at its version (the broker writes them to clients).
"""

from __future__ import annotations

import contextlib
from typing import Any
from uuid import UUID

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_records import (
    _TYPES,
    CONSUMER_RECORD_TYPES,
)
from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.records import (
    GROUP_METADATA_KEY_TYPE,
    OFFSET_COMMIT_KEY_TYPE,
    RecordFormatError,
)
from kbroker.coordinator.testing import CoordinatorTestContext
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.internal.group_metadata_key import GroupMetadataKey
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue
from kbroker.wire.messages.internal.offset_commit_key import OffsetCommitKey
from kbroker.wire.messages.internal.offset_commit_value import OffsetCommitValue
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest

from fuzz.seeds import filled
from fuzz.targets._codec import compile_plans
from fuzz.targets._internal_records import Entry, pack, unpack

EXPECTED = (RecordFormatError, DecodeError)
TOPICS = {"t": (UUID(int=1), 3, False), "u": (UUID(int=2), 1, False)}
# Offsets expire a minute after their group empties, so one hour of fake time covers
# sessions, rebalance timeouts and a few retention sweeps without firing a week's worth.
CONFIG = GroupConfig(offsets_retention_minutes=1)
EXPIRE_MS = 3_600_000


def prepare() -> None:
    classes = [OffsetCommitKey, OffsetCommitValue, GroupMetadataKey, GroupMetadataValue]
    classes += [c for k, v in _TYPES.values() for c in (k, v) if c not in (object, None)]
    compile_plans(classes)


def _encodes(result: Any, version: int) -> None:
    if result.response is not None:
        codec.encode(result.response, version)


def _serve(coord: GroupCoordinator, timer: FakeTimer) -> None:
    classic = dict(coord.groups.groups)
    consumer = dict(coord.consumer_groups.groups)
    ids = sorted(set(classic) | set(consumer))
    _encodes(coord.list_groups(ListGroupsRequest(), api_version=5), 5)
    _encodes(coord.describe_groups(DescribeGroupsRequest(groups=ids), api_version=5), 5)
    _encodes(
        coord.consumer_group_describe(ConsumerGroupDescribeRequest(group_ids=ids), api_version=0), 0
    )
    for group_id in ids:
        _encodes(
            coord.fetch_offsets(OffsetFetchRequest(group_id=group_id, topics=None), api_version=7),
            7,
        )
    for group in classic.values():
        for member in list(group.members.values()):
            request = HeartbeatRequest(
                group_id=group.group_id,
                generation_id=group.generation_id,
                member_id=member.member_id,
                group_instance_id=member.group_instance_id,
            )
            _encodes(coord.heartbeat(request, api_version=4), 4)
    for cgroup in consumer.values():
        for cmember in list(cgroup.members.values()):
            hb = ConsumerGroupHeartbeatRequest(
                group_id=cgroup.group_id,
                member_id=cmember.member_id,
                member_epoch=cmember.member_epoch,
                instance_id=cmember.instance_id,
            )
            result = coord.consumer_group_heartbeat(
                hb, api_version=0, client_id="fuzz", client_host="/127.0.0.1"
            )
            _encodes(result, 0)
    timer.advance(EXPIRE_MS)
    _encodes(coord.list_groups(ListGroupsRequest(), api_version=5), 5)


def test_one_input(data: bytes) -> None:
    clock = ManualClock()
    timer = FakeTimer(clock)
    coord = GroupCoordinator(
        now_ms=clock.now_ms,
        timer=timer,
        config=CONFIG,
        new_uuid=lambda: "fuzz-member",
        topics=lambda: TOPICS,
        topic_name_for_id=lambda topic_id: next(
            (n for n, (tid, _, _) in TOPICS.items() if tid == topic_id), None
        ),
    )
    for entry in unpack(data):
        if entry.key is None:
            coord.replay_end_transaction(entry.producer_id, entry.committed)
            continue
        with contextlib.suppress(EXPECTED):
            coord.replay(entry.key, entry.value, producer_id=entry.producer_id)
    coord.on_loaded()
    _serve(coord, timer)


def _prefixed(prefix: int, body: bytes) -> bytes:
    return prefix.to_bytes(2, "big") + body


def _filled_records() -> list[Entry]:
    out = []
    for version in range(OffsetCommitValue.VALID_VERSIONS[1] + 1):
        key = _prefixed(OFFSET_COMMIT_KEY_TYPE, codec.encode(filled(OffsetCommitKey, 0), 0))
        out.append(
            Entry(
                key,
                _prefixed(version, codec.encode(filled(OffsetCommitValue, version), version)),
                -1,
            )
        )
    for version in range(GroupMetadataValue.VALID_VERSIONS[1] + 1):
        key = _prefixed(GROUP_METADATA_KEY_TYPE, codec.encode(filled(GroupMetadataKey, 0), 0))
        out.append(
            Entry(
                key,
                _prefixed(version, codec.encode(filled(GroupMetadataValue, version), version)),
                -1,
            )
        )
    for record_type in sorted(CONSUMER_RECORD_TYPES):
        key_cls, value_cls = _TYPES[record_type]
        if value_cls is None:
            continue
        key = _prefixed(record_type, codec.encode(filled(key_cls, 0), 0))
        out.append(Entry(key, _prefixed(0, codec.encode(filled(value_cls, 0), 0)), -1))
        out.append(Entry(key, None, -1))
    return out


def _classic_scenario() -> list[Entry]:
    ctx = CoordinatorTestContext()
    generation, members = ctx.stable_group("g", n=2)
    request = OffsetCommitRequest(
        group_id="g",
        generation_id_or_member_epoch=generation,
        member_id=members[0],
        topics=[
            OffsetCommitRequestTopic(
                name="t",
                partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=42)],
            )
        ],
    )
    ctx.finish(ctx.coord.commit_offsets(request, api_version=8))
    return [Entry(r.key, r.value, r.producer_id) for r in ctx.log]


def _consumer_scenario() -> list[Entry]:
    from kbroker.coordinator.consumer_testing import ConsumerGroupTestContext, SimConsumer

    ctx = ConsumerGroupTestContext()
    ctx.create_topic("t", 3)
    consumers = [SimConsumer(ctx, "cg", f"member-{i}", topics=["t"]) for i in range(2)]
    for _ in range(3):
        for c in consumers:
            c.heartbeat()
    return [Entry(r.key, r.value, r.producer_id) for r in ctx.log]


def seeds() -> list[bytes]:
    classic, consumer, records = _classic_scenario(), _consumer_scenario(), _filled_records()
    txn = [Entry(e.key, e.value, 3) for e in classic[-1:]] + [Entry(None, None, 3, True)]
    return [pack(classic), pack(consumer), pack(records), pack(classic + txn + consumer)] + [
        pack([e]) for e in records
    ]
