"""InitProducerId (key 22).

Version notes:
- v0-v5 served (aiokafka v0, kafkajs v1, kafka-python/librdkafka v4; Kafka 4.0 advertises 0-5).
- Without a transactional id (idempotent producers): a new producer id with epoch 0, every
  time, as Kafka does; the producer id and epoch in v3+ requests (KIP-360) are not needed
  then, because a fresh id already resets every sequence.
- With a transactional id: the transaction coordinator's job.  kbroker has none yet, so it
  answers COORDINATOR_NOT_AVAILABLE (transactions are a later capability).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from wire.api import ApiKey
from wire.errors import ErrorCode
from wire.messages.init_producer_id_request import InitProducerIdRequest
from wire.messages.init_producer_id_response import InitProducerIdResponse


@handler(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def handle_init_producer_id(ctx: RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        return InitProducerIdResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE, producer_id=-1, producer_epoch=-1)
    producer_id = ctx.broker.metadata.allocate_producer_id()
    return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)
