"""DescribeGroups (key 15).

Version notes:
- v0-v6 served (librdkafka's legacy list_groups path sends v0).  v3+ authorized operations
  are not reported (INT32_MIN); v6+ GROUP_ID_NOT_FOUND for unknown groups (earlier versions
  answer them as Dead with no members, as Kafka does).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.describe_groups_response import DescribeGroupsResponse


@handler(ApiKey.DESCRIBE_GROUPS, 0, 6)
async def handle_describe_groups(ctx: RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.describe_groups(req, api_version=ctx.api_version))
    assert response is not None
    return response
