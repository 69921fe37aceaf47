"""CreateTopics (key 19).

Version notes:
- v2-v7 served (aiokafka sends v3, librdkafka v4, kafka-python v7, kafkajs v3).
- v1+ validate_only: every check runs, nothing is created.
- v5+ the result carries the partitions, replication factor and configs the topic got
  (all sources: topic overrides and broker defaults).
- v7+ the result carries the new topic id.
- Replication factor 1 or -1 (the default, 1); more is INVALID_REPLICATION_FACTOR, as a
  one-broker Kafka cluster answers.  Manual assignments must name this node only.
- Durability: the request's topics are made durable together (one data-dir fsync, one
  metadata save) before the answer; a failure there answers nothing and keeps none of them.
- ACLs: CREATE on the cluster or on the topic, else TOPIC_AUTHORIZATION_FAILED; v5+ configs
  need DESCRIBE_CONFIGS on the topic, else topic_config_error_code TOPIC_AUTHORIZATION_FAILED
  and no configs (as Kafka).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from kbroker.acl.check import CLUSTER, TOPIC, allowed
from kbroker.acl.model import AclOperation
from kbroker.config import TOPIC_CONFIGS, ConfigSource
from kbroker.errors import KafkaError
from kbroker.metadata import INTERNAL_TOPICS
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.create_topics_response import (
    CreatableTopicConfigs,
    CreatableTopicResult,
    CreateTopicsResponse,
)

if TYPE_CHECKING:
    from kbroker.server import Broker


def _check_assignments(ctx: RequestContext, topic: CreatableTopic) -> int | None:
    """Partition count implied by manual assignments, or None when there are none."""
    if not topic.assignments:
        return None
    if topic.num_partitions != -1 or topic.replication_factor != -1:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Both numPartitions or replicationFactor and replicasAssignments were set.")
    indexes = sorted(a.partition_index for a in topic.assignments)
    if indexes != list(range(len(indexes))):
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, "Partitions must be numbered from 0 without gaps.")
    node_id = ctx.broker.config.node_id
    for a in topic.assignments:
        if a.broker_ids != [node_id]:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT, f"Only broker {node_id} exists; got {a.broker_ids}.")
    return len(indexes)


def _create_one(ctx: RequestContext, topic: CreatableTopic, validate_only: bool) -> CreatableTopicResult:
    broker = ctx.broker
    if topic.name in INTERNAL_TOPICS:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Creation of internal topic {topic.name} is prohibited.")
    if not (allowed(ctx, AclOperation.CREATE, CLUSTER) or allowed(ctx, AclOperation.CREATE, TOPIC, topic.name)):
        raise KafkaError(ErrorCode.TOPIC_AUTHORIZATION_FAILED, "Authorization failed.")
    configs = {c.name: c.value for c in topic.configs}
    assigned = _check_assignments(ctx, topic)
    num_partitions = broker.topics.check_new_topic(
        topic.name, assigned if assigned is not None else topic.num_partitions, topic.replication_factor, configs
    )
    overrides = {k: v for k, v in configs.items() if v is not None}
    replication_factor = broker.topics.replication_factor_for(topic.name, topic.replication_factor)
    result = CreatableTopicResult(
        name=topic.name,
        error_code=ErrorCode.NONE,
        error_message=None,
        num_partitions=num_partitions,
        replication_factor=replication_factor,
    )
    if not validate_only:
        created = broker.topics.create_topic(topic.name, num_partitions, overrides, ctx.now_ms, replication_factor)
        result.topic_id = created.topic_id
    effective = broker.topics.topic_defaults()
    effective.update(overrides)
    result.configs = [
        CreatableTopicConfigs(
            name=name,
            value=value,
            read_only=False,
            config_source=ConfigSource.TOPIC_CONFIG if name in overrides else _default_source(broker, TOPIC_CONFIGS[name][0] or name),
            is_sensitive=False,
        )
        for name, value in sorted(effective.items())
    ]
    if not allowed(ctx, AclOperation.DESCRIBE_CONFIGS, TOPIC, topic.name):
        result.topic_config_error_code = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        result.configs = []
    return result


def _default_source(broker: Broker, synonym: str) -> ConfigSource:
    """Where a topic's default value comes from: a dynamic broker config, else the static one."""
    dynamic = broker.topics.dynamic.lookup(synonym) if broker.topics.dynamic is not None else None
    return dynamic[1] if dynamic is not None else broker.config.source_of(synonym)


@handler(ApiKey.CREATE_TOPICS, 2, 7)
async def handle_create_topics(ctx: RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse:
    results = []
    counts = Counter(t.name for t in req.topics)
    duplicates = {name for name, n in counts.items() if n > 1}
    # One fsync of the data dir and one metadata save for the whole request, before it is
    # answered (kbroker.topics.TopicManager.creating_many).
    with ctx.broker.topics.creating_many():
        for topic in req.topics:
            if topic.name in duplicates:
                results.append(CreatableTopicResult(name=topic.name, error_code=ErrorCode.INVALID_REQUEST, error_message="Duplicate topic name.", configs=None))
                continue
            try:
                results.append(_create_one(ctx, topic, req.validate_only))
            except KafkaError as exc:
                results.append(CreatableTopicResult(name=topic.name, error_code=exc.code, error_message=exc.message, configs=None))
    return CreateTopicsResponse(topics=results)
