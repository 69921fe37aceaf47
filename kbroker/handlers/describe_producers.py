"""DescribeProducers (key 61).

Version notes:
- v0 served (kafka-python admin describe_producers): per partition, the producers the
  log's producer state holds (idempotent and transactional), with their epoch, last
  sequence, last timestamp, coordinator epoch and the start offset of an ongoing
  transaction (-1 if none).
- ACLs: READ on the topic, else TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError
from kbroker.handlers._partitions import find_partition
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_producers_request import DescribeProducersRequest
from kbroker.wire.messages.describe_producers_response import (
    DescribeProducersResponse,
    PartitionResponse,
    ProducerState,
    TopicResponse,
)


def _describe(ctx: RequestContext, name: str, partition: int) -> PartitionResponse:
    out = PartitionResponse(partition_index=partition, error_code=ErrorCode.NONE, error_message=None)
    if not allowed(ctx, AclOperation.READ, TOPIC, name):
        out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return out
    try:
        log = find_partition(ctx, ctx.broker.metadata.get(name), partition)
    except KafkaError as exc:
        out.error_code = exc.code
        return out
    out.active_producers = [
        ProducerState(
            producer_id=p.producer_id,
            producer_epoch=p.producer_epoch,
            last_sequence=p.last_sequence,
            last_timestamp=p.last_timestamp,
            coordinator_epoch=p.coordinator_epoch,
            current_txn_start_offset=p.current_txn_start_offset,
        )
        for p in log.active_producers()
    ]
    return out


@handler(ApiKey.DESCRIBE_PRODUCERS, 0, 0)
async def handle_describe_producers(ctx: RequestContext, req: DescribeProducersRequest) -> DescribeProducersResponse:
    return DescribeProducersResponse(
        topics=[TopicResponse(name=t.name, partitions=[_describe(ctx, t.name, p) for p in t.partition_indexes]) for t in req.topics]
    )
