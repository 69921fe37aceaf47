"""FindCoordinator (key 10).

Version notes:
- v0-v6 served; librdkafka 2.0.2 needs v0 in the advertised range to look up coordinators
  at all; aiokafka sends v1, librdkafka/kafkajs v2, kafka-python v6.
- key_type 0 (group) and 1 (transaction): this node coordinates everything.  A group
  lookup creates ``__consumer_offsets`` if it does not exist yet, as Kafka does.
- v4+ batch: ``coordinator_keys``, one answer each; v0-3 a single ``key``.
- Other key types: INVALID_REQUEST.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from wire.api import ApiKey
from wire.errors import ErrorCode
from wire.messages.find_coordinator_request import FindCoordinatorRequest
from wire.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse

KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION = 0, 1


@handler(ApiKey.FIND_COORDINATOR, 0, 6)
async def handle_find_coordinator(ctx: RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse:
    broker = ctx.broker
    host, port = broker.config.advertised
    node_id = broker.config.node_id
    key_type = req.key_type if ctx.api_version >= 1 else KEY_TYPE_GROUP
    if key_type not in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        code, message, node_id, host, port = ErrorCode.INVALID_REQUEST, f"Unknown key type {key_type}", -1, "", -1
    else:
        code, message = ErrorCode.NONE, None
        if key_type == KEY_TYPE_GROUP:
            broker.groups.ensure_offsets_topic()
    if ctx.api_version >= 4:
        return FindCoordinatorResponse(
            coordinators=[
                Coordinator(key=key, node_id=node_id, host=host, port=port, error_code=code, error_message=message)
                for key in req.coordinator_keys
            ]
        )
    return FindCoordinatorResponse(error_code=code, error_message=message, node_id=node_id, host=host, port=port)
