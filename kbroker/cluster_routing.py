"""What a virtual cluster's nodes answer differently: coordinator checks, FindCoordinator,
the KIP-951 current-leader hints, and the replica fields of Metadata-like responses.

Only called when ``Broker.cluster`` is set (``kbroker.nodes`` > 1); see ``kbroker.cluster``.

Version notes:
- Coordinator requests (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
  OffsetDelete, TxnOffsetCommit, ConsumerGroupHeartbeat, InitProducerId with a
  transactional id, AddPartitionsToTxn v0-3, AddOffsetsToTxn, EndTxn) sent to a node that
  does not coordinate their key get NOT_COORDINATOR (COORDINATOR_NOT_AVAILABLE while the
  coordinator's partition is offline).  Batched group requests (OffsetFetch, DescribeGroups,
  DeleteGroups, ConsumerGroupDescribe, AddPartitionsToTxn v4+) are answered by any node:
  the state exists once, so the answer is the coordinator's.
- FindCoordinator: the node leading the key's internal-topic partition.
- Produce v10+ / Fetch v12+: a NOT_LEADER_OR_FOLLOWER partition carries current_leader;
  Produce v10+ / Fetch v16+ carry the node_endpoints it names (KIP-951).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kbroker.coordinator.find_coordinator import GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE
from kbroker.errors import KafkaError
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.cluster import Cluster
    from kbroker.registry import RequestContext
    from kbroker.wire.messages.fetch_response import FetchResponse
    from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
    from kbroker.wire.messages.find_coordinator_response import FindCoordinatorResponse
    from kbroker.wire.messages.produce_response import ProduceResponse

NO_LEADER = -1
# Produce carries current_leader and node_endpoints from v10; Fetch current_leader from
# v12 and node_endpoints from v16.
PRODUCE_LEADER_HINT_VERSION = 10
FETCH_LEADER_HINT_VERSION = 12
FETCH_ENDPOINTS_VERSION = 16

# API key -> (key type, the request field naming the key, the last version with that field).
_SINGLE_KEY_APIS: dict[int, tuple[int, str, int]] = {
    ApiKey.JOIN_GROUP: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.SYNC_GROUP: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.HEARTBEAT: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.LEAVE_GROUP: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.OFFSET_COMMIT: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.OFFSET_DELETE: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.TXN_OFFSET_COMMIT: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.CONSUMER_GROUP_HEARTBEAT: (GROUP_KEY_TYPE, "group_id", 99),
    ApiKey.INIT_PRODUCER_ID: (TRANSACTION_KEY_TYPE, "transactional_id", 99),
    ApiKey.ADD_PARTITIONS_TO_TXN: (TRANSACTION_KEY_TYPE, "v3_and_below_transactional_id", 3),
    ApiKey.ADD_OFFSETS_TO_TXN: (TRANSACTION_KEY_TYPE, "transactional_id", 99),
    ApiKey.END_TXN: (TRANSACTION_KEY_TYPE, "transactional_id", 99),
}


def route(cluster: Cluster, ctx: RequestContext, request: Any) -> Any:
    """None to let the handler answer; otherwise the answer (or KafkaError) of a node that
    is not the request's coordinator."""
    row = _SINGLE_KEY_APIS.get(ctx.api_key)
    if row is None or ctx.api_version > row[2]:
        return None
    key = getattr(request, row[1])
    if key is None:  # InitProducerId without a transactional id: any node
        return None
    coordinator = cluster.coordinator_of(row[0], key)
    if coordinator == ctx.node_id:
        return None
    code = (
        ErrorCode.COORDINATOR_NOT_AVAILABLE
        if coordinator == NO_LEADER
        else ErrorCode.NOT_COORDINATOR
    )
    if ctx.api_key == ApiKey.OFFSET_COMMIT:
        return _offset_commit_error(ctx.api_key, request, code)
    if ctx.api_key == ApiKey.TXN_OFFSET_COMMIT:
        return _offset_commit_error(ctx.api_key, request, code)
    if ctx.api_key == ApiKey.ADD_PARTITIONS_TO_TXN:
        return _add_partitions_error(request, code)
    raise KafkaError(code)


def _offset_commit_error(api_key: int, request: Any, code: ErrorCode) -> Any:
    if api_key == ApiKey.OFFSET_COMMIT:
        from kbroker.wire.messages.offset_commit_response import (
            OffsetCommitResponse as Response,
        )
        from kbroker.wire.messages.offset_commit_response import (
            OffsetCommitResponsePartition as Partition,
        )
        from kbroker.wire.messages.offset_commit_response import (
            OffsetCommitResponseTopic as Topic,
        )
    else:
        from kbroker.wire.messages.txn_offset_commit_response import (  # type: ignore[assignment]
            TxnOffsetCommitResponse as Response,
        )
        from kbroker.wire.messages.txn_offset_commit_response import (  # type: ignore[assignment]
            TxnOffsetCommitResponsePartition as Partition,
        )
        from kbroker.wire.messages.txn_offset_commit_response import (  # type: ignore[assignment]
            TxnOffsetCommitResponseTopic as Topic,
        )
    topics = []
    for t in request.topics:
        topic = Topic(
            name=t.name,
            partitions=[
                Partition(partition_index=p.partition_index, error_code=code) for p in t.partitions
            ],
        )
        if hasattr(t, "topic_id"):
            topic.topic_id = t.topic_id
        topics.append(topic)
    return Response(topics=topics)


