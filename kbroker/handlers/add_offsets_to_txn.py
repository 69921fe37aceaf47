"""AddOffsetsToTxn (key 25).

Version notes:
- v0-v4 served (aiokafka/librdkafka v0, kafkajs v1, kafka-python v3): adds the group's
  __consumer_offsets partition to the transaction, so TxnOffsetCommit may follow.
- ACLs: WRITE on the transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the
  group (GROUP_AUTHORIZATION_FAILED).
- v4 only allows TRANSACTION_ABORTABLE (KIP-890), which kbroker never sends.
"""

from __future__ import annotations

from kbroker.acl.check import GROUP, TRANSACTIONAL_ID, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from kbroker.wire.messages.add_offsets_to_txn_response import AddOffsetsToTxnResponse


@handler(ApiKey.ADD_OFFSETS_TO_TXN, 0, 4)
async def handle_add_offsets_to_txn(ctx: RequestContext, req: AddOffsetsToTxnRequest) -> AddOffsetsToTxnResponse:
    require(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.transactional_id)
    require(ctx, AclOperation.READ, GROUP, req.group_id)
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.add_offsets_to_txn(req, api_version=ctx.api_version))
    assert response is not None
    return response
