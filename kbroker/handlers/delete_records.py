"""DeleteRecords (key 21).

Version notes:
- v0-v2 served (librdkafka 2.0.2 / kafkajs v1, the others v2).
- offset -1 means the high watermark; an offset beyond the high watermark is
  OFFSET_OUT_OF_RANGE.  The new log start offset (low watermark) is answered; whole
  segments below it are removed by the log's retention pass.
- ACLs: DELETE on the topic, else TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError, log_error_code
from kbroker.handlers._partitions import find_partition
from kbroker.log.errors import LogError
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.delete_records_request import (
    DeleteRecordsPartition,
    DeleteRecordsRequest,
)
from kbroker.wire.messages.delete_records_response import (
    DeleteRecordsPartitionResult,
    DeleteRecordsResponse,
    DeleteRecordsTopicResult,
)

HIGH_WATERMARK = -1


def _delete(ctx: RequestContext, name: str, p: DeleteRecordsPartition) -> DeleteRecordsPartitionResult:
    out = DeleteRecordsPartitionResult(partition_index=p.partition_index, low_watermark=-1, error_code=ErrorCode.NONE)
    if not allowed(ctx, AclOperation.DELETE, TOPIC, name):
        out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return out
    try:
        log = find_partition(ctx, ctx.broker.metadata.get(name), p.partition_index)
    except KafkaError as exc:
        out.error_code = exc.code
        return out
    offset = log.high_watermark if p.offset == HIGH_WATERMARK else p.offset
    if offset < 0 or offset > log.high_watermark:
        out.error_code = ErrorCode.OFFSET_OUT_OF_RANGE
        return out
    try:
        assert ctx.broker.topics.logs is not None
        out.low_watermark = ctx.broker.topics.logs.delete_records(name, p.partition_index, offset)
    except LogError as exc:
        out.error_code = log_error_code(exc)
    return out


@handler(ApiKey.DELETE_RECORDS, 0, 2)
async def handle_delete_records(ctx: RequestContext, req: DeleteRecordsRequest) -> DeleteRecordsResponse:
    return DeleteRecordsResponse(
        topics=[
            DeleteRecordsTopicResult(name=t.name, partitions=[_delete(ctx, t.name, p) for p in t.partitions])
            for t in req.topics
        ]
    )
