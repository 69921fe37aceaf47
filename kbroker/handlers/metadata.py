"""Metadata (key 3).

Version notes:
- v0-v13 served.  kcat sends v4, aiokafka v5, kafkajs v6, librdkafka v10/v13, kafka-python v13.
- v0: an empty topic list means all topics; v1+: null means all, empty means none.
- v1+ controller_id: always this node (admin clients send topic admin to the controller).
- Virtual cluster (``kbroker.cluster``): every live node is listed (any node answers), with
  each partition's replicas, ISR, offline replicas and leader (-1 and LEADER_NOT_AVAILABLE
  while offline); controller_id is the first live node.
- v2+ cluster_id; v7+ leader_epoch (bumped at every start, never lower: librdkafka ignores
  metadata older than it has cached); v10+ topic_id (non-zero, stable across restarts:
  librdkafka uses Fetch v13+ only with one); v10+ requests may name topics by id.
- v4+ allow_auto_topic_creation: a missing topic is created when the request allows it and
  ``auto.create.topics.enable`` is true; it is answered as created at once (Kafka answers
  LEADER_NOT_AVAILABLE first; a single node has its leader immediately).
- v8-10 include_cluster_authorized_operations, v8+ include_topic_authorized_operations:
  the operations the authorizer allows (all of them without one).
- ACLs: all-topics requests list only topics the principal may DESCRIBE; a named topic it
  may not is answered TOPIC_AUTHORIZATION_FAILED (by id too, with a null name).  Auto-creation
  needs CREATE on the cluster or on the topic, else TOPIC_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import uuid

from kbroker.acl.check import CLUSTER, TOPIC, allowed, authorized_operations
from kbroker.acl.model import CLUSTER_NAME, AclOperation
from kbroker.authz import CLUSTER_OPERATIONS, OPERATIONS_OMITTED, TOPIC_OPERATIONS
from kbroker.cluster_routing import broker_list, replica_fields
from kbroker.metadata import TopicMetadata, topic_name_error
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)


def _cluster_partitions(ctx: RequestContext, topic: TopicMetadata) -> list[MetadataResponsePartition]:
    """A virtual cluster's view of the partitions: replicas, ISR, offline replicas; a
    partition without a leader is LEADER_NOT_AVAILABLE, as Kafka answers it."""
    cluster = ctx.broker.cluster
    assert cluster is not None
    out = []
    for index, epoch in enumerate(topic.leader_epochs):
        leader, replicas, isr, offline = replica_fields(cluster, topic.name, index)
        out.append(
            MetadataResponsePartition(
                error_code=ErrorCode.LEADER_NOT_AVAILABLE if leader < 0 else ErrorCode.NONE,
                partition_index=index,
                leader_id=leader,
                leader_epoch=epoch,
                replica_nodes=replicas,
                isr_nodes=isr,
                offline_replicas=offline,
            )
        )
    return out


def describe_topic(ctx: RequestContext, topic: TopicMetadata, with_ops: bool) -> MetadataResponseTopic:
    node_id = ctx.broker.config.node_id
    if ctx.broker.cluster is not None:
        return MetadataResponseTopic(
            error_code=ErrorCode.NONE,
            name=topic.name,
            topic_id=topic.topic_id,
            is_internal=topic.is_internal,
            partitions=_cluster_partitions(ctx, topic),
            topic_authorized_operations=(
                authorized_operations(ctx, TOPIC, topic.name, TOPIC_OPERATIONS) if with_ops else OPERATIONS_OMITTED
            ),
        )
    return MetadataResponseTopic(
        error_code=ErrorCode.NONE,
        name=topic.name,
        topic_id=topic.topic_id,
        is_internal=topic.is_internal,
        partitions=[
            MetadataResponsePartition(
                error_code=ErrorCode.NONE,
                partition_index=index,
                leader_id=node_id,
                leader_epoch=epoch,
                replica_nodes=[node_id],
                isr_nodes=[node_id],
                offline_replicas=[],
            )
            for index, epoch in enumerate(topic.leader_epochs)
        ],
        topic_authorized_operations=(
            authorized_operations(ctx, TOPIC, topic.name, TOPIC_OPERATIONS) if with_ops else OPERATIONS_OMITTED
        ),
    )


_NO_TOPIC_ID = uuid.UUID(int=0)


def _denied(name: str | None, topic_id: uuid.UUID = _NO_TOPIC_ID) -> MetadataResponseTopic:
    return MetadataResponseTopic(error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, name=name, topic_id=topic_id)


def _may_create(ctx: RequestContext, name: str) -> bool:
    """Kafka's auto-creation rule: CREATE on the cluster, or on the topic."""
    return allowed(ctx, AclOperation.CREATE, CLUSTER) or allowed(ctx, AclOperation.CREATE, TOPIC, name)


