"""EndTxn (key 26).

Version notes:
- v0-v4 served (aiokafka v0, librdkafka/kafkajs v1, kafka-python v3).  v4 only allows
  TRANSACTION_ABORTABLE (KIP-890), which kbroker never sends.  v5 (KIP-890 part 2: the
  producer epoch bumped at every transaction end, transaction.version 2) is not served,
  so transaction.version is finalized below 2 (kbroker/emulation.py).  Commit or abort:
  the decision is logged (PrepareCommit/PrepareAbort), markers are written to every
  partition of the transaction, then it completes; the answer comes after all of that.
  Retrying a completed outcome answers NONE; the opposite one INVALID_TXN_STATE.
- ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TRANSACTIONAL_ID, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.end_txn_response import EndTxnResponse


@handler(ApiKey.END_TXN, 0, 4)
async def handle_end_txn(ctx: RequestContext, req: EndTxnRequest) -> EndTxnResponse:
    require(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.transactional_id)
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.end_txn(req, api_version=ctx.api_version))
    assert response is not None
    return response
