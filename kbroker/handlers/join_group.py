"""JoinGroup (key 11).

Version notes:
- v0-v9 served (aiokafka/librdkafka/kafkajs v5, kafka-python v7).  The group protocol is
  the coordinator's (``coordinator.group_manager``); this handler only parks the request
  until the coordinator answers it: the response comes when the rebalance completes, or
  at once (MEMBER_ID_REQUIRED for v4+ joins without a member id, errors).  A JoinGroup to
  a live consumer group (online migration) is answered at once from that group
  (``coordinator.migration``): generation = member epoch, no leader, no member list.
- ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.join_group_request import JoinGroupRequest
from kbroker.wire.messages.join_group_response import JoinGroupResponse


@handler(ApiKey.JOIN_GROUP, 0, 9)
async def handle_join_group(ctx: RequestContext, req: JoinGroupRequest) -> JoinGroupResponse:
    require(ctx, AclOperation.READ, GROUP, req.group_id)
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    fut, reply = runtime.parked()
    result = runtime.coordinator.join_group(
        req,
        api_version=ctx.api_version,
        client_id=ctx.client_id or "",
        client_host="/" + ctx.peer.rpartition(":")[0],
        reply=reply,
    )
    response = runtime.finish(result)
    return response if response is not None else await ctx.parked(fut)
