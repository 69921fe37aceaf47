"""ListGroups (key 16).

Version notes:
- v0-v5 served (librdkafka's legacy list_groups sends v0).  v4+ states_filter, v5+
  types_filter (all groups here are classic).
- Virtual cluster (``kbroker.cluster``): a node lists only the groups it coordinates, so
  admin clients asking every node see each group once.
- ACLs: all groups with DESCRIBE on the cluster, else only those the principal may DESCRIBE.
"""

from __future__ import annotations

from kbroker.acl.check import CLUSTER, GROUP, allowed
from kbroker.acl.model import AclOperation
from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.list_groups_response import ListGroupsResponse


@handler(ApiKey.LIST_GROUPS, 0, 5)
async def handle_list_groups(ctx: RequestContext, req: ListGroupsRequest) -> ListGroupsResponse:
    runtime = ctx.broker.groups
    assert runtime.coordinator is not None
    response = runtime.finish(runtime.coordinator.list_groups(req, api_version=ctx.api_version))
    assert response is not None
    if ctx.broker.authorizer is not None and not allowed(ctx, AclOperation.DESCRIBE, CLUSTER):
        response.groups = [g for g in response.groups if allowed(ctx, AclOperation.DESCRIBE, GROUP, g.group_id)]
    cluster = ctx.broker.cluster
    if cluster is not None:  # each node lists the groups it coordinates, as Kafka's brokers do
        response.groups = [g for g in response.groups if cluster.coordinator_of(0, g.group_id) == ctx.node_id]
    return response