@handler(ApiKey.METADATA, 0, 13)
async def handle_metadata(ctx: RequestContext, req: MetadataRequest) -> MetadataResponse:
    broker = ctx.broker
    with_ops = ctx.api_version >= 8 and req.include_topic_authorized_operations
    topics: list[MetadataResponseTopic] = []
    if req.topics is None or (ctx.api_version == 0 and not req.topics):
        check = broker.authorizer is not None
        topics = [
            describe_topic(ctx, t, with_ops)
            for t in broker.metadata
            if not check or allowed(ctx, AclOperation.DESCRIBE, TOPIC, t.name)
        ]
    else:
        allow_create = (req.allow_auto_topic_creation if ctx.api_version >= 4 else True) and broker.config.get_bool(
            "auto.create.topics.enable"
        )
        for wanted in req.topics:
            if wanted.name is None:
                topic = broker.metadata.by_id(wanted.topic_id)
                if topic is None:
                    topics.append(
                        MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_ID, name=None, topic_id=wanted.topic_id)
                    )
                    continue
                if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, topic.name):
                    topics.append(_denied(None, wanted.topic_id))
                    continue
            else:
                if not allowed(ctx, AclOperation.DESCRIBE, TOPIC, wanted.name):
                    topics.append(_denied(wanted.name))
                    continue
                topic = broker.metadata.get(wanted.name)
                if topic is None:
                    if topic_name_error(wanted.name):
                        topics.append(MetadataResponseTopic(error_code=ErrorCode.INVALID_TOPIC_EXCEPTION, name=wanted.name))
                        continue
                    if allow_create and not _may_create(ctx, wanted.name):
                        topics.append(_denied(wanted.name))
                        continue
                    if allow_create:
                        topic = broker.topics.auto_create(wanted.name, ctx.now_ms)
                    if topic is None:
                        topics.append(
                            MetadataResponseTopic(error_code=ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name=wanted.name)
                        )
                        continue
            topics.append(describe_topic(ctx, topic, with_ops))
    host, port = broker.config.advertised_for(ctx.session.listener_name)
    brokers = [MetadataResponseBroker(node_id=broker.config.node_id, host=host, port=port, rack=None)]
    controller_id = broker.config.node_id
    if broker.cluster is not None:
        listed = broker_list(broker.cluster, ctx.session.listener_name)
        brokers = [MetadataResponseBroker(node_id=n, host=h, port=p, rack=None) for n, h, p in listed]
        controller_id = listed[0][0] if listed else -1
    return MetadataResponse(
        brokers=brokers,
        cluster_id=broker.metadata.cluster_id,
        controller_id=controller_id,
        topics=topics,
        cluster_authorized_operations=(
            authorized_operations(ctx, CLUSTER, CLUSTER_NAME, CLUSTER_OPERATIONS)
            if 8 <= ctx.api_version <= 10 and req.include_cluster_authorized_operations
            else OPERATIONS_OMITTED
        ),
    )
