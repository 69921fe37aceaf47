"""KIP-932 share groups, pure: heartbeats, share-partition acquisition and acknowledgement,
lock expiry on the fake clock, delivery-count limits, and restarts from the two logs."""

from __future__ import annotations

from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_partition import AcknowledgeType, RecordState
from kbroker.coordinator.share_testing import ShareTestContext
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.share_group_describe_request import ShareGroupDescribeRequest

ACCEPT, RELEASE, REJECT = AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE, AcknowledgeType.REJECT


def _joined(ctx: ShareTestContext, *members: str, topic: str = "t") -> None:
    for m in members:
        response = ctx.heartbeat("g", m, 0, [topic])
        assert response.error_code == ErrorCode.NONE, response


def test_join_gets_every_partition_and_epochs_follow_the_group() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 3)
    first = ctx.heartbeat("g", "a", 0, ["t"])
    assert first.member_epoch == 1
    assert first.assignment is not None
    assert [(tp.topic_id, tp.partitions) for tp in first.assignment.topic_partitions] == [
        (tid, [0, 1, 2])
    ]
    second = ctx.heartbeat("g", "b", 0, ["t"])
    assert second.member_epoch == 2
    assert second.assignment is not None and second.assignment.topic_partitions[0].partitions == [
        0,
        1,
        2,
    ]
    # a moves to epoch 2; its assignment did not change, so none is sent
    again = ctx.heartbeat("g", "a", 1)
    assert (again.member_epoch, again.assignment) == (2, None)
    assert ctx.heartbeat("g", "a", 1).error_code == ErrorCode.FENCED_MEMBER_EPOCH
    assert ctx.heartbeat("g", "zz", 5).error_code == ErrorCode.UNKNOWN_MEMBER_ID
    assert ctx.heartbeat("g", "", 0, ["t"]).error_code == ErrorCode.INVALID_REQUEST
    assert ctx.heartbeat("g", "c", 0, None).error_code == ErrorCode.INVALID_REQUEST


def test_share_group_id_is_not_a_consumer_group_and_lists_as_share() -> None:
    ctx = ShareTestContext()
    ctx.create_topic("t", 1)
    _joined(ctx, "a")
    from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest

    cg = ctx.coord.consumer_group_heartbeat(
        ConsumerGroupHeartbeatRequest(
            group_id="g",
            member_id="x",
            member_epoch=0,
            rebalance_timeout_ms=1000,
            subscribed_topic_names=["t"],
        ),
        api_version=1,
        client_id="c",
        client_host="/h",
    )
    assert cg.response is not None and cg.response.error_code == ErrorCode.GROUP_ID_NOT_FOUND
    listed = ctx.coord.list_groups(
        ListGroupsRequest(types_filter=["share"]), api_version=5
    ).response
    assert listed is not None
    assert [(g.group_id, g.group_type, g.group_state) for g in listed.groups] == [
        ("g", "share", "Stable")
    ]
    described = ctx.coord.share_group_describe(
        ShareGroupDescribeRequest(group_ids=["g", "nope"])
    ).response
    assert described is not None
    assert described.groups[0].members[0].member_id == "a"
    assert described.groups[1].error_code == ErrorCode.GROUP_ID_NOT_FOUND


def test_members_get_distinct_records_and_acceptance_moves_the_start_offset() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a", "b")
    ctx.produce(tid, 0, 10)
    got_a = ctx.fetch("g", "a", tid, 0, max_records=4)
    got_b = ctx.fetch("g", "b", tid, 0, max_records=4)
    assert got_a == [(0, 3, 1)]
    assert got_b == [(4, 7, 1)]
    assert ctx.fetch("g", "a", tid, 0) == [(8, 9, 1)]
    assert ctx.fetch("g", "b", tid, 0) == []  # everything is held
    # b cannot acknowledge a's records
    assert ctx.ack("g", "b", tid, 0, 0, 3, ACCEPT) == ErrorCode.INVALID_RECORD_STATE
    assert ctx.ack("g", "a", tid, 0, 0, 3, ACCEPT) == ErrorCode.NONE
    part = ctx.share.partition("g", tid, 0)
    assert part is not None and part.start_offset == 4


def test_released_records_come_back_with_a_higher_delivery_count_and_are_archived_at_the_limit() -> (
    None
):
    ctx = ShareTestContext(ShareConfig(group_share_delivery_count_limit=3))
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a")
    ctx.produce(tid, 0, 1)
    for delivery in (1, 2, 3):
        assert ctx.fetch("g", "a", tid, 0) == [(0, 0, delivery)]
        assert ctx.ack("g", "a", tid, 0, 0, 0, RELEASE) == ErrorCode.NONE
    assert ctx.fetch("g", "a", tid, 0) == []
    part = ctx.share.partition("g", tid, 0)
    assert part is not None and part.start_offset == 1 and not part.in_flight


