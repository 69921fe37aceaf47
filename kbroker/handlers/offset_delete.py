"""OffsetDelete (key 47).

Version notes:
- v0 served (kafka-python admin, librdkafka).  GROUP_SUBSCRIBED_TO_TOPIC for partitions of
  topics the group is consuming.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.offset_delete_request import OffsetDeleteRequest
from kbroker.wire.messages.offset_delete_response import OffsetDeleteResponse


@handler(ApiKey.OFFSET_DELETE, 0, 0)
async def handle_offset_delete(ctx: RequestContext, req: OffsetDeleteRequest) -> OffsetDeleteResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.delete_offsets(req, api_version=ctx.api_version))
    assert response is not None
    return response
