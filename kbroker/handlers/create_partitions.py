"""CreatePartitions (key 37).

Version notes:
- v0-v3 served (librdkafka 2.0.2 v0, aiokafka/kafkajs v1, librdkafka 2.16 v2, kafka-python v3).
- count is the new total; it must exceed the current count (INVALID_PARTITIONS otherwise).
- assignments, when given, must name this node only (INVALID_REPLICA_ASSIGNMENT).
- validate_only checks and changes nothing.
- ACLs: ALTER on the topic, else TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import TOPIC, require
from kbroker.acl.model import AclOperation
from kbroker.errors import KafkaError
from kbroker.metadata import INTERNAL_TOPICS
from kbroker.registry import RequestContext, handler
from kbroker.topics import MAX_PARTITIONS_PER_TOPIC
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_partitions_request import (
    CreatePartitionsRequest,
    CreatePartitionsTopic,
)
from kbroker.wire.messages.create_partitions_response import (
    CreatePartitionsResponse,
    CreatePartitionsTopicResult,
)


def _grow(ctx: RequestContext, t: CreatePartitionsTopic, validate_only: bool) -> None:
    require(ctx, AclOperation.ALTER, TOPIC, t.name)
    topic = ctx.broker.metadata.get(t.name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"The topic '{t.name}' does not exist.")
    if topic.name in INTERNAL_TOPICS:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Cannot add partitions to internal topic {t.name}.")
    if t.count <= topic.num_partitions:
        raise KafkaError(
            ErrorCode.INVALID_PARTITIONS,
            f"Topic currently has {topic.num_partitions} partitions, which is higher than the requested {t.count}.",
        )
    if t.count > MAX_PARTITIONS_PER_TOPIC:
        raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"At most {MAX_PARTITIONS_PER_TOPIC} partitions per topic.")
    if t.assignments is not None:
        node_id = ctx.broker.config.node_id
        if len(t.assignments) != t.count - topic.num_partitions or any(a.broker_ids != [node_id] for a in t.assignments):
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Each new partition must be assigned to broker {node_id} only.")
    if not validate_only:
        ctx.broker.topics.create_partitions(t.name, t.count, ctx.now_ms)


@handler(ApiKey.CREATE_PARTITIONS, 0, 3)
async def handle_create_partitions(ctx: RequestContext, req: CreatePartitionsRequest) -> CreatePartitionsResponse:
    results = []
    for t in req.topics:
        result = CreatePartitionsTopicResult(name=t.name, error_code=ErrorCode.NONE, error_message=None)
        try:
            _grow(ctx, t, req.validate_only)
        except KafkaError as exc:
            result.error_code, result.error_message = exc.code, exc.message
        results.append(result)
    return CreatePartitionsResponse(results=results)
