"""ShareGroupHeartbeat (key 76): membership of a KIP-932 share group.

Version notes:
- v1 served (the only version in the specs; v0 was Kafka 4.0's early access).  The client
  generates its member id.  Epoch 0 joins, -1 leaves (its records come back at once).
- Share groups are on while the ``share.version`` feature is finalized (Kafka 4.2's default);
  otherwise UNSUPPORTED_VERSION, as Kafka answers.
- Joining, epochs, the simple assignment and the errors are the coordinator's
  (``coordinator.share_group_manager``); this handler only appends its records.
"""

from __future__ import annotations

from kbroker.handlers._share import group_allowed, share_groups_enabled
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest
from kbroker.wire.messages.share_group_heartbeat_response import ShareGroupHeartbeatResponse


@handler(ApiKey.SHARE_GROUP_HEARTBEAT, 1, 1)
async def handle_share_group_heartbeat(
    ctx: RequestContext, req: ShareGroupHeartbeatRequest
) -> ShareGroupHeartbeatResponse:
    if not share_groups_enabled(ctx):
        return ShareGroupHeartbeatResponse(
            error_code=ErrorCode.UNSUPPORTED_VERSION,
            error_message="Share groups are not enabled (share.version).",
        )
    if not group_allowed(ctx, req.group_id):
        return ShareGroupHeartbeatResponse(error_code=ErrorCode.GROUP_AUTHORIZATION_FAILED)
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    result = runtime.coordinator.share_group_heartbeat(
        req, client_id=ctx.client_id or "", client_host="/" + ctx.peer.rpartition(":")[0]
    )
    response = runtime.finish(result)
    assert response is not None
    return response
