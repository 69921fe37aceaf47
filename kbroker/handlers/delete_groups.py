"""DeleteGroups (key 42).

Version notes:
- v0-v2 served.  Only Empty groups can be deleted (NON_EMPTY_GROUP otherwise); their offsets
  go with them (tombstones in __consumer_offsets).
- ACLs: DELETE on each group, else GROUP_AUTHORIZATION_FAILED for it (not deleted).
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest
from kbroker.wire.messages.delete_groups_response import DeletableGroupResult, DeleteGroupsResponse


@handler(ApiKey.DELETE_GROUPS, 0, 2)
async def handle_delete_groups(ctx: RequestContext, req: DeleteGroupsRequest) -> DeleteGroupsResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    denied = [g for g in req.groups_names if not allowed(ctx, AclOperation.DELETE, GROUP, g)]
    if denied:
        req.groups_names = [g for g in req.groups_names if g not in denied]
    response = runtime.finish(runtime.coordinator.delete_groups(req, api_version=ctx.api_version))
    assert response is not None
    response.results.extend(DeletableGroupResult(group_id=g, error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED) for g in denied)
    return response
