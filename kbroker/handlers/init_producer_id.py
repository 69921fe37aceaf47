"""InitProducerId (key 22).

Version notes:
- v0-v5 served (aiokafka v0, kafkajs v1, kafka-python/librdkafka v4; Kafka 4.0 advertises 0-5).
- Without a transactional id (idempotent producers): a new producer id with epoch 0, every
  time, as Kafka does; the producer id and epoch in v3+ requests (KIP-360) are not needed
  then, because a fresh id already resets every sequence.
- With a transactional id: the transaction coordinator (``coordinator.txn_coordinator``):
  epoch bump and fencing, KIP-360 recovery (v3+), an ongoing transaction aborted first
  (CONCURRENT_TRANSACTIONS until its markers are written).
- ACLs: a transactional id needs WRITE on it (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); an
  idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
  (Kafka's authorizeByResourceType), else CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, TOPIC, TRANSACTIONAL_ID, allowed, allowed_on_any, require
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.init_producer_id_response import InitProducerIdResponse


@handler(ApiKey.INIT_PRODUCER_ID, 0, 5)
async def handle_init_producer_id(ctx: RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse:
    if req.transactional_id is not None:
        require(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.transactional_id)
        runtime = ctx.broker.transactions
        assert runtime.coordinator is not None
        response = runtime.finish(runtime.coordinator.init_producer_id(req, api_version=ctx.api_version))
        assert response is not None
        return response
    if not (allowed(ctx, AclOperation.IDEMPOTENT_WRITE, CLUSTER) or allowed_on_any(ctx, AclOperation.WRITE, TOPIC)):
        raise KafkaError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    producer_id = ctx.broker.metadata.allocate_producer_id()
    return InitProducerIdResponse(error_code=ErrorCode.NONE, producer_id=producer_id, producer_epoch=0)