def test_an_unacknowledged_record_comes_back_when_its_lock_expires() -> None:
    ctx = ShareTestContext(ShareConfig(group_share_record_lock_duration_ms=10_000))
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a", "b")
    ctx.produce(tid, 0, 2)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 1, 1)]
    ctx.sleep(9_999)
    assert ctx.fetch("g", "b", tid, 0) == []
    ctx.sleep(1)
    assert ctx.released == [(tid, 0)]
    assert ctx.fetch("g", "b", tid, 0) == [(0, 1, 2)]
    # a's late acknowledgement is refused: the records are b's now
    assert ctx.ack("g", "a", tid, 0, 0, 1, ACCEPT) == ErrorCode.INVALID_RECORD_STATE


def test_a_leaving_member_returns_its_records_at_once() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a", "b")
    ctx.produce(tid, 0, 3)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 2, 1)]
    assert ctx.heartbeat("g", "a", -1).member_epoch == -1
    assert ctx.fetch("g", "b", tid, 0) == [(0, 2, 2)]


def test_session_timeout_releases_a_silent_members_records() -> None:
    ctx = ShareTestContext(ShareConfig(group_share_record_lock_duration_ms=3_600_000))
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a", "b")
    ctx.produce(tid, 0, 1)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 0, 1)]
    for _ in range(10):
        ctx.sleep(5_000)
        ctx.heartbeat("g", "b", ctx.coord.share_groups.groups["g"].members["b"].member_epoch)
    assert "a" not in ctx.coord.share_groups.groups["g"].members
    assert ctx.fetch("g", "b", tid, 0) == [(0, 0, 2)]


def test_auto_offset_reset_latest_by_default_and_earliest_per_group() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    ctx.produce(tid, 0, 5)
    _joined(ctx, "a")
    assert ctx.fetch("g", "a", tid, 0) == []
    ctx.produce(tid, 0, 1)
    assert ctx.fetch("g", "a", tid, 0) == [(5, 5, 1)]
    ctx.group_configs["g2"] = {"share.auto.offset.reset": "earliest"}
    assert ctx.heartbeat("g2", "x", 0, ["t"]).error_code == ErrorCode.NONE
    assert ctx.fetch("g2", "x", tid, 0) == [(0, 5, 1)]


def test_restart_keeps_acknowledgements_delivery_counts_and_membership() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a")
    ctx.produce(tid, 0, 6)
    assert ctx.fetch("g", "a", tid, 0, max_records=3) == [(0, 2, 1)]
    assert ctx.ack("g", "a", tid, 0, 0, 0, ACCEPT) == ErrorCode.NONE
    assert ctx.ack("g", "a", tid, 0, 2, 2, REJECT) == ErrorCode.NONE
    after = ctx.restarted()
    group = after.coord.share_groups.get("g")
    assert group is not None and list(group.members) == ["a"] and group.group_epoch == 1
    part = after.share.partition("g", tid, 0)
    assert part is not None and part.start_offset == 1
    assert (
        part.in_flight[1].state is RecordState.AVAILABLE and part.in_flight[1].delivery_count == 1
    )
    assert part.in_flight[2].state is RecordState.ARCHIVED
    # offset 1 (held when the broker went down) comes back, then the rest; 0 and 2 never do
    assert after.fetch("g", "a", tid, 0) == [(1, 1, 2), (3, 5, 1)]


def test_delete_group_needs_it_empty_and_drops_its_share_state() -> None:
    from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest

    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a")
    ctx.produce(tid, 0, 1)
    ctx.fetch("g", "a", tid, 0)
    busy = ctx.finish(
        ctx.coord.delete_groups(DeleteGroupsRequest(groups_names=["g"]), api_version=2)
    )
    assert busy.results[0].error_code == ErrorCode.NON_EMPTY_GROUP
    ctx.heartbeat("g", "a", -1)
    done = ctx.finish(
        ctx.coord.delete_groups(DeleteGroupsRequest(groups_names=["g"]), api_version=2)
    )
    assert done.results[0].error_code == ErrorCode.NONE
    assert ctx.share.partition("g", tid, 0) is None
    after = ctx.restarted()
    assert after.coord.share_groups.get("g") is None and after.share.partition("g", tid, 0) is None


