"""DescribeQuorum (key 55, KIP-595/KIP-836/KIP-853).

Version notes:
- v0-v2 served (Kafka 4.1's range).  v1 adds each replica's last_fetch_timestamp and
  last_caught_up_timestamp; v2 adds error_message, replica_directory_id and the voters'
  endpoints (``nodes``).
- The only partition is __cluster_metadata-0; a request naming anything else (or more than
  that one partition) is INVALID_REQUEST at the top level, as Kafka answers.
- This node is the only voter and the leader; there are no observers.  As a Kafka leader
  reports itself, its last fetch and last caught-up timestamps are now.
- kbroker keeps its metadata in a file, not a log: the leader epoch is bumped at every start
  and the log end offset (also the high watermark, a single voter) counts metadata writes.
  Kafka's offset also grows with periodic no-op records; kbroker's does not.
- replica_directory_id is the zero UUID, as Kafka reports voters configured statically
  (controller.quorum.voters, kraft.version 0).  The node's endpoint is the advertised
  listener, under the name CONTROLLER.
- ACLs: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, require
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_quorum_request import DescribeQuorumRequest
from kbroker.wire.messages.describe_quorum_response import (
    DescribeQuorumResponse,
    Listener,
    Node,
    PartitionData,
    ReplicaState,
    TopicData,
)

METADATA_TOPIC = "__cluster_metadata"
CONTROLLER_LISTENER_NAME = "CONTROLLER"


def _names_the_metadata_partition(req: DescribeQuorumRequest) -> bool:
    if len(req.topics) != 1 or req.topics[0].topic_name != METADATA_TOPIC:
        return False
    partitions = req.topics[0].partitions
    return len(partitions) == 1 and partitions[0].partition_index == 0


@handler(ApiKey.DESCRIBE_QUORUM, 0, 2)
async def handle_describe_quorum(ctx: RequestContext, req: DescribeQuorumRequest) -> DescribeQuorumResponse:
    require(ctx, AclOperation.DESCRIBE, CLUSTER)
    broker = ctx.broker
    if not _names_the_metadata_partition(req):
        return DescribeQuorumResponse(
            error_code=ErrorCode.INVALID_REQUEST,
            error_message=f"DescribeQuorum describes only {METADATA_TOPIC}-0",
        )
    node_id = broker.config.node_id
    end_offset = broker.metadata.metadata_log_end_offset
    voter = ReplicaState(
        replica_id=node_id,
        log_end_offset=end_offset,
        last_fetch_timestamp=ctx.now_ms,
        last_caught_up_timestamp=ctx.now_ms,
    )
    host, port = broker.config.advertised_for(ctx.session.listener_name)
    return DescribeQuorumResponse(
        error_code=ErrorCode.NONE,
        error_message=None,
        topics=[
            TopicData(
                topic_name=METADATA_TOPIC,
                partitions=[
                    PartitionData(
                        partition_index=0,
                        error_code=ErrorCode.NONE,
                        error_message=None,
                        leader_id=node_id,
                        leader_epoch=broker.metadata.quorum_epoch,
                        high_watermark=end_offset,
                        current_voters=[voter],
                        observers=[],
                    )
                ],
            )
        ],
        nodes=(
            [Node(node_id=node_id, listeners=[Listener(name=CONTROLLER_LISTENER_NAME, host=host, port=port)])]
            if ctx.api_version >= 2
            else []
        ),
    )
