"""Kafka's ACL vocabulary: enums, bindings, filters, and the checks on a new ACL.

Codes are Kafka's (``org.apache.kafka.common.resource.ResourceType``, ``PatternType``,
``acl.AclOperation``, ``acl.AclPermissionType``); they travel as int8 on the wire.  A code
kbroker does not know decodes as UNKNOWN, as Kafka's ``fromCode`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class PermissionType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


def _from_code(enum: type[IntEnum], code: int) -> int:
    """Kafka's ``fromCode``: an unknown code is UNKNOWN (0)."""
    try:
        return int(enum(code))
    except ValueError:
        return 0


# Kafka's literal wildcard resource name and wildcard principal / host.
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"
# The only name the CLUSTER resource has.
CLUSTER_NAME = "kafka-cluster"

# An ALLOW of any of these implies DESCRIBE; of ALTER_CONFIGS, DESCRIBE_CONFIGS (Kafka's
# StandardAuthorizerData IMPLIES_DESCRIBE / IMPLIES_DESCRIBE_CONFIGS).  DENY implies nothing.
IMPLIES_DESCRIBE = frozenset({AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE, AclOperation.ALTER})
IMPLIES_DESCRIBE_CONFIGS = frozenset({AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS})


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: a resource pattern and an access control entry."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int

    def sort_key(self) -> tuple[int, str, int, str, str, int, int]:
        return (
            self.resource_type, self.resource_name, self.pattern_type,
            self.principal, self.host, self.operation, self.permission_type,
        )

    def to_json(self) -> list[object]:
        return [
            self.resource_type, self.resource_name, self.pattern_type,
            self.principal, self.host, self.operation, self.permission_type,
        ]

    @classmethod
    def from_json(cls, row: list[object]) -> AclBinding:
        rt, name, pt, principal, host, op, perm = row
        assert isinstance(name, str) and isinstance(principal, str) and isinstance(host, str)
        assert isinstance(rt, int) and isinstance(pt, int) and isinstance(op, int) and isinstance(perm, int)
        return cls(rt, name, pt, principal, host, op, perm)


@dataclass(frozen=True, slots=True)
class AclFilter:
    """Kafka's AclBindingFilter: None and ANY match everything; MATCH as Kafka defines it."""

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    @classmethod
    def of(
        cls, resource_type: int, resource_name: str | None, pattern_type: int,
        principal: str | None, host: str | None, operation: int, permission_type: int,
    ) -> AclFilter:
        """A filter from wire values (unknown codes become UNKNOWN)."""
        return cls(
            _from_code(ResourceType, resource_type), resource_name, _from_code(PatternType, pattern_type),
            principal, host, _from_code(AclOperation, operation), _from_code(PermissionType, permission_type),
        )

    def unknown_element(self) -> bool:
        """Kafka refuses a filter with an UNKNOWN element (INVALID_REQUEST)."""
        return 0 in (self.resource_type, self.pattern_type, self.operation, self.permission_type)

    def matches(self, acl: AclBinding) -> bool:
        # Resource pattern (ResourcePatternFilter.matches).
        if self.resource_type != ResourceType.ANY and self.resource_type != acl.resource_type:
            return False
        pt = self.pattern_type
        if pt not in (PatternType.ANY, PatternType.MATCH) and pt != acl.pattern_type:
            return False
        name = self.resource_name
        if name is not None:
            if pt in (PatternType.ANY, acl.pattern_type):
                if name != acl.resource_name:
                    return False
            elif acl.pattern_type == PatternType.LITERAL:  # MATCH
                if name != acl.resource_name and acl.resource_name != WILDCARD:
                    return False
            elif not name.startswith(acl.resource_name):  # MATCH against PREFIXED
                return False
        # Entry (AccessControlEntryFilter.matches): exact values, no wildcard expansion.
        if self.principal is not None and self.principal != acl.principal:
            return False
        if self.host is not None and self.host != acl.host:
            return False
        if self.operation != AclOperation.ANY and self.operation != acl.operation:
            return False
        return self.permission_type == PermissionType.ANY or self.permission_type == acl.permission_type


def binding_error(acl: AclBinding) -> str | None:
    """Why Kafka refuses to create ``acl`` (INVALID_REQUEST), or None.  Kafka's AclApis
    and AclControlManager.validateNewAcl, in their order."""
    if acl.resource_type == ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if not acl.resource_name:
        return "Invalid empty resource name"
    if acl.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return f"Invalid resourceType {ResourceType(acl.resource_type).name}"
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {PatternType(acl.pattern_type).name}"
    if acl.operation in (AclOperation.UNKNOWN, AclOperation.ANY):
        return f"Invalid operation {AclOperation(acl.operation).name}"
    if acl.permission_type not in (PermissionType.DENY, PermissionType.ALLOW):
        return f"Invalid permissionType {PermissionType(acl.permission_type).name}"
    if ":" not in acl.principal:
        return (
            f"Could not parse principal from `{acl.principal}` "
            "(no colon is present separating the principal type from the principal name)"
        )
    return None


def new_binding(
    resource_type: int, resource_name: str, pattern_type: int, principal: str, host: str, operation: int, permission_type: int
) -> AclBinding:
    """A binding from wire values (unknown codes become UNKNOWN, refused by binding_error)."""
    return AclBinding(
        _from_code(ResourceType, resource_type), resource_name, _from_code(PatternType, pattern_type),
        principal, host, _from_code(AclOperation, operation), _from_code(PermissionType, permission_type),
    )
