"""DescribeGroups (key 15).

Version notes:
- v0-v6 served (librdkafka's legacy list_groups path sends v0).  v3+ authorized operations
  are not reported (INT32_MIN); v6+ GROUP_ID_NOT_FOUND for unknown groups (earlier versions
  answer them as Dead with no members, as Kafka does).
- ACLs: DESCRIBE on each group, else GROUP_AUTHORIZATION_FAILED for it; v3+
  authorized_operations from the authorizer (every group operation without one).
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, allowed, authorized_operations
from kbroker.acl.model import AclOperation
from kbroker.authz import GROUP_OPERATIONS
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest
from kbroker.wire.messages.describe_groups_response import DescribedGroup, DescribeGroupsResponse


@handler(ApiKey.DESCRIBE_GROUPS, 0, 6)
async def handle_describe_groups(ctx: RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.describe_groups(req, api_version=ctx.api_version))
    assert response is not None
    with_ops = ctx.api_version >= 3 and req.include_authorized_operations
    if ctx.broker.authorizer is not None or with_ops:
        for i, group in enumerate(response.groups):
            if not allowed(ctx, AclOperation.DESCRIBE, GROUP, group.group_id):
                response.groups[i] = DescribedGroup(group_id=group.group_id, error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
            elif with_ops:
                group.authorized_operations = authorized_operations(ctx, GROUP, group.group_id, GROUP_OPERATIONS)
    return response
