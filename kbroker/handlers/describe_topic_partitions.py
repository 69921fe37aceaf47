"""DescribeTopicPartitions (key 75, KIP-966).

Version notes:
- v0 (the only version): Kafka 4.x admin clients (and librdkafka's describe_topics when the
  broker advertises it) describe topics with this instead of Metadata.
- An empty topic list means every topic; names are answered in name order, each name once.
- Pagination: at most ``min(response_partition_limit, max.request.partition.size.limit)``
  partitions (and at least 1) per response.  When a topic is cut, ``next_cursor`` names it and
  the first partition left out; when the limit is used up exactly at a topic's end and more
  topics remain, the cursor names the next topic at partition 0.  A request with a cursor
  starts there: topics before the cursor topic are skipped, and the cursor topic starts at
  the cursor's partition.
- A cursor with a negative partition, or naming a topic not in a non-empty topic list, is
  INVALID_REQUEST, reported on every requested topic (the response has no top-level error).
- A named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION if
  its name is not legal), with a zero topic id; listing every topic reports no such entries.
- A single node: leader, replicas and ISR are this node; the eligible-leader-replica lists
  (ELR, KIP-966) are empty, as Kafka reports them when the ISR is complete.
- topic_authorized_operations: the topic operations the authorizer allows (all without one).
- ACLs: DESCRIBE on each topic; a named topic without it is TOPIC_AUTHORIZATION_FAILED,
  and listing every topic leaves it out.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, allowed, authorized_operations
from kbroker.acl.model import AclOperation
from kbroker.authz import TOPIC_OPERATIONS
from kbroker.cluster_routing import replica_fields
from kbroker.metadata import topic_name_error
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_topic_partitions_request import DescribeTopicPartitionsRequest
from kbroker.wire.messages.describe_topic_partitions_response import (
    Cursor,
    DescribeTopicPartitionsResponse,
    DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
)

# Kafka's max.request.partition.size.limit default: the most partitions one response holds.
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000
INTERNAL_TOPIC_NAMES = frozenset({"__consumer_offsets", "__transaction_state", "__share_group_state"})


def _error_response(req: DescribeTopicPartitionsRequest, error: int) -> DescribeTopicPartitionsResponse:
    return DescribeTopicPartitionsResponse(
        topics=[
            DescribeTopicPartitionsResponseTopic(error_code=error, name=t.name, topic_authorized_operations=TOPIC_OPERATIONS)
            for t in req.topics
        ],
        next_cursor=None,
    )


@handler(ApiKey.DESCRIBE_TOPIC_PARTITIONS, 0, 0)
async def handle_describe_topic_partitions(
    ctx: RequestContext, req: DescribeTopicPartitionsRequest
) -> DescribeTopicPartitionsResponse:
    broker = ctx.broker
    node_id = broker.config.node_id
    fetch_all = not req.topics
    cursor = req.cursor
    cursor_topic = cursor.topic_name if cursor is not None else ""
    requested = {t.name for t in req.topics}
    if cursor is not None and (cursor.partition_index < 0 or (not fetch_all and cursor_topic not in requested)):
        return _error_response(req, ErrorCode.INVALID_REQUEST)
    names = sorted({t.name for t in broker.metadata} if fetch_all else requested)
    names = [n for n in names if n >= cursor_topic]
    if broker.authorizer is not None and fetch_all:
        names = [n for n in names if allowed(ctx, AclOperation.DESCRIBE, TOPIC, n)]
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, req.response_partition_limit), 1)
    resp = DescribeTopicPartitionsResponse(topics=[], next_cursor=None)
    for name in names:
        if remaining == 0:
            resp.next_cursor = Cursor(topic_name=name, partition_index=0)
            break
        if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, name):
            resp.topics.append(
                DescribeTopicPartitionsResponseTopic(
                    error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, name=name, is_internal=name in INTERNAL_TOPIC_NAMES
                )
            )
            continue
        topic = broker.metadata.get(name)
        if topic is None:
            if not fetch_all:
                error = ErrorCode.INVALID_TOPIC_EXCEPTION if topic_name_error(name) else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                resp.topics.append(
                    DescribeTopicPartitionsResponseTopic(
                        error_code=error,
                        name=name,
                        is_internal=name in INTERNAL_TOPIC_NAMES,
                        topic_authorized_operations=authorized_operations(ctx, TOPIC, name, TOPIC_OPERATIONS),
                    )
                )
            continue
        start = cursor.partition_index if cursor is not None and name == cursor_topic else 0
        upper = min(topic.num_partitions, start + remaining)
        partitions = [
            DescribeTopicPartitionsResponsePartition(
                error_code=ErrorCode.NONE,
                partition_index=index,
                leader_id=node_id,
                leader_epoch=topic.leader_epochs[index],
                replica_nodes=[node_id],
                isr_nodes=[node_id],
                eligible_leader_replicas=[],
                last_known_elr=[],
                offline_replicas=[],
            )
            for index in range(start, upper)
        ]
        if broker.cluster is not None:
            for part in partitions:
                leader, replicas, isr, offline = replica_fields(broker.cluster, name, part.partition_index)
                part.leader_id, part.replica_nodes, part.isr_nodes, part.offline_replicas = leader, replicas, isr, offline
        resp.topics.append(
            DescribeTopicPartitionsResponseTopic(
                error_code=ErrorCode.NONE,
                name=name,
                topic_id=topic.topic_id,
                is_internal=topic.is_internal,
                partitions=partitions,
                topic_authorized_operations=authorized_operations(ctx, TOPIC, name, TOPIC_OPERATIONS),
            )
        )
        if upper < topic.num_partitions:
            resp.next_cursor = Cursor(topic_name=name, partition_index=upper)
            break
        remaining -= len(partitions)
    return resp
