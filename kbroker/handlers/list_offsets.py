"""ListOffsets (key 2).

Version notes:
- v1-v11 served (kcat v2, aiokafka/kafkajs v3, librdkafka 2.16 v7, kafka-python v10 here;
  Kafka 4.2 advertises 1-11, and kafka-python reads ListOffsets 11 as "Kafka 4.2").
- Special timestamps: -2 earliest (log start offset), -1 latest (high watermark, or the last
  stable offset for read_committed, v2+), -3 max timestamp (v7+: the offset of the record
  with the largest timestamp), -4 earliest local (v8+: same as earliest, no tiered storage),
  -5 latest tiered (v9+, KIP-1005) and -6 earliest pending upload (v11+, KIP-1023): no
  tiered storage, so offset -1, timestamp -1, leader epoch -1, as Kafka answers for a
  topic without remote storage.
- Any other timestamp: the first offset whose timestamp is >= it (time index), or -1/-1.
- v4+ leader_epoch of the answer and current_leader_epoch fencing.
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
from kbroker.wire.messages.list_offsets_request import ListOffsetsPartition, ListOffsetsRequest
from kbroker.wire.messages.list_offsets_response import (
    ListOffsetsPartitionResponse,
    ListOffsetsResponse,
    ListOffsetsTopicResponse,
)

LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED, EARLIEST_PENDING_UPLOAD = -1, -2, -3, -4, -5, -6
READ_COMMITTED = 1


def _lookup(ctx: RequestContext, name: str, p: ListOffsetsPartition, read_committed: bool) -> ListOffsetsPartitionResponse:
    out = ListOffsetsPartitionResponse(partition_index=p.partition_index, error_code=ErrorCode.NONE, timestamp=-1, offset=-1)
    if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
        out.error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        return out
    topic = ctx.broker.metadata.get(name)
    try:
        log = find_partition(ctx, topic, p.partition_index, p.current_leader_epoch)
    except KafkaError as exc:
        out.error_code = exc.code
        return out
    assert topic is not None  # find_partition found it
    epoch = topic.leader_epochs[p.partition_index]
    ts = p.timestamp
    if ts in (EARLIEST, EARLIEST_LOCAL):
        out.offset = log.log_start_offset
    elif ts == LATEST:
        out.offset = log.last_stable_offset if read_committed else log.high_watermark
    elif ts in (LATEST_TIERED, EARLIEST_PENDING_UPLOAD):
        return out
    elif ts == MAX_TIMESTAMP:
        found = log.offset_for_timestamp(MAX_TIMESTAMP)
        if found is not None:
            out.timestamp, out.offset = found.timestamp, found.offset
            epoch = found.leader_epoch if found.leader_epoch >= 0 else epoch
    elif ts < 0:
        out.error_code = ErrorCode.INVALID_REQUEST
        return out
    else:
        found = log.offset_for_timestamp(ts)
        if found is None:
            return out
        out.timestamp, out.offset = found.timestamp, found.offset
        epoch = found.leader_epoch if found.leader_epoch >= 0 else epoch
    if ctx.api_version >= 4:
        out.leader_epoch = epoch
    return out


@handler(ApiKey.LIST_OFFSETS, 1, 11)
async def handle_list_offsets(ctx: RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse:
    read_committed = ctx.api_version >= 2 and req.isolation_level == READ_COMMITTED
    return ListOffsetsResponse(
        topics=[
            ListOffsetsTopicResponse(name=t.name, partitions=[_lookup(ctx, t.name, p, read_committed) for p in t.partitions])
            for t in req.topics
        ]
    )
