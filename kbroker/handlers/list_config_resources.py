"""ListConfigResources (key 74; was ListClientMetricsResources, KIP-1142).

Version notes:
- v0-v1 served (Kafka 4.1's range).  v0 lists CLIENT_METRICS resources only (the request
  has no resource types).  v1 lists the resource types asked for; an empty list means every
  supported one: TOPIC (2: every topic), BROKER (4) and BROKER_LOGGER (8: this node's id),
  CLIENT_METRICS (16: the subscriptions, ``kbroker.client_metrics``) and GROUP
  (32: the groups the group coordinator knows).  A type outside these fails the request
  with UNSUPPORTED_VERSION.
"""

from __future__ import annotations

from kbroker.registry import RequestContext, handler
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.list_config_resources_request import ListConfigResourcesRequest
from kbroker.wire.messages.list_config_resources_response import (
    ConfigResource,
    ListConfigResourcesResponse,
)
from kbroker.wire.messages.list_groups_request import ListGroupsRequest

TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP = 2, 4, 8, 16, 32
SUPPORTED_TYPES = (TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP)


def _names(ctx: RequestContext, resource_type: int) -> list[str]:
    broker = ctx.broker
    if resource_type == TOPIC:
        return sorted(t.name for t in broker.metadata)
    if resource_type in (BROKER, BROKER_LOGGER):
        return [str(broker.config.node_id)]
    if resource_type == GROUP:
        runtime = broker.groups
        assert runtime.coordinator is not None
        listed = runtime.finish(runtime.coordinator.list_groups(ListGroupsRequest(), api_version=0))
        assert listed is not None
        return sorted(g.group_id for g in listed.groups)
    return sorted(broker.client_metrics.values)  # CLIENT_METRICS: the subscriptions


@handler(ApiKey.LIST_CONFIG_RESOURCES, 0, 1)
async def handle_list_config_resources(ctx: RequestContext, req: ListConfigResourcesRequest) -> ListConfigResourcesResponse:
    if ctx.api_version == 0:
        types: list[int] = [CLIENT_METRICS]
    else:
        types = list(dict.fromkeys(req.resource_types)) or list(SUPPORTED_TYPES)
    if any(t not in SUPPORTED_TYPES for t in types):
        return ListConfigResourcesResponse(error_code=ErrorCode.UNSUPPORTED_VERSION)
    resources = [ConfigResource(resource_name=name, resource_type=t) for t in types for name in _names(ctx, t)]
    return ListConfigResourcesResponse(error_code=ErrorCode.NONE, config_resources=resources)
