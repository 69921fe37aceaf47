"""OffsetDelete (key 47).

Version notes:
- v0 served (kafka-python admin, librdkafka).  GROUP_SUBSCRIBED_TO_TOPIC for partitions of
  topics the group is consuming.
- ACLs: DELETE on the group (GROUP_AUTHORIZATION_FAILED); READ on each topic, else its
  partitions get TOPIC_AUTHORIZATION_FAILED and keep their offsets.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, TOPIC, allowed, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.offset_delete_request import OffsetDeleteRequest
from kbroker.wire.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)


@handler(ApiKey.OFFSET_DELETE, 0, 0)
async def handle_offset_delete(ctx: RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse:
    require(ctx, AclOperation.DELETE, GROUP, req.group_id)
    denied = [t for t in req.topics if not allowed(ctx, AclOperation.READ, TOPIC, t.name)]
    if denied:
        req.topics = [t for t in req.topics if t not in denied]
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.delete_offsets(req, api_version=ctx.api_version))
    assert response is not None
    for t in denied:
        response.topics.append(OffsetDeleteResponseTopic(name=t.name, partitions=[
            OffsetDeleteResponsePartition(partition_index=p.partition_index, error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED)
            for p in t.partitions
        ]))
    return response
