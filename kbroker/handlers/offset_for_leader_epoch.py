"""OffsetForLeaderEpoch (key 23).

Version notes:
- v2-v4 served (librdkafka sends exactly v2, kafka-python up to v4).
- For a requested leader epoch, the end offset of that epoch: the start offset of the next
  larger epoch in the partition's leader-epoch cache, or the log end offset for the current
  epoch; an epoch older than any known answers the earliest epoch at or after it; unknown
  (newer than ours) answers -1/-1.
- current_leader_epoch fencing (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
- ACLs: DESCRIBE on the topic, else TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError
from kbroker.handlers._partitions import find_partition
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
)
from kbroker.wire.messages.offset_for_leader_epoch_response import (
    EpochEndOffset,
    OffsetForLeaderEpochResponse,
    OffsetForLeaderTopicResult,
)


def _end_offset(ctx: RequestContext, name: str, p: OffsetForLeaderPartition) -> EpochEndOffset:
    out = EpochEndOffset(error_code=ErrorCode.NONE, partition=p.partition, leader_epoch=-1, end_offset=-1)
    if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
        out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return out
    topic = ctx.broker.metadata.get(name)
    try:
        log = find_partition(ctx, topic, p.partition, p.current_leader_epoch)
    except KafkaError as exc:
        out.error_code = exc.code
        return out
    found = log.end_offset_for_epoch(p.leader_epoch)
    out.leader_epoch, out.end_offset = found.leader_epoch, found.end_offset
    return out


@handler(ApiKey.OFFSET_FOR_LEADER_EPOCH, 2, 4)
async def handle_offset_for_leader_epoch(ctx: RequestContext, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse:
    return OffsetForLeaderEpochResponse(
        topics=[
            OffsetForLeaderTopicResult(topic=t.topic, partitions=[_end_offset(ctx, t.topic, p) for p in t.partitions])
            for t in req.topics
        ]
    )
