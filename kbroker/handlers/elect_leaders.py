"""ElectLeaders (key 43, KIP-460).

Version notes:
- v0-v2 served (Kafka 4.1's range).  v0 has no election type (preferred election); v1 adds
  election_type (0 preferred, 1 unclean) and the top-level error_code; v2 is flexible.
- A single node leads every partition and is every partition's preferred (only) replica, so
  no election is ever needed: an existing partition gets ELECTION_NOT_NEEDED, for either
  election type, as Kafka answers a partition whose preferred leader already leads.
- Virtual cluster (``kbroker.cluster``): elections happen.  Preferred: the first replica
  takes over if it is live and in the ISR (else PREFERRED_LEADER_NOT_AVAILABLE); unclean: a
  partition without a leader gets its first live replica (else
  ELIGIBLE_LEADERS_NOT_AVAILABLE); both bump the leader epoch.  A null topic list elects
  every partition that can be and lists those.
- A partition of a missing topic, or an index out of range, is UNKNOWN_TOPIC_OR_PARTITION.
- A null topic list means every partition; Kafka leaves out of that answer the partitions
  that need no election, so here the answer lists nothing.
- An election type other than 0 or 1 is INVALID_REQUEST (top-level from v1, and on every
  named partition).
- ACLs: ALTER on the cluster, else CLUSTER_AUTHORIZATION_FAILED (top level from v1, and on
  every named partition).
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.elect_leaders_request import ElectLeadersRequest
from kbroker.wire.messages.elect_leaders_response import (
    ElectLeadersResponse,
    PartitionResult,
    ReplicaElectionResult,
)

PREFERRED, UNCLEAN = 0, 1


@handler(ApiKey.ELECT_LEADERS, 0, 2)
async def handle_elect_leaders(ctx: RequestContext, req: ElectLeadersRequest) -> ElectLeadersResponse:
    election_type = req.election_type if ctx.api_version >= 1 else PREFERRED
    valid_type = election_type in (PREFERRED, UNCLEAN)
    denied = not allowed(ctx, AclOperation.ALTER, CLUSTER)
    resp = ElectLeadersResponse(
        error_code=ErrorCode.CLUSTER_AUTHORIZATION_FAILED if denied and ctx.api_version >= 1
        else ErrorCode.NONE if valid_type else ErrorCode.INVALID_REQUEST,
        replica_election_results=[],
    )
    cluster = ctx.broker.cluster
    if req.topic_partitions is None:
        if cluster is not None and valid_type and not denied:  # every partition that gets elected
            for name, states in list(cluster.partitions.items()):
                done = [(i, cluster.elect(name, i, election_type == UNCLEAN)) for i in range(len(states))]
                elected = [PartitionResult(partition_id=i, error_code=code, error_message=None) for i, code in done if code == ErrorCode.NONE]
                if elected:
                    resp.replica_election_results.append(ReplicaElectionResult(topic=name, partition_result=elected))
        return resp
    by_topic: dict[str, list[int]] = {}
    for tp in req.topic_partitions:
        seen = by_topic.setdefault(tp.topic, [])
        seen.extend(p for p in tp.partitions if p not in seen)
    for name, partitions in by_topic.items():
        topic = ctx.broker.metadata.get(name)
        results: list[PartitionResult] = []
        for index in partitions:
            if denied:
                error, message = ErrorCode.CLUSTER_AUTHORIZATION_FAILED, None
            elif not valid_type:
                error, message = ErrorCode.INVALID_REQUEST, f"unknown election type {election_type}"
            elif topic is None:
                error, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {name}"
            elif not 0 <= index < topic.num_partitions:
                error, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {name}-{index}"
            elif cluster is not None:
                error = cluster.elect(name, index, election_type == UNCLEAN)
                message = None if error == ErrorCode.NONE else error.name
            else:
                error, message = ErrorCode.ELECTION_NOT_NEEDED, "Leader election not needed for topic partition."
            results.append(PartitionResult(partition_id=index, error_code=error, error_message=message))
        resp.replica_election_results.append(ReplicaElectionResult(topic=name, partition_result=results))
    return resp
