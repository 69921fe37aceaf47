"""DescribeTransactions and ListTransactions over the coordinator's metadata (read-only)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from kbroker.coordinator.txn_state import TransactionMetadata, TransactionState
from kbroker.wire.errors import ErrorCode as E
from kbroker.wire.messages.describe_transactions_request import DescribeTransactionsRequest
from kbroker.wire.messages.describe_transactions_response import (
    DescribeTransactionsResponse,
    TopicData,
)
from kbroker.wire.messages.describe_transactions_response import (
    TransactionState as DescribedTransaction,
)
from kbroker.wire.messages.list_transactions_request import ListTransactionsRequest
from kbroker.wire.messages.list_transactions_response import ListTransactionsResponse
from kbroker.wire.messages.list_transactions_response import TransactionState as ListedTransaction

__all__ = ["describe_transactions", "list_transactions"]


def describe_transactions(
    transactions: Mapping[str, TransactionMetadata], request: DescribeTransactionsRequest
) -> DescribeTransactionsResponse:
    response = DescribeTransactionsResponse()
    for txn_id in request.transactional_ids:
        described = DescribedTransaction(transactional_id=txn_id)
        meta = transactions.get(txn_id)
        if not txn_id:
            described.error_code = E.INVALID_REQUEST
        elif meta is None:
            described.error_code = E.TRANSACTIONAL_ID_NOT_FOUND
        else:
            by_topic: dict[str, list[int]] = {}
            for tp in sorted(meta.partitions):
                by_topic.setdefault(tp.topic, []).append(tp.partition)
            described.topics = [TopicData(topic=t, partitions=ps) for t, ps in by_topic.items()]
            described.producer_id = meta.producer_id
            described.producer_epoch = meta.producer_epoch
            described.transaction_state = str(meta.state)
            described.transaction_timeout_ms = meta.txn_timeout_ms
            described.transaction_start_time_ms = meta.txn_start_timestamp_ms
        response.transaction_states.append(described)
    return response


def list_transactions(
    transactions: Mapping[str, TransactionMetadata],
    request: ListTransactionsRequest,
    api_version: int,
    now_ms: int,
) -> ListTransactionsResponse:
    """State and producer-id filters; v1 duration filter; v2 id pattern (full match)."""
    response = ListTransactionsResponse()
    states: set[TransactionState] = set()
    for name in request.state_filters:
        state = TransactionState.from_name(name)
        if state is None:
            response.unknown_state_filters.append(name)
        else:
            states.add(state)
    pattern: re.Pattern[str] | None = None
    if api_version >= 2 and request.transactional_id_pattern:
        try:
            pattern = re.compile(request.transactional_id_pattern)
        except re.error:
            response.error_code = E.INVALID_REGULAR_EXPRESSION
            return response
    producer_ids = set(request.producer_id_filters)
    duration_ms = request.duration_filter if api_version >= 1 else -1
    for txn_id in sorted(transactions):
        meta = transactions[txn_id]
        if producer_ids and meta.producer_id not in producer_ids:
            continue
        if request.state_filters and meta.state not in states:
            continue
        if duration_ms >= 0 and now_ms - meta.txn_start_timestamp_ms <= duration_ms:
            continue
        if pattern is not None and pattern.fullmatch(txn_id) is None:
            continue
        response.transaction_states.append(
            ListedTransaction(
                transactional_id=txn_id,
                producer_id=meta.producer_id,
                transaction_state=str(meta.state),
            )
        )
    return response
