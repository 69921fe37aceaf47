"""Helpers the partition-oriented handlers share: finding a partition's log, epoch fencing."""

from __future__ import annotations

from kbroker.errors import KafkaError
from kbroker.log import PartitionLog
from kbroker.metadata import TopicMetadata
from kbroker.registry import RequestContext
from kbroker.wire.errors import ErrorCode


def find_partition(
    ctx: RequestContext, topic: TopicMetadata | None, partition: int, current_leader_epoch: int = -1
) -> PartitionLog:
    """The log of ``topic``/``partition``, or KafkaError: UNKNOWN_TOPIC_OR_PARTITION, or the
    leader-epoch fencing errors of :func:`check_leader_epoch`."""
    if topic is None or not 0 <= partition < topic.num_partitions:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    broker = ctx.broker
    log = broker.topics.log(topic.name, partition)
    if log is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    check_leader_epoch(topic, partition, current_leader_epoch)
    if broker.cluster is not None:  # a virtual cluster: only the leader serves it
        broker.cluster.check_leader(ctx.node_id, topic.name, partition)
    return log


def check_leader_epoch(topic: TopicMetadata, partition: int, current_leader_epoch: int) -> None:
    """KIP-320 fencing: a client's epoch newer than ours is UNKNOWN_LEADER_EPOCH, older FENCED_LEADER_EPOCH."""
    if current_leader_epoch < 0:
        return
    ours = topic.leader_epochs[partition]
    if current_leader_epoch > ours:
        raise KafkaError(ErrorCode.UNKNOWN_LEADER_EPOCH)
    if current_leader_epoch < ours:
        raise KafkaError(ErrorCode.FENCED_LEADER_EPOCH)
