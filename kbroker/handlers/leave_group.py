"""LeaveGroup (key 13).

Version notes:
- v0-v5 served (aiokafka/librdkafka v1, kafkajs v3, kafka-python v5).  v3+ leave in batches
  (members, by member id or group instance id), each with its own error.
- ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest
from kbroker.wire.messages.leave_group_response import LeaveGroupResponse


@handler(ApiKey.LEAVE_GROUP, 0, 5)
async def handle_leave_group(ctx: RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse:
    require(ctx, AclOperation.READ, GROUP, req.group_id)
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.leave_group(req, api_version=ctx.api_version))
    assert response is not None
    return response
