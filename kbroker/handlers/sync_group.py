"""SyncGroup (key 14).

Version notes:
- v0-v5 served (aiokafka v3, librdkafka/kafkajs v3, kafka-python v5).  Followers are
  parked until the leader's assignment arrives (or the rebalance fails); v5 carries
  protocol type/name, checked against the group's.
- ACLs: READ on the group, else GROUP_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.sync_group_request import SyncGroupRequest
from kbroker.wire.messages.sync_group_response import SyncGroupResponse


@handler(ApiKey.SYNC_GROUP, 0, 5)
async def handle_sync_group(ctx: RequestContext, req: SyncGroupRequest) -> SyncGroupResponse:
    require(ctx, AclOperation.READ, GROUP, req.group_id)
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    fut, reply = runtime.parked()
    response = runtime.finish(runtime.coordinator.sync_group(req, api_version=ctx.api_version, reply=reply))
    return response if response is not None else await ctx.parked(fut)
