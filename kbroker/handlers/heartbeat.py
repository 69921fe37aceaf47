"""Heartbeat (key 12).

Version notes:
- v0-v4 served (aiokafka v1, librdkafka/kafkajs v3, kafka-python v4).  REBALANCE_IN_PROGRESS,
  ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID come from the coordinator.
- ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.heartbeat_response import HeartbeatResponse


@handler(ApiKey.HEARTBEAT, 0, 4)
async def handle_heartbeat(ctx: RequestContext, req: HeartbeatRequest) -> HeartbeatResponse:
    require(ctx, AclOperation.READ, GROUP, req.group_id)
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.heartbeat(req, api_version=ctx.api_version))
    assert response is not None
    return response