def test_a_record_held_at_the_delivery_limit_across_a_restart_is_archived_not_redelivered() -> None:
    """Found by the state machine: a restart made a record held for its last delivery
    AVAILABLE again, so it was delivered limit + 1 times."""
    ctx = ShareTestContext(ShareConfig(group_share_delivery_count_limit=2))
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a")
    ctx.produce(tid, 0, 1)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 0, 1)]
    ctx = ctx.restarted()
    assert ctx.fetch("g", "a", tid, 0) == [(0, 0, 2)]
    ctx = ctx.restarted()
    assert ctx.fetch("g", "a", tid, 0) == []


def test_group_ids_of_other_kinds_are_not_share_groups_and_share_groups_take_no_commits() -> None:
    from kbroker.wire.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )

    ctx = ShareTestContext()
    ctx.create_topic("t", 1)

    def commit(group_id: str) -> int:
        request = OffsetCommitRequest(
            group_id=group_id,
            generation_id_or_member_epoch=-1,
            member_id="",
            topics=[OffsetCommitRequestTopic(name="t", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=1)])],
        )
        response = ctx.finish(ctx.coord.commit_offsets(request, api_version=8))
        return int(response.topics[0].partitions[0].error_code)

    assert commit("classic") == ErrorCode.NONE  # an Empty classic group holding an offset
    assert ctx.heartbeat("classic", "a", 0, ["t"]).error_code == ErrorCode.GROUP_ID_NOT_FOUND
    _joined(ctx, "a")
    assert commit("g") == ErrorCode.GROUP_ID_NOT_FOUND


def test_an_acknowledgement_over_a_huge_range_is_refused_at_once() -> None:
    """Refused before any offset is looked at: the work one batch can cause is bounded by the
    in-flight records, not by the range it names."""
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a")
    ctx.produce(tid, 0, 2)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 1, 1)]
    assert ctx.ack("g", "a", tid, 0, 0, 2**62, ACCEPT) == ErrorCode.INVALID_RECORD_STATE
    assert ctx.ack("g", "a", tid, 0, 0, 1, ACCEPT) == ErrorCode.NONE


def test_the_in_flight_cap_holds_back_fresh_records_and_an_accept_wakes_waiting_fetches() -> None:
    ctx = ShareTestContext(ShareConfig(group_share_partition_max_record_locks=2))
    tid = ctx.create_topic("t", 1)
    _joined(ctx, "a", "b")
    ctx.produce(tid, 0, 5)
    assert ctx.fetch("g", "a", tid, 0) == [(0, 1, 1)]
    assert ctx.fetch("g", "b", tid, 0) == []  # two records in flight: the cap
    assert ctx.released == []
    assert ctx.ack("g", "a", tid, 0, 0, 1, ACCEPT) == ErrorCode.NONE
    assert ctx.released == [(tid, 0)]  # a parked fetch of b would look again now
    assert ctx.fetch("g", "b", tid, 0) == [(2, 3, 1)]


def test_auto_offset_reset_by_duration_starts_at_the_first_record_that_recent() -> None:
    ctx = ShareTestContext()
    tid = ctx.create_topic("t", 1)
    ctx.produce(tid, 0, 3)  # offsets 0-2, two hours old by the time the group starts
    ctx.sleep(3_600_000)
    ctx.produce(tid, 0, 2)  # offsets 3-4, one hour old
    ctx.sleep(3_600_000)
    ctx.group_configs["g"] = {"share.auto.offset.reset": "by_duration:PT1H30M"}
    _joined(ctx, "a")
    assert ctx.fetch("g", "a", tid, 0) == [(3, 4, 1)]
    ctx.group_configs["g2"] = {"share.auto.offset.reset": "by_duration:PT1M"}  # nothing that recent
    assert ctx.heartbeat("g2", "x", 0, ["t"]).error_code == ErrorCode.NONE
    assert ctx.fetch("g2", "x", tid, 0) == []
    ctx.produce(tid, 0, 1)
    assert ctx.fetch("g2", "x", tid, 0) == [(5, 5, 1)]


def test_by_duration_values_parse_as_java_durations() -> None:
    from kbroker.coordinator.share_config import parse_by_duration_ms, valid_auto_offset_reset

    assert parse_by_duration_ms("by_duration:P1DT2H3M4.5S") == 93_784_500
    assert parse_by_duration_ms("by_duration:PT0.001S") == 1
    for bad in ("by_duration:", "by_duration:P", "by_duration:PT", "by_duration:-PT1H", "by_duration:1h", "PT1H"):
        assert parse_by_duration_ms(bad) is None, bad
    assert valid_auto_offset_reset("earliest") and not valid_auto_offset_reset("sideways")
