"""AlterShareGroupOffsets (key 91): set where an empty share group starts reading.

Version notes:
- v0 served (the only version in the specs).  The group must exist and be empty
  (GROUP_ID_NOT_FOUND / NON_EMPTY_GROUP for the whole request).  Each partition's
  share-partition state starts afresh at the given offset (its in-flight records are
  forgotten, its state epoch goes up); an offset outside the log is
  OFFSET_OUT_OF_RANGE, an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from uuid import UUID

from kbroker.coordinator.result import Effects
from kbroker.handlers._share import group_allowed, share_runtime
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_share_group_offsets_request import AlterShareGroupOffsetsRequest
from kbroker.wire.messages.alter_share_group_offsets_response import (
    AlterShareGroupOffsetsResponse,
    AlterShareGroupOffsetsResponsePartition,
    AlterShareGroupOffsetsResponseTopic,
)


@handler(ApiKey.ALTER_SHARE_GROUP_OFFSETS, 0, 0)
async def handle_alter_share_group_offsets(
    ctx: RequestContext, req: AlterShareGroupOffsetsRequest
) -> AlterShareGroupOffsetsResponse:
    if not group_allowed(ctx, req.group_id):
        return AlterShareGroupOffsetsResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    groups = ctx.broker.groups
    assert groups.coordinator is not None
    runtime = share_runtime(ctx)
    group = groups.coordinator.share_groups.get(req.group_id)
    if group is None:
        return AlterShareGroupOffsetsResponse(
            error_code=ErrorCode.GROUP_ID_NOT_FOUND,
            error_message=f"Group {req.group_id} not found.",
        )
    if group.members:
        return AlterShareGroupOffsetsResponse(
            error_code=ErrorCode.NON_EMPTY_GROUP,
            error_message="The share group must be empty to alter its offsets.",
        )
    response = AlterShareGroupOffsetsResponse()
    altered: dict[UUID, set[int]] = {}
    for t in req.topics:
        topic = ctx.broker.metadata.get(t.topic_name)
        rt = AlterShareGroupOffsetsResponseTopic(topic_name=t.topic_name)
        response.responses.append(rt)
        for p in t.partitions:
            rp = AlterShareGroupOffsetsResponsePartition(partition_index=p.partition_index)
            rt.partitions.append(rp)
            if topic is None or not 0 <= p.partition_index < topic.num_partitions:
                rp.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            rt.topic_id = topic.topic_id
            offsets = runtime.log_offsets(topic.topic_id, p.partition_index)
            if offsets is None or not offsets[0] <= p.start_offset <= offsets[1]:
                rp.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
                continue
            runtime.finish(
                runtime.coordinator.alter_start_offset(
                    req.group_id, topic.topic_id, p.partition_index, p.start_offset
                )
            )
            altered.setdefault(topic.topic_id, set()).add(p.partition_index)
    if altered:
        fx = Effects()
        groups.coordinator.share_groups.note_initialized(
            group, {t: frozenset(p) for t, p in altered.items()}, fx
        )
        groups.finish(fx.result(None))
    return response
