"""FindCoordinator (key 10).

Version notes:
- v0-v6 served; librdkafka 2.0.2 needs v0 in the advertised range to look up coordinators
  at all; aiokafka sends v1, librdkafka/kafkajs v2, kafka-python v6.
- key_type 0 (group) and 1 (transaction): this node coordinates everything.  A group
  lookup creates ``__consumer_offsets`` if it does not exist yet, as Kafka does.
- v4+ batch: ``coordinator_keys``, one answer each; v0-3 a single ``key``.
- Other key types (share groups, v6): INVALID_REQUEST.
"""

from __future__ import annotations

from kbroker.coordinator.find_coordinator import GROUP_KEY_TYPE, find_coordinator
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.find_coordinator_response import FindCoordinatorResponse


@handler(ApiKey.FIND_COORDINATOR, 0, 6)
async def handle_find_coordinator(ctx: RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    broker = ctx.broker
    if ctx.api_version == 0 or req.key_type == GROUP_KEY_TYPE:
        broker.groups.ensure_offsets_topic()
    host, port = broker.config.advertised_for(ctx.session.listener_name)
    return find_coordinator(req, api_version=ctx.api_version, node_id=broker.config.node_id, host=host, port=port)
