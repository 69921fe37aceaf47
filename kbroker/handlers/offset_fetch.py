"""OffsetFetch (key 9).

Version notes:
- v1-v9 served (aiokafka v1-3, kafkajs v4, librdkafka 2.0.2 v7, kafka-python v8, librdkafka
  2.16 v9).  v2+ topics null = all committed offsets of the group; v7+ require_stable;
  v8+ several groups in one request.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest
from kbroker.wire.messages.offset_fetch_response import OffsetFetchResponse


@handler(ApiKey.OFFSET_FETCH, 1, 9)
async def handle_offset_fetch(ctx: RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.fetch_offsets(req, api_version=ctx.api_version))
    assert response is not None
    return response
