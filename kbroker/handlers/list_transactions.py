"""ListTransactions (key 66).

Version notes:
- v0-v1 served (Kafka 4.0's range): state and producer-id filters; v1 adds the duration
  filter (transactions running longer than it).
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest
from kbroker.wire.messages.list_transactions_response import ListTransactionsResponse


@handler(ApiKey.LIST_TRANSACTIONS, 0, 1)
async def handle_list_transactions(ctx: RequestContext, req: ListTransactionsRequest) -> ListTransactionsResponse:
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.list_transactions(req, api_version=ctx.api_version))
    assert response is not None
    return response
