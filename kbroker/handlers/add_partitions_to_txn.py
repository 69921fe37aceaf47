"""AddPartitionsToTxn (key 24).

Version notes:
- v0-v5 served (aiokafka/librdkafka v0, kafkajs v1, kafka-python v3).  v4+ are the
  batched form of KIP-890 part 1 that Kafka brokers send their coordinator: several
  transactions per request, each answered in results_by_transaction; verify_only asks
  whether the partitions are already in the ongoing transaction without adding them.
  kafka-python reads v4 as "Kafka 3.6".  v5 only allows TRANSACTION_ABORTABLE, which
  kbroker never sends.
- PRODUCER_FENCED from v2 (INVALID_PRODUCER_EPOCH before), CONCURRENT_TRANSACTIONS while a
  previous transaction's markers are pending, UNKNOWN_TOPIC_OR_PARTITION for partitions that
  do not exist (the others then get OPERATION_NOT_ATTEMPTED).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest
from kbroker.wire.messages.add_partitions_to_txn_response import AddPartitionsToTxnResponse


@handler(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5)
async def handle_add_partitions_to_txn(ctx: RequestContext, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.add_partitions_to_txn(req, api_version=ctx.api_version))
    assert response is not None
    return response
