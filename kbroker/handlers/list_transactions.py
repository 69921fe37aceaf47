"""ListTransactions (key 66).

Version notes:
- v0-v2 served (Kafka 4.2's range): state and producer-id filters; v1 adds the duration
  filter (transactions running longer than it); v2 the transactional id pattern (a Java
  regular expression matched against the whole id, KIP-1152; Python's re here, and an
  invalid one is INVALID_REGULAR_EXPRESSION).
- ACLs: only the transactional ids the principal may DESCRIBE are listed.
"""

from __future__ import annotations

from kbroker.acl.check import TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest
from kbroker.wire.messages.list_transactions_response import ListTransactionsResponse


@handler(ApiKey.LIST_TRANSACTIONS, 0, 2)
async def handle_list_transactions(ctx: RequestContext, req: ListTransactionsRequest) -> ListTransactionsResponse:
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.list_transactions(req, api_version=ctx.api_version))
    assert response is not None
    if ctx.broker.authorizer is not None:
        response.transaction_states = [
            s for s in response.transaction_states if allowed(ctx, AclOperation.DESCRIBE, TRANSACTIONAL_ID, s.transactional_id)
        ]
    return response
