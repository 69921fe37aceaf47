"""Helpers of the ACL tests: a secured in-process broker and seed ACLs."""

from __future__ import annotations

from collections.abc import Callable

from kbroker.acl.model import AclBinding, AclOperation, PatternType, PermissionType, ResourceType
from kbroker.testing import BrokerThread

ANONYMOUS = "User:ANONYMOUS"


def cluster_acl(principal: str, operation: int = AclOperation.ALTER) -> AclBinding:
    return AclBinding(ResourceType.CLUSTER, "kafka-cluster", PatternType.LITERAL, principal, "*", operation, PermissionType.ALLOW)


Secured = Callable[..., BrokerThread]