def _add_partitions_error(request: Any, code: ErrorCode) -> Any:
    from kbroker.wire.messages.add_partitions_to_txn_response import (
        AddPartitionsToTxnPartitionResult,
        AddPartitionsToTxnResponse,
        AddPartitionsToTxnTopicResult,
    )

    return AddPartitionsToTxnResponse(
        results_by_topic_v3_and_below=[
            AddPartitionsToTxnTopicResult(
                name=t.name,
                results_by_partition=[
                    AddPartitionsToTxnPartitionResult(partition_index=p, partition_error_code=code)
                    for p in t.partitions
                ],
            )
            for t in request.v3_and_below_topics
        ]
    )


def find_coordinator(
    cluster: Cluster, ctx: RequestContext, req: FindCoordinatorRequest
) -> FindCoordinatorResponse:
    """FindCoordinator across the nodes: each key's coordinator, or an error per key."""
    from kbroker.wire.messages.find_coordinator_response import Coordinator, FindCoordinatorResponse

    key_type = req.key_type if ctx.api_version >= 1 else GROUP_KEY_TYPE
    listener = ctx.session.listener_name

    def answer(key: str) -> tuple[int, str, int, ErrorCode]:
        if key_type not in (GROUP_KEY_TYPE, TRANSACTION_KEY_TYPE):
            return NO_LEADER, "", -1, ErrorCode.INVALID_REQUEST
        node_id = cluster.coordinator_of(key_type, key)
        if node_id == NO_LEADER:
            return NO_LEADER, "", -1, ErrorCode.COORDINATOR_NOT_AVAILABLE
        host, port = cluster.endpoint(node_id, listener)
        return node_id, host, port, ErrorCode.NONE

    if ctx.api_version >= 4:
        response = FindCoordinatorResponse()
        for key in req.coordinator_keys:
            node_id, host, port, code = answer(key)
            response.coordinators.append(
                Coordinator(
                    key=key,
                    node_id=node_id,
                    host=host,
                    port=port,
                    error_code=code,
                    error_message=None if code is ErrorCode.NONE else code.name,
                )
            )
        return response
    node_id, host, port, code = answer(req.key)
    return FindCoordinatorResponse(
        error_code=code,
        error_message=None if code is ErrorCode.NONE or ctx.api_version < 1 else code.name,
        node_id=node_id,
        host=host,
        port=port,
    )


def _leader_hint(cluster: Cluster, topic_name: str | None, partition: int) -> tuple[int, int]:
    """(leader id, leader epoch) of a partition, (-1, -1) when unknown."""
    if topic_name is None:
        return NO_LEADER, -1
    state = cluster.state_of(topic_name, partition)
    topic = cluster.broker.metadata.get(topic_name)
    if state is None or topic is None:
        return NO_LEADER, -1
    return state.leader, topic.leader_epochs[partition]


def annotate_produce(cluster: Cluster, ctx: RequestContext, response: ProduceResponse) -> None:
    """KIP-951: NOT_LEADER_OR_FOLLOWER partitions name the current leader and its endpoint."""
    if ctx.api_version < PRODUCE_LEADER_HINT_VERSION:
        return
    from kbroker.wire.messages.produce_response import LeaderIdAndEpoch, NodeEndpoint

    leaders: set[int] = set()
    for t in response.responses:
        name: str | None = t.name
        if not name:
            topic = cluster.broker.metadata.by_id(t.topic_id)
            name = None if topic is None else topic.name
        for p in t.partition_responses:
            if p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER:
                leader, epoch = _leader_hint(cluster, name, p.index)
                p.current_leader = LeaderIdAndEpoch(leader_id=leader, leader_epoch=epoch)
                if leader != NO_LEADER:
                    leaders.add(leader)
    listener = ctx.session.listener_name
    for node_id in sorted(leaders):
        host, port = cluster.endpoint(node_id, listener)
        response.node_endpoints.append(
            NodeEndpoint(node_id=node_id, host=host, port=port, rack=None)
        )


def annotate_fetch(cluster: Cluster, ctx: RequestContext, response: FetchResponse) -> None:
    """KIP-951 for Fetch: current_leader (v12+) and node_endpoints (v16+)."""
    if ctx.api_version < FETCH_LEADER_HINT_VERSION:
        return
    from kbroker.wire.messages.fetch_response import LeaderIdAndEpoch, NodeEndpoint

    leaders: set[int] = set()
    for t in response.responses:
        name: str | None = t.topic
        if ctx.api_version >= 13:
            topic = cluster.broker.metadata.by_id(t.topic_id)
            name = None if topic is None else topic.name
        for p in t.partitions:
            if p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER:
                leader, epoch = _leader_hint(cluster, name, p.partition_index)
                p.current_leader = LeaderIdAndEpoch(leader_id=leader, leader_epoch=epoch)
                if leader != NO_LEADER:
                    leaders.add(leader)
    if ctx.api_version >= FETCH_ENDPOINTS_VERSION:
        listener = ctx.session.listener_name
        for node_id in sorted(leaders):
            host, port = cluster.endpoint(node_id, listener)
            response.node_endpoints.append(
                NodeEndpoint(node_id=node_id, host=host, port=port, rack=None)
            )


def replica_fields(
    cluster: Cluster, topic_name: str, partition: int
) -> tuple[int, list[int], list[int], list[int]]:
    """(leader, replicas, isr, offline replicas) of a partition for Metadata-like answers."""
    state = cluster.state_of(topic_name, partition)
    if state is None:
        return NO_LEADER, [], [], []
    offline = [n for n in state.replicas if not cluster.nodes[n].up]
    return state.leader, list(state.replicas), list(state.isr), offline


def broker_list(cluster: Cluster, listener_name: str) -> list[tuple[int, str, int]]:
    """(node id, host, port) of every live node, as Metadata/DescribeCluster list brokers."""
    return [(node.node_id, *node.endpoint(listener_name)) for node in cluster.live_nodes()]
