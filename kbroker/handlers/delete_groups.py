"""DeleteGroups (key 42).

Version notes:
- v0-v2 served.  Only Empty groups can be deleted (NON_EMPTY_GROUP otherwise); their offsets
  go with them (tombstones in __consumer_offsets).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest
from kbroker.wire.messages.delete_groups_response import DeleteGroupsResponse


@handler(ApiKey.DELETE_GROUPS, 0, 2)
async def handle_delete_groups(ctx: RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.delete_groups(req, api_version=ctx.api_version))
    assert response is not None
    return response
