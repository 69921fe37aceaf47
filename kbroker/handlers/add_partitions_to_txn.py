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
- ACLs: WRITE on the transactional id (else every partition TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
  and on each topic (else TOPIC_AUTHORIZATION_FAILED, and OPERATION_NOT_ATTEMPTED for the
  others: nothing is added, as Kafka).
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.add_partitions_to_txn_request import AddPartitionsToTxnRequest
from kbroker.wire.messages.add_partitions_to_txn_response import (
    AddPartitionsToTxnPartitionResult,
    AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopicResult,
)


def _refused(ctx: RequestContext, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse | None:
    topics = req.v3_and_below_topics
    whole = None
    if not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.v3_and_below_transactional_id):
        whole = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    denied = {t.name for t in topics if not allowed(ctx, AclOperation.WRITE, TOPIC, t.name)}
    if whole is None and not denied:
        return None

    def code(name: str) -> ErrorCode:
        if whole is not None:
            return whole
        return ErrorCode.TOPIC_AUTHORIZATION_FAILED if name in denied else ErrorCode.OPERATION_NOT_ATTEMPTED

    return AddPartitionsToTxnResponse(
        results_by_topic_v3_and_below=[
            AddPartitionsToTxnTopicResult(
                name=t.name,
                results_by_partition=[AddPartitionsToTxnPartitionResult(partition_index=p, partition_error_code=code(t.name)) for p in t.partitions],
            )
            for t in topics
        ]
    )


@handler(ApiKey.ADD_PARTITIONS_TO_TXN, 0, 5)
async def handle_add_partitions_to_txn(ctx: RequestContext, req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse:
    if ctx.broker.authorizer is not None:
        refused = _refused(ctx, req)
        if refused is not None:
            return refused
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.add_partitions_to_txn(req, api_version=ctx.api_version))
    assert response is not None
    return response
