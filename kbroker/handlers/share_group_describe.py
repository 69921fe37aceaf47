"""ShareGroupDescribe (key 77).

Version notes:
- v1 served (the only version in the specs).  Authorized operations are not reported
  (INT32_MIN).  Without DESCRIBE on a group (ACLs on): GROUP_AUTHORIZATION_FAILED.  An unknown group id, or one of a classic or consumer group, answers
  GROUP_ID_NOT_FOUND.
"""

from __future__ import annotations

from kbroker.acl.model import AclOperation
from kbroker.handlers._share import group_allowed
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.share_group_describe_request import ShareGroupDescribeRequest
from kbroker.wire.messages.share_group_describe_response import (
    DescribedGroup,
    ShareGroupDescribeResponse,
)


@handler(ApiKey.SHARE_GROUP_DESCRIBE, 1, 1)
async def handle_share_group_describe(
    ctx: RequestContext, req: ShareGroupDescribeRequest
) -> ShareGroupDescribeResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.share_group_describe(req))
    assert response is not None
    for i, described in enumerate(response.groups):
        if not group_allowed(ctx, described.group_id, AclOperation.DESCRIBE):
            response.groups[i] = DescribedGroup(group_id=described.group_id, error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    return response
