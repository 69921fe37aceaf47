"""EndTxn (key 26).

Version notes:
- v0-v5 served (aiokafka v0, librdkafka/kafkajs v1, kafka-python v3, the Java producer
  from 4.0 v5 once transaction.version 2 is finalized, as it is by default).  v4 only
  allows TRANSACTION_ABORTABLE (KIP-890), which kbroker never sends.  Commit or abort:
  the decision is logged (PrepareCommit/PrepareAbort), markers are written to every
  partition of the transaction, then it completes; the answer comes after all of that.
- v0-v4 (transaction version 0): the epoch stays.  Retrying a completed outcome answers
  NONE; the opposite one INVALID_TXN_STATE.
- v5 (KIP-890 part 2, transaction version 2; ``coordinator.txn_v2``): the epoch is bumped
  at the end of every transaction, the markers carry the bumped epoch, and the answer
  names the producer id and epoch to continue with (a new producer id with epoch 0 when
  the bump reached 32767).  A retry carries the epoch before the bump and is answered
  NONE with the current ids; an abort with no partition added is allowed (Empty,
  CompleteCommit, CompleteAbort: the epoch is bumped, no markers).  Other epochs get
  PRODUCER_FENCED.
- ACLs: WRITE on the transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TRANSACTIONAL_ID, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.end_txn_request import EndTxnRequest
from kbroker.wire.messages.end_txn_response import EndTxnResponse


@handler(ApiKey.END_TXN, 0, 5)
async def handle_end_txn(ctx: RequestContext, req: EndTxnRequest) -> EndTxnResponse:
    require(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, req.transactional_id)
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.end_txn(req, api_version=ctx.api_version))
    assert response is not None
    return response
