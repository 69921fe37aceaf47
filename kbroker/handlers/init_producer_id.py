"""InitProducerId (key 22).

Version notes:
- v0-v5 served (aiokafka v0, kafkajs v1, kafka-python/librdkafka v4; Kafka 4.0 advertises 0-5).
- Without a transactional id (idempotent producers): a new producer id with epoch 0, every
  time, as Kafka does; the producer id and epoch in v3+ requests (KIP-360) are not needed
  then, because a fresh id already resets every sequence.
- With a transactional id: the transaction coordinator (``coordinator.txn_coordinator``):
  epoch bump and fencing, KIP-360 recovery (v3+), an ongoing transaction aborted first
  (CONCURRENT_TRANSACTIONS until its markers are written).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.init_producer_id_response import InitProducerIdResponse


@handler(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def handle_init_producer_id(ctx: RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        runtime = ctx.broker.transactions
        assert runtime.coordinator is not None
        response = runtime.finish(runtime.coordinator.init_producer_id(req, api_version=ctx.api_version))
        assert response is not None
        return response
    producer_id = ctx.broker.metadata.allocate_producer_id()
    return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)
