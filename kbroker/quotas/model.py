"""Client-quota entities and keys, and Kafka's checks of what AlterClientQuotas and
DescribeClientQuotas may ask (pure functions, no state).

An entity is what Kafka's ``ClientQuotaEntity`` is: a map of entity type (``user``,
``client-id``, ``ip``) to a name, ``None`` naming the type's default (``<default>`` in
Kafka's tools).  Here it is a tuple of ``(type, name)`` pairs sorted by type, so it is
hashable, has one spelling per entity, and is the wire form's order-independent key.

Kafka's rules, as its controller (``ClientQuotaControlManager``) and the broker's quota image
(``ClientQuotasImage.describe``) apply them:

- an entity has at least one component and each type at most once; ``ip`` stands alone;
  an empty name is refused; an unknown type is UNSUPPORTED_VERSION;
- the keys an entity may carry depend on its types (:data:`KEYS_BY_SHAPE`); an unknown
  key, a value <= 0, a fraction for an integral key and a value beyond the key's type are
  INVALID_REQUEST;
- a key listed twice for one entity, or an entity listed twice, is INVALID_REQUEST.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kbroker.wire.errors import ErrorCode

USER = "user"
CLIENT_ID = "client-id"
IP = "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)

# An entity: (type, name) pairs sorted by type; name None is the type's default.
QuotaEntity = tuple[tuple[str, str | None], ...]

PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"

# Kafka's ConfigDef types of the quota keys (QuotaConfig): LONG and INT values must be whole.
LONG, INT, DOUBLE = "LONG", "INT", "DOUBLE"
_CLIENT_KEYS = {
    PRODUCER_BYTE_RATE: LONG,
    CONSUMER_BYTE_RATE: LONG,
    REQUEST_PERCENTAGE: DOUBLE,
    CONTROLLER_MUTATION_RATE: DOUBLE,
}
_IP_KEYS = {CONNECTION_CREATION_RATE: INT}
# Which keys an entity of these types may carry.
KEYS_BY_SHAPE: dict[frozenset[str], dict[str, str]] = {
    frozenset({USER}): _CLIENT_KEYS,
    frozenset({CLIENT_ID}): _CLIENT_KEYS,
    frozenset({USER, CLIENT_ID}): _CLIENT_KEYS,
    frozenset({IP}): _IP_KEYS,
}
_TYPE_MAX = {LONG: 2**63 - 1, INT: 2**31 - 1}
# A remainder below this counts as whole (Kafka's getErrorForIntegralQuotaValue).
_FRACTION_TOLERANCE = 1e-6

# DescribeClientQuotas match types.
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


class QuotaProblem(Exception):
    """A request Kafka refuses: its error code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def entity_of(pairs: Iterable[tuple[str, str | None]]) -> QuotaEntity:
    """The canonical entity of request components (checked by :func:`check_entity`)."""
    return tuple(sorted(pairs, key=lambda pair: pair[0]))


def describe_entity(entity: QuotaEntity) -> str:
    """Kafka's way of printing an entity in messages (``user=alice, client-id=<default>``)."""
    return ", ".join(f"{kind}={'<default>' if name is None else name}" for kind, name in entity)


def check_entity(pairs: list[tuple[str, str | None]]) -> dict[str, str]:
    """The keys (and their types) ``pairs`` may carry; QuotaProblem if it is not a valid entity."""
    if not pairs:
        raise QuotaProblem(ErrorCode.INVALID_REQUEST, "Invalid empty client quota entity")
    seen: set[str] = set()
    for kind, name in pairs:
        if kind in seen:
            raise QuotaProblem(
                ErrorCode.INVALID_REQUEST,
                f"Invalid empty client quota entity, duplicate entity entry {kind}",
            )
        if kind not in ENTITY_TYPES:
            raise QuotaProblem(
                ErrorCode.UNSUPPORTED_VERSION, f"Unhandled client quota entity type: {kind}"
            )
        if name is not None and not name:
            raise QuotaProblem(ErrorCode.INVALID_REQUEST, f"Empty {kind} not supported")
        seen.add(kind)
    if IP in seen and len(seen) > 1:
        raise QuotaProblem(
            ErrorCode.INVALID_REQUEST,
            "Invalid quota entity combination, IP entity should not be combined with User or ClientId",
        )
    if IP in seen:
        ip = pairs[0][1]
        if ip is not None and not _is_ip(ip):
            raise QuotaProblem(
                ErrorCode.INVALID_REQUEST, f"{ip} is not a valid IP or resolvable host."
            )
    return KEYS_BY_SHAPE[frozenset(seen)]


