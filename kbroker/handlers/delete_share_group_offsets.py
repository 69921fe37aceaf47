"""DeleteShareGroupOffsets (key 92): forget an empty share group's state for some topics.

Version notes:
- v0 served (the only version in the specs).  The group must exist and be empty
  (GROUP_ID_NOT_FOUND / NON_EMPTY_GROUP for the whole request).  The topics'
  share-partition state is deleted (tombstones in ``__share_group_state``); the next member
  to be assigned them starts from ``share.auto.offset.reset``.  An unknown topic is
  UNKNOWN_TOPIC_OR_PARTITION.
"""

from __future__ import annotations

from kbroker.acl.model import AclOperation
from kbroker.coordinator.result import Effects
from kbroker.handlers._share import group_allowed, share_runtime
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_share_group_offsets_request import DeleteShareGroupOffsetsRequest
from kbroker.wire.messages.delete_share_group_offsets_response import (
    DeleteShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponseTopic,
)


@handler(ApiKey.DELETE_SHARE_GROUP_OFFSETS, 0, 0)
async def handle_delete_share_group_offsets(
    ctx: RequestContext, req: DeleteShareGroupOffsetsRequest
) -> DeleteShareGroupOffsetsResponse:
    if not group_allowed(ctx, req.group_id, AclOperation.DELETE):
        return DeleteShareGroupOffsetsResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    groups = ctx.broker.groups
    assert groups.coordinator is not None
    runtime = share_runtime(ctx)
    group = groups.coordinator.share_groups.get(req.group_id)
    if group is None:
        return DeleteShareGroupOffsetsResponse(
            error_code=ErrorCode.GROUP_ID_NOT_FOUND,
            error_message=f"Group {req.group_id} not found.",
        )
    if group.members:
        return DeleteShareGroupOffsetsResponse(
            error_code=ErrorCode.NON_EMPTY_GROUP,
            error_message="The share group must be empty to delete its offsets.",
        )
    response = DeleteShareGroupOffsetsResponse()
    topic_ids = set()
    for t in req.topics:
        topic = ctx.broker.metadata.get(t.topic_name)
        rt = DeleteShareGroupOffsetsResponseTopic(topic_name=t.topic_name)
        response.responses.append(rt)
        if topic is None:
            rt.error_code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            continue
        rt.topic_id = topic.topic_id
        topic_ids.add(topic.topic_id)
    if topic_ids:
        runtime.finish(runtime.coordinator.delete_state(req.group_id, topic_ids))
        fx = Effects()
        groups.coordinator.share_groups.forget_topics(group, topic_ids, fx)
        groups.finish(fx.result(None))
    return response
