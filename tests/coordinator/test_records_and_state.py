"""__consumer_offsets record formats, partition_for, the state table, the fake timer."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from kbroker.coordinator.records import (
    GroupMetadataRecord,
    OffsetCommitRecord,
    decode_record,
    group_metadata_key,
    group_metadata_value,
    offset_commit_key,
    offset_commit_value,
    partition_for,
    subscribed_topics,
)
from kbroker.coordinator.result import Result
from kbroker.coordinator.state import (
    ALLOWED_PREVIOUS,
    GroupState,
    IllegalTransition,
    assert_valid_transition,
)
from kbroker.coordinator.testing import CoordinatorTestContext, subscription
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue, MemberMetadata
from kbroker.wire.messages.internal.offset_commit_value import OffsetCommitValue


def kstr(s: str) -> bytes:
    return struct.pack(">h", len(s)) + s.encode()


def test_offset_commit_key_and_value_bytes_are_kafkas() -> None:
    assert offset_commit_key("g", "t", 3) == struct.pack(">h", 1) + kstr("g") + kstr(
        "t"
    ) + struct.pack(">i", 3)
    value = OffsetCommitValue(offset=42, leader_epoch=7, metadata="m", commit_timestamp=1000)
    assert offset_commit_value(value) == (
        struct.pack(">hqi", 3, 42, 7) + kstr("m") + struct.pack(">q", 1000)
    )
    with_expiry = OffsetCommitValue(
        offset=42, metadata="", commit_timestamp=1000, expire_timestamp=2000
    )
    assert offset_commit_value(with_expiry) == struct.pack(">hq", 1, 42) + kstr("") + struct.pack(
        ">qq", 1000, 2000
    )


def test_group_metadata_key_and_value_bytes_are_kafkas() -> None:
    assert group_metadata_key("grp") == struct.pack(">h", 2) + kstr("grp")
    value = GroupMetadataValue(
        protocol_type="consumer",
        generation=5,
        protocol="range",
        leader="m1",
        current_state_timestamp=99,
        members=[
            MemberMetadata(
                member_id="m1",
                group_instance_id=None,
                client_id="c",
                client_host="/h",
                rebalance_timeout=300,
                session_timeout=100,
                subscription=b"S",
                assignment=b"AA",
            )
        ],
    )
    expected = (
        struct.pack(">h", 3)
        + kstr("consumer")
        + struct.pack(">i", 5)
        + kstr("range")
        + kstr("m1")
        + struct.pack(">q", 99)
        + struct.pack(">i", 1)
        + kstr("m1")
        + struct.pack(">h", -1)  # null group instance id
        + kstr("c")
        + kstr("/h")
        + struct.pack(">ii", 300, 100)
        + struct.pack(">i", 1)
        + b"S"
        + struct.pack(">i", 2)
        + b"AA"
    )
    assert group_metadata_value(value) == expected
    decoded = decode_record(group_metadata_key("grp"), expected)
    assert isinstance(decoded, GroupMetadataRecord) and decoded.value == value


def test_decode_reads_old_versions_tombstones_and_skips_foreign_records() -> None:
    v0 = struct.pack(">hq", 0, 9) + kstr("meta") + struct.pack(">q", 77)
    key_v0 = struct.pack(">h", 0) + kstr("g") + kstr("t") + struct.pack(">i", 1)
    decoded = decode_record(key_v0, v0)
    assert isinstance(decoded, OffsetCommitRecord)
    assert decoded.value is not None and (decoded.value.offset, decoded.value.leader_epoch) == (
        9,
        -1,
    )
    tomb = decode_record(offset_commit_key("g", "t", 1), None)
    assert isinstance(tomb, OffsetCommitRecord) and tomb.value is None
    gv0 = (
        struct.pack(">h", 0)
        + kstr("consumer")
        + struct.pack(">i", 1)
        + struct.pack(">h", -1) * 2
        + struct.pack(">i", 0)
    )
    decoded_group = decode_record(group_metadata_key("g"), gv0)
    assert isinstance(decoded_group, GroupMetadataRecord) and decoded_group.value is not None
    assert (
        decoded_group.value.current_state_timestamp == -1 and decoded_group.value.protocol is None
    )
    # Key version 3+ belongs to KIP-848 consumer groups: not ours.
    assert decode_record(struct.pack(">h", 3) + kstr("g"), b"\x00\x00") is None


def test_partition_for_matches_java_string_hash_code() -> None:
    assert partition_for("hello", 2**31 - 1) == 99162322  # "hello".hashCode()
    assert partition_for("polygenelubricants", 50) == 0  # hashCode() == Integer.MIN_VALUE
    assert all(0 <= partition_for(f"group-{i}", 50) < 50 for i in range(200))
    assert partition_for("ü-gröup", 50) == partition_for("ü-gröup", 50)
    # "my-group".hashCode() is -1906497762: Kafka's Utils.abs gives 1906497762 % 50 == 12
    # (masking with 0x7fffffff would give 36, another partition than Kafka's).
    assert partition_for("my-group", 50) == 12


def test_subscribed_topics_parses_consumer_protocol_subscription() -> None:
    assert subscribed_topics(subscription("a", "b")) == {"a", "b"}
    assert subscribed_topics(subscription("a", version=1)) == {"a"}
    assert subscribed_topics(b"\x00") is None
    assert subscribed_topics(b"\x00\x00\x7f\xff\xff\xff") is None


def test_state_table_matches_kafka() -> None:
    S = GroupState
    assert ALLOWED_PREVIOUS[S.STABLE] == {S.COMPLETING_REBALANCE}
    assert ALLOWED_PREVIOUS[S.EMPTY] == {S.PREPARING_REBALANCE}
    assert_valid_transition(S.EMPTY, S.PREPARING_REBALANCE)
    with pytest.raises(IllegalTransition):
        assert_valid_transition(S.EMPTY, S.STABLE)
    with pytest.raises(IllegalTransition):
        assert_valid_transition(S.DEAD, S.EMPTY)
    for state in S:
        assert state.__doc__ and "action:" in state.__doc__ and "transition:" in state.__doc__


def test_fake_timer_fires_in_deadline_order_and_replaces_keys() -> None:
    clock = ManualClock(0)
    timer = FakeTimer(clock)
    fired: list[tuple[str, int]] = []

    def cb(name: str) -> Result[None]:
        fired.append((name, clock.ms))
        if name == "a":
            timer.schedule("c", 5, lambda: cb("c"))
        return Result()

    timer.schedule("a", 10, lambda: cb("a"))
    timer.schedule("b", 12, lambda: cb("b"))
    timer.schedule("b", 20, lambda: cb("b2"))  # replaces
    timer.schedule("d", 1, lambda: cb("d"))
    timer.cancel("d")
    timer.advance(30)
    assert fired == [("a", 10), ("c", 15), ("b2", 20)]
    assert clock.ms == 30 and timer.keys == []


def test_replay_of_a_stable_group_schedules_heartbeats_and_expires_silent_members() -> None:
    ctx = CoordinatorTestContext()
    gen, members = ctx.stable_group("g", 2)
    fresh = ctx.replayed()
    group = fresh.groups.get("g")
    assert group is not None and group.state is GroupState.STABLE and group.generation_id == gen
    assert set(group.members) == set(members)
    assert isinstance(fresh.timer, FakeTimer)
    fresh.timer.advance(10_000)
    assert group.state is GroupState.PREPARING_REBALANCE or group.state is GroupState.EMPTY


@pytest.mark.parametrize("version", range(0, 7))
def test_find_coordinator_answers_this_node_single_and_batched(version: int) -> None:
    from kbroker.coordinator.find_coordinator import find_coordinator
    from kbroker.wire.codec import encode
    from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest

    request = FindCoordinatorRequest(key="g", key_type=0, coordinator_keys=["g1", "g2"])
    response = find_coordinator(
        request, api_version=version, node_id=1, host="localhost", port=9092
    )
    encode(response, version)
    if version >= 4:
        assert [(c.key, c.node_id, c.port, c.error_code) for c in response.coordinators] == [
            ("g1", 1, 9092, 0),
            ("g2", 1, 9092, 0),
        ]
    else:
        assert (response.node_id, response.host, response.port, response.error_code) == (
            1,
            "localhost",
            9092,
            0,
        )
    if version >= 1:
        bad = find_coordinator(
            FindCoordinatorRequest(key="g", key_type=2, coordinator_keys=["g"]),
            api_version=version,
            node_id=1,
            host="h",
            port=1,
        )
        encode(bad, version)
        codes = [c.error_code for c in bad.coordinators] if version >= 4 else [bad.error_code]
        assert codes == [42]  # INVALID_REQUEST


def test_call_later_timer_replaces_cancels_and_sinks_results() -> None:
    from kbroker.coordinator.timer import CallLaterTimer

    queued: list[tuple[float, Callable[[], None], list[bool]]] = []

    class Handle:
        def __init__(self, flag: list[bool]) -> None:
            self.flag = flag

        def cancel(self) -> None:
            self.flag[0] = True

    def call_later(seconds: float, fn: Callable[[], None]) -> Handle:
        flag = [False]
        queued.append((seconds, fn, flag))
        return Handle(flag)

    sunk: list[Result[None]] = []
    timer = CallLaterTimer(call_later, sink=sunk.append)
    first, second = Result[None](), Result[None]()
    timer.schedule("k", 1500, lambda: first)
    timer.schedule("k", 2000, lambda: second)  # replaces
    assert queued[0][2] == [True] and queued[1][0] == 2.0
    queued[0][1]()  # a stale callback that raced the cancel does nothing
    queued[1][1]()
    assert len(sunk) == 1 and sunk[0] is second
    timer.schedule("x", 10, lambda: first)
    timer.cancel_all()
    assert queued[2][2] == [True]


@pytest.mark.parametrize("version", range(0, 5))
def test_every_value_version_replays(version: int) -> None:
    from kbroker.coordinator.group_coordinator import GroupCoordinator
    from kbroker.wire.codec import encode

    group_value = GroupMetadataValue(
        protocol_type="consumer",
        generation=4,
        protocol="range",
        leader="m",
        current_state_timestamp=5 if version >= 2 else -1,
        members=[
            MemberMetadata(
                member_id="m",
                group_instance_id="i" if version >= 3 else None,
                client_id="c",
                client_host="/h",
                rebalance_timeout=9 if version >= 1 else -1,
                session_timeout=7,
                subscription=subscription("t"),
                assignment=b"A",
            )
        ],
    )
    offset_value = OffsetCommitValue(
        offset=3, leader_epoch=2 if version >= 3 else -1, metadata="x", commit_timestamp=11,
        expire_timestamp=12 if version == 1 else -1,
    )  # fmt: skip
    timer = FakeTimer(ManualClock(0))
    coord = GroupCoordinator(now_ms=timer.clock.now_ms, timer=timer)
    coord.replay(group_metadata_key("g"), struct.pack(">h", version) + encode(group_value, version))
    coord.replay(
        offset_commit_key("g", "t", 0), struct.pack(">h", version) + encode(offset_value, version)
    )
    group = coord.groups.get("g")
    assert group is not None and group.state is GroupState.STABLE and group.generation_id == 4
    member = group.members["m"]
    assert member.rebalance_timeout_ms == (9 if version >= 1 else 7)  # v0: the session timeout
    assert member.group_instance_id == ("i" if version >= 3 else None)
    assert group.subscribed == {"t"} and member.assignment == b"A"
    offset = coord.offsets.store.get("g", "t", 0)
    assert offset is not None and offset.committed_offset == 3
    assert offset.expire_timestamp_ms == (12 if version == 1 else None)
