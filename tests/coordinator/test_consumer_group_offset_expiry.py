"""Offset expiry of KIP-848 consumer groups (Kafka's ConsumerGroup.offsetExpirationCondition):
retention counts from each commit, offsets of topics a member subscribes to are kept, and
an Empty group left without offsets is deleted.  Before, only classic groups expired."""

from __future__ import annotations

from kbroker.coordinator.consumer_testing import ConsumerGroupTestContext, SimConsumer
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

RETENTION_MS = 60_000
CHECK_MS = 10_000


def _commit(ctx: ConsumerGroupTestContext, member: SimConsumer, topic: str) -> None:
    request = OffsetCommitRequest(
        group_id=member.group_id,
        member_id=member.member_id,
        generation_id_or_member_epoch=member.epoch,
        topics=[OffsetCommitRequestTopic(name=topic, partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=7)])],
    )
    response = ctx.finish(ctx.coord.commit_offsets(request, api_version=9))
    assert response.topics[0].partitions[0].error_code == 0


def _offsets(ctx: ConsumerGroupTestContext, group_id: str) -> dict[str, dict[int, object]]:
    return dict(ctx.coord.offsets.store.group_offsets(group_id) or {})


def _live_for(ctx: ConsumerGroupTestContext, member: SimConsumer, ms: int) -> None:
    for _ in range(ms // 5_000):
        ctx.sleep(5_000)
        member.heartbeat()


def test_consumer_group_offsets_expire_except_subscribed_topics_then_the_empty_group_goes() -> None:
    ctx = ConsumerGroupTestContext(offsets_retention_minutes=1, offsets_retention_check_interval_ms=CHECK_MS)
    ctx.finish(ctx.coord.on_loaded())
    ctx.create_topic("sub", 1)
    ctx.create_topic("other", 1)
    member = SimConsumer(ctx, "g", "m1", topics=["sub"])
    member.heartbeat()
    member.heartbeat()
    _commit(ctx, member, "sub")
    _commit(ctx, member, "other")
    _live_for(ctx, member, RETENTION_MS + 2 * CHECK_MS)
    assert set(_offsets(ctx, "g")) == {"sub"}  # "other" expired; "sub" is subscribed
    member.leave()
    ctx.sleep(RETENTION_MS + 2 * CHECK_MS)
    assert _offsets(ctx, "g") == {}
    assert ctx.coord.consumer_groups.get("g") is None
    assert ctx.replayed().consumer_groups.get("g") is None  # tombstones were written
