"""What request handlers call to authorize: small, and one attribute check when no
authorizer is configured (``Broker.authorizer is None``: everything allowed, as Kafka)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kbroker.acl.model import CLUSTER_NAME, AclOperation, ResourceType
from kbroker.errors import KafkaError
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import RequestContext

TOPIC = ResourceType.TOPIC
GROUP = ResourceType.GROUP
CLUSTER = ResourceType.CLUSTER
TRANSACTIONAL_ID = ResourceType.TRANSACTIONAL_ID

# Kafka's error for a denied action, by resource type.
DENIED_ERROR = {
    TOPIC: ErrorCode.TOPIC_AUTHORIZATION_FAILED,
    GROUP: ErrorCode.GROUP_AUTHORIZATION_FAILED,
    CLUSTER: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID: ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
}


def allowed(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str = CLUSTER_NAME) -> bool:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    session = ctx.session
    return authorizer.authorize(session.principal, session.client_host, operation, resource_type, name)


def require(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, name: str = CLUSTER_NAME) -> None:
    """Raise KafkaError with Kafka's *_AUTHORIZATION_FAILED code unless allowed (for
    requests answered by one top-level error)."""
    if ctx.broker.authorizer is not None and not allowed(ctx, operation, resource_type, name):
        raise KafkaError(DENIED_ERROR[resource_type])


def allowed_names(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType, names: Iterable[str]) -> set[str]:
    """The names in ``names`` the request may act on."""
    if ctx.broker.authorizer is None:
        return set(names)
    return {name for name in names if allowed(ctx, operation, resource_type, name)}


def allowed_on_any(ctx: RequestContext, operation: AclOperation, resource_type: ResourceType) -> bool:
    """Kafka's authorizeByResourceType (an idempotent producer's WRITE on any topic)."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return True
    session = ctx.session
    return authorizer.authorize_by_resource_type(session.principal, session.client_host, operation, resource_type)


def authorized_operations(ctx: RequestContext, resource_type: ResourceType, name: str, all_operations: int) -> int:
    """The bit set of Kafka's ``*_authorized_operations`` fields: of the operations in
    ``all_operations`` (kbroker.authz's sets), those the principal may perform."""
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return all_operations
    session = ctx.session
    ops = [op for op in range(all_operations.bit_length()) if all_operations >> op & 1]
    return authorizer.authorized_operations(session.principal, session.client_host, resource_type, name, ops)


# ConfigResource.Type codes -> the ACL resource Kafka checks for them.
_CONFIG_RESOURCE = {2: TOPIC, 4: CLUSTER, 8: CLUSTER, 16: CLUSTER, 32: GROUP}


def require_configs(ctx: RequestContext, operation: AclOperation, config_resource_type: int, name: str) -> None:
    """DESCRIBE_CONFIGS / ALTER_CONFIGS on a config resource: the topic (or group) itself,
    the cluster for broker, broker-logger and client-metrics resources; KafkaError if denied."""
    if ctx.broker.authorizer is None:
        return
    resource_type = _CONFIG_RESOURCE.get(config_resource_type)
    if resource_type is None:
        return  # an unknown type is refused by the handler itself
    require(ctx, operation, resource_type, CLUSTER_NAME if resource_type == CLUSTER else name)
