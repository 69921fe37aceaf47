"""ConsumerGroupHeartbeat (key 68): the KIP-848 consumer group protocol.

Version notes:
- v0-v1 served (every version in the specs; librdkafka 2.x with ``group.protocol=consumer``).
  v0: the coordinator generates the member id when the first heartbeat has none.
  v1: the client generates it (an empty one is INVALID_REQUEST) and may subscribe with
  ``SubscribedTopicRegex`` (RE2, evaluated by the coordinator).
- Joining, reconciliation, leaving and the errors are the coordinator's
  (``coordinator.consumer_group_manager``); this handler only appends its records.
- A joining heartbeat to a live classic group upgrades it online when
  ``group.consumer.migration.policy`` allows (``coordinator.migration``).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from kbroker.wire.messages.consumer_group_heartbeat_response import ConsumerGroupHeartbeatResponse


@handler(ApiKey.CONSUMER_GROUP_HEARTBEAT, 0, 1)
async def handle_consumer_group_heartbeat(
    ctx: RequestContext, req: ConsumerGroupHeartbeatRequest
) -> ConsumerGroupHeartbeatResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    result = runtime.coordinator.consumer_group_heartbeat(
        req,
        api_version=ctx.api_version,
        client_id=ctx.client_id or "",
        client_host="/" + ctx.peer.rpartition(":")[0],
    )
    response = runtime.finish(result)
    assert response is not None
    return response
