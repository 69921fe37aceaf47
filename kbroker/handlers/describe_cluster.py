"""DescribeCluster (key 60).

Version notes:
- v0-v2 served (kafka-python's admin describe_cluster; the other clients use Metadata).
- v1 adds endpoint_type: 1 (brokers) is answered; 2 (controllers) gets
  UNSUPPORTED_ENDPOINT_TYPE, as a broker listener does in Kafka.
- v2 adds is_fenced: never fenced, a single node.  A virtual cluster (``kbroker.cluster``)
  lists its nodes, a stopped one fenced (v2+) or left out (v0-1).
- ACLs: DESCRIBE on the cluster, else CLUSTER_AUTHORIZATION_FAILED;
  cluster_authorized_operations from the authorizer.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, authorized_operations, require
from kbroker.acl.model import CLUSTER_NAME, AclOperation
from kbroker.authz import CLUSTER_OPERATIONS, OPERATIONS_OMITTED
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_cluster_request import DescribeClusterRequest
from kbroker.wire.messages.describe_cluster_response import (
    DescribeClusterBroker,
    DescribeClusterResponse,
)


@handler(ApiKey.DESCRIBE_CLUSTER, 0, 2)
async def handle_describe_cluster(ctx: RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse:
    broker = ctx.broker
    if ctx.api_version >= 1 and req.endpoint_type != 1:
        return DescribeClusterResponse(
            error_code=ErrorCode.UNSUPPORTED_ENDPOINT_TYPE,
            error_message="kbroker has no separate controller endpoints",
            endpoint_type=req.endpoint_type,
            cluster_id=broker.metadata.cluster_id,
        )
    require(ctx, AclOperation.DESCRIBE, CLUSTER)
    host, port = broker.config.advertised_for(ctx.session.listener_name)
    brokers = [DescribeClusterBroker(broker_id=broker.config.node_id, host=host, port=port)]
    controller_id = broker.config.node_id
    if broker.cluster is not None:  # every node, the stopped ones fenced (v2+)
        from kbroker.cluster_routing import broker_list

        listed = broker_list(broker.cluster, ctx.session.listener_name)
        controller_id = listed[0][0] if listed else -1
        brokers = [
            DescribeClusterBroker(broker_id=node.node_id, host=h, port=p, is_fenced=not node.up)
            for node in broker.cluster.nodes.values()
            for h, p in [node.endpoint(ctx.session.listener_name)]
            if node.up or ctx.api_version >= 2
        ]
    return DescribeClusterResponse(
        error_code=ErrorCode.NONE,
        endpoint_type=1,
        cluster_id=broker.metadata.cluster_id,
        controller_id=controller_id,
        brokers=brokers,
        cluster_authorized_operations=(
            authorized_operations(ctx, CLUSTER, CLUSTER_NAME, CLUSTER_OPERATIONS) if req.include_cluster_authorized_operations else OPERATIONS_OMITTED
        ),
    )
