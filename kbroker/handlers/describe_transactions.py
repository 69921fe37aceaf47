"""DescribeTransactions (key 65).

Version notes:
- v0 served (kafka-python admin): state, timeout, start time, producer id/epoch and the
  partitions of each transactional id; unknown ids TRANSACTIONAL_ID_NOT_FOUND.
- ACLs: DESCRIBE on each transactional id, else TRANSACTIONAL_ID_AUTHORIZATION_FAILED for it.
"""

from __future__ import annotations

from kbroker.acl.check import TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_transactions_request import DescribeTransactionsRequest
from kbroker.wire.messages.describe_transactions_response import (
    DescribeTransactionsResponse,
    TransactionState,
)


@handler(ApiKey.DESCRIBE_TRANSACTIONS, 0, 0)
async def handle_describe_transactions(ctx: RequestContext, req: DescribeTransactionsRequest) -> DescribeTransactionsResponse:
    runtime = ctx.broker.transactions
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.describe_transactions(req, api_version=ctx.api_version))
    assert response is not None
    if ctx.broker.authorizer is not None:
        response.transaction_states = [
            s if allowed(ctx, AclOperation.DESCRIBE, TRANSACTIONAL_ID, s.transactional_id)
            else TransactionState(transactional_id=s.transactional_id, error_code=ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
            for s in response.transaction_states
        ]
    return response