def _is_ip(text: str) -> bool:
    """An IP literal.  Kafka also accepts a host name it can resolve; kbroker resolves
    nothing (no name look-ups from a request path), so a name is refused."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_value(keys: Mapping[str, str], key: str, value: float) -> None:
    """QuotaProblem unless ``key`` may be set to ``value`` on an entity allowing ``keys``."""
    key_type = keys.get(key)
    if key_type is None:
        raise QuotaProblem(ErrorCode.INVALID_REQUEST, f"Invalid configuration key {key}")
    if not value > 0.0:  # NaN too
        raise QuotaProblem(ErrorCode.INVALID_REQUEST, f"Quota {key} must be greater than 0")
    if key_type == DOUBLE:
        if math.isinf(value):
            raise QuotaProblem(ErrorCode.INVALID_REQUEST, f"Quota {key} must be finite")
        return
    if value > _TYPE_MAX[key_type]:
        article = "an" if key_type == INT else "a"
        raise QuotaProblem(
            ErrorCode.INVALID_REQUEST,
            f"Proposed value for {key} is too large for {article} {key_type}.",
        )
    if abs(math.fmod(value, 1.0)) > _FRACTION_TOLERANCE:
        raise QuotaProblem(ErrorCode.INVALID_REQUEST, f"{key} cannot be a fractional value.")


@dataclass(frozen=True, slots=True)
class DescribeFilter:
    """A checked DescribeClientQuotas filter: exact names (None: the default) and types that
    must be present with any name."""

    exact: dict[str, str | None]
    specified: frozenset[str]
    strict: bool

    def matches(self, entity: QuotaEntity) -> bool:
        names = dict(entity)
        if self.strict and len(names) != len(self.exact) + len(self.specified):
            return False
        for kind, name in self.exact.items():
            if kind not in names or names[kind] != name:
                return False
        return all(kind in names for kind in self.specified)


def describe_filter(
    components: Iterable[tuple[str, int, str | None]], strict: bool
) -> DescribeFilter:
    """Check (entity type, match type, match) components; QuotaProblem as Kafka refuses them."""
    exact: dict[str, str | None] = {}
    specified: set[str] = set()
    for kind, match_type, match in components:
        if not kind:
            raise QuotaProblem(ErrorCode.INVALID_REQUEST, "Invalid empty entity type.")
        if kind in exact or kind in specified:
            raise QuotaProblem(
                ErrorCode.INVALID_REQUEST,
                f"Entity type {kind} cannot appear more than once in the filter.",
            )
        if kind not in ENTITY_TYPES:
            raise QuotaProblem(ErrorCode.UNSUPPORTED_VERSION, f"Unsupported entity type {kind}")
        if match_type == MATCH_EXACT:
            if match is None:
                raise QuotaProblem(
                    ErrorCode.INVALID_REQUEST,
                    "Request specified MATCH_TYPE_EXACT, but set match string to null.",
                )
            exact[kind] = match
        elif match_type == MATCH_DEFAULT:
            if match is not None:
                raise QuotaProblem(
                    ErrorCode.INVALID_REQUEST,
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.",
                )
            exact[kind] = None
        elif match_type == MATCH_SPECIFIED:
            if match is not None:
                raise QuotaProblem(
                    ErrorCode.INVALID_REQUEST,
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.",
                )
            specified.add(kind)
        else:
            raise QuotaProblem(ErrorCode.UNSUPPORTED_VERSION, f"Unknown match type {match_type}")
    types = set(exact) | specified
    if IP in types and types & {USER, CLIENT_ID}:
        raise QuotaProblem(
            ErrorCode.INVALID_REQUEST,
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.",
        )
    return DescribeFilter(exact, frozenset(specified), strict)
