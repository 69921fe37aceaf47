"""AlterPartitionReassignments (key 45, KIP-455).

Version notes:
- v0-v1 served (Kafka 4.1's range); v1 adds allow_replication_factor_change (KIP-860).
- A single node can only hold a partition on itself: replicas ``[node_id]`` is accepted and is
  a no-op (nothing moves, nothing is left in progress).  Any other set is
  INVALID_REPLICA_ASSIGNMENT with Kafka's reason: an empty list, a broker named twice, a
  broker that is not registered, or (v1 with allow_replication_factor_change false) a
  replication factor other than the current 1.
- replicas null cancels a reassignment; none is ever in progress, so it is
  NO_REASSIGNMENT_IN_PROGRESS, as Kafka answers.
- A partition of a missing topic, or an index out of range, is UNKNOWN_TOPIC_OR_PARTITION.
- ACLs: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_partition_reassignments_request import (
    AlterPartitionReassignmentsRequest,
)
from kbroker.wire.messages.alter_partition_reassignments_response import (
    AlterPartitionReassignmentsResponse,
    ReassignablePartitionResponse,
    ReassignableTopicResponse,
)


def _replica_error(replicas: list[int], node_id: int, check_factor: bool) -> str | None:
    """Why ``replicas`` cannot be this partition's replica set, or None if it can."""
    if not replicas:
        return "The manual partition assignment includes an empty replica list."
    seen: set[int] = set()
    for replica in replicas:
        if replica in seen:
            return f"The manual partition assignment includes the broker {replica} more than once."
        seen.add(replica)
    for replica in replicas:
        if replica != node_id:
            return f"The manual partition assignment includes broker {replica}, but no broker with that ID is registered."
    if check_factor and len(replicas) != 1:
        return f"The replication factor is changed from 1 to {len(replicas)}"
    return None


@handler(ApiKey.ALTER_PARTITION_REASSIGNMENTS, 0, 1)
async def handle_alter_partition_reassignments(
    ctx: RequestContext, req: AlterPartitionReassignmentsRequest
) -> AlterPartitionReassignmentsResponse:
    require(ctx, AclOperation.ALTER, CLUSTER)
    node_id = ctx.broker.config.node_id
    check_factor = ctx.api_version >= 1 and not req.allow_replication_factor_change
    responses: list[ReassignableTopicResponse] = []
    for wanted in req.topics:
        topic = ctx.broker.metadata.get(wanted.name)
        results: list[ReassignablePartitionResponse] = []
        for part in wanted.partitions:
            error, message = ErrorCode.NONE, None
            if topic is None or not 0 <= part.partition_index < topic.num_partitions:
                error = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                message = "This server does not host this topic-partition."
            elif part.replicas is None:
                error = ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
                message = "No partition reassignment is in progress."
            else:
                message = _replica_error(part.replicas, node_id, check_factor)
                if message is not None:
                    error = ErrorCode.INVALID_REPLICA_ASSIGNMENT
            results.append(
                ReassignablePartitionResponse(partition_index=part.partition_index, error_code=error, error_message=message)
            )
        responses.append(ReassignableTopicResponse(name=wanted.name, partitions=results))
    return AlterPartitionReassignmentsResponse(
        allow_replication_factor_change=req.allow_replication_factor_change if ctx.api_version >= 1 else True,
        error_code=ErrorCode.NONE,
        error_message=None,
        responses=responses,
    )
