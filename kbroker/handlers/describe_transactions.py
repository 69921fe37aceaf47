"""DescribeTransactions (key 65).

Version notes:
- v0 served (kafka-python admin): state, timeout, start time, producer id/epoch and the
  partitions of each transactional id; unknown ids TRANSACTIONAL_ID_NOT_FOUND.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.describe_transactions_request import DescribeTransactionsRequest
from kbroker.wire.messages.describe_transactions_response import DescribeTransactionsResponse


@handler(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0)
async def handle_describe_transactions(ctx: RequestContext, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.describe_transactions(req, api_version=ctx.api_version))
    assert response is not None
    return response
