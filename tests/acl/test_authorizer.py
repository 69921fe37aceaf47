"""The authorizer's decisions (Kafka's StandardAuthorizer rules), checked case by case and
against a naive scan of every ACL written straight from the rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kbroker.acl.authorizer import StandardAuthorizer, parse_super_users
from kbroker.acl.model import (
    IMPLIES_DESCRIBE,
    IMPLIES_DESCRIBE_CONFIGS,
    AclBinding,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)

TOPIC, GROUP, CLUSTER = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.CLUSTER
LIT, PRE = PatternType.LITERAL, PatternType.PREFIXED
ALLOW, DENY = PermissionType.ALLOW, PermissionType.DENY
OP = AclOperation
ALICE = "User:alice"
HOST = "127.0.0.1"


def acl(
    name: str, op: int = OP.READ, perm: int = ALLOW, *, rtype: int = TOPIC, pattern: int = LIT,
    principal: str = ALICE, host: str = "*",
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def authorizer(*acls: AclBinding, everyone: bool = False, supers: str = "") -> StandardAuthorizer:
    a = StandardAuthorizer(parse_super_users(supers), everyone)
    a.create(acls)
    return a


def test_no_acl_for_the_resource_follows_allow_everyone_if_no_acl_found() -> None:
    assert not authorizer().authorize(ALICE, HOST, OP.READ, TOPIC, "t")
    assert authorizer(everyone=True).authorize(ALICE, HOST, OP.READ, TOPIC, "t")
    # an ACL on the resource for someone else: the resource has ACLs, so allow-everyone no longer applies
    a = authorizer(acl("t", principal="User:bob"), everyone=True)
    assert not a.authorize(ALICE, HOST, OP.READ, TOPIC, "t")
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "other")


def test_super_users_are_allowed_even_against_deny() -> None:
    a = authorizer(acl("t", OP.ALL, DENY, principal="User:admin"), supers="User:admin; User:bob")
    assert a.authorize("User:admin", HOST, OP.WRITE, TOPIC, "t")
    assert a.authorize("User:bob", HOST, OP.ALTER, CLUSTER, "kafka-cluster")
    assert not a.authorize(ALICE, HOST, OP.WRITE, TOPIC, "t")


def test_literal_wildcard_and_prefixed_patterns() -> None:
    a = authorizer(acl("orders"), acl("pay-", pattern=PRE), acl("*", OP.WRITE))
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "orders")
    assert not a.authorize(ALICE, HOST, OP.READ, TOPIC, "orders2")  # literal is exact
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "pay-eu")
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "pay-")
    assert not a.authorize(ALICE, HOST, OP.READ, TOPIC, "pay")
    assert a.authorize(ALICE, HOST, OP.WRITE, TOPIC, "anything")
    assert not a.authorize(ALICE, HOST, OP.READ, GROUP, "orders")  # other resource type


def test_principal_and_host_matching() -> None:
    a = authorizer(acl("t", principal="User:*", host="10.0.0.1"), acl("u", host=HOST))
    assert a.authorize("User:zed", "10.0.0.1", OP.READ, TOPIC, "t")
    assert not a.authorize("User:zed", HOST, OP.READ, TOPIC, "t")
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "u")
    assert not a.authorize(ALICE, "10.0.0.2", OP.READ, TOPIC, "u")
    assert not a.authorize("User:bob", HOST, OP.READ, TOPIC, "u")


def test_deny_overrides_allow_across_patterns() -> None:
    a = authorizer(acl("*", OP.ALL), acl("secret-", OP.READ, DENY, pattern=PRE))
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "public")
    assert not a.authorize(ALICE, HOST, OP.READ, TOPIC, "secret-x")
    assert a.authorize(ALICE, HOST, OP.WRITE, TOPIC, "secret-x")  # DENY READ denies only READ
    assert a.authorize(ALICE, HOST, OP.DESCRIBE, TOPIC, "secret-x")  # a DENY implies nothing
    b = authorizer(acl("t", OP.ALL), acl("t", OP.ALL, DENY, principal="User:*"))
    assert not b.authorize(ALICE, HOST, OP.DESCRIBE, TOPIC, "t")


def test_implied_operations() -> None:
    for op in (OP.READ, OP.WRITE, OP.DELETE, OP.ALTER):
        assert authorizer(acl("t", op)).authorize(ALICE, HOST, OP.DESCRIBE, TOPIC, "t"), op
    assert not authorizer(acl("t", OP.CREATE)).authorize(ALICE, HOST, OP.DESCRIBE, TOPIC, "t")
    assert authorizer(acl("t", OP.ALTER_CONFIGS)).authorize(ALICE, HOST, OP.DESCRIBE_CONFIGS, TOPIC, "t")
    assert not authorizer(acl("t", OP.DESCRIBE)).authorize(ALICE, HOST, OP.READ, TOPIC, "t")
    assert not authorizer(acl("t", OP.ALTER)).authorize(ALICE, HOST, OP.DESCRIBE_CONFIGS, TOPIC, "t")
    assert authorizer(acl("t", OP.ALL)).authorize(ALICE, HOST, OP.ALTER_CONFIGS, TOPIC, "t")


def test_by_resource_type_for_idempotent_producers() -> None:
    w = OP.WRITE
    assert authorizer(acl("t", w)).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    assert not authorizer(acl("t", OP.READ)).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    # a literal allow dominated by a prefixed deny
    assert not authorizer(acl("abc", w), acl("ab", w, DENY, pattern=PRE)).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    assert authorizer(acl("abc", w), acl("x", w, DENY, pattern=PRE)).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    # a wildcard deny beats everything, wherever it comes in the set
    assert not authorizer(acl("*", w), acl("*", w, DENY)).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    assert authorizer(everyone=True).authorize_by_resource_type(ALICE, HOST, w, TOPIC)
    assert authorizer(supers=ALICE).authorize_by_resource_type(ALICE, HOST, w, TOPIC)


def test_authorized_operations_bits() -> None:
    a = authorizer(acl("t", OP.WRITE))
    bits = a.authorized_operations(ALICE, HOST, TOPIC, "t", [OP.READ, OP.WRITE, OP.DESCRIBE])
    assert bits == (1 << OP.WRITE) | (1 << OP.DESCRIBE)


def test_create_is_idempotent_and_delete_removes_from_the_index() -> None:
    a = authorizer(acl("p-", pattern=PRE), acl("p-", pattern=PRE))
    assert len(a) == 1
    assert a.authorize(ALICE, HOST, OP.READ, TOPIC, "p-1")
    from kbroker.acl.model import AclFilter

    removed = a.delete([AclFilter(TOPIC, "p-1", PatternType.MATCH, None, None, OP.ANY, PermissionType.ANY)])
    assert removed == [[acl("p-", pattern=PRE)]]
    assert len(a) == 0
    assert not a.authorize(ALICE, HOST, OP.READ, TOPIC, "p-1")
    assert a._types == {}  # nothing left behind in the index


# -- against a naive model -------------------------------------------------------------------


def naive(acls: set[AclBinding], supers: frozenset[str], everyone: bool, principal: str, host: str, op: int, rtype: int, name: str) -> bool:
    if principal in supers:
        return True
    applying = [
        a for a in acls
        if a.resource_type == rtype and (
            (a.pattern_type == LIT and a.resource_name in (name, "*"))
            or (a.pattern_type == PRE and name.startswith(a.resource_name))
        )
    ]

    def matches(a: AclBinding) -> bool:
        if a.principal not in (principal, "User:*") or a.host not in (host, "*"):
            return False
        if a.operation in (OP.ALL, op):
            return True
        if a.permission_type != ALLOW:
            return False
        return (op == OP.DESCRIBE and a.operation in IMPLIES_DESCRIBE) or (
            op == OP.DESCRIBE_CONFIGS and a.operation in IMPLIES_DESCRIBE_CONFIGS
        )

    hits = [a for a in applying if matches(a)]
    if any(a.permission_type == DENY for a in hits):
        return False
    if hits:
        return True
    return not applying and everyone


# Names that are prefixes of one another, share prefixes, or sort between each other.
NAMES = st.sampled_from(["", "a", "ab", "abc", "abd", "aab", "ac", "b", "ba", "bab", "*", "a*"])
PRINCIPALS = st.sampled_from([ALICE, "User:bob", "User:*"])
HOSTS = st.sampled_from(["*", HOST, "10.0.0.1"])
OPS = st.sampled_from([OP.ALL, OP.READ, OP.WRITE, OP.DESCRIBE, OP.ALTER, OP.ALTER_CONFIGS, OP.DESCRIBE_CONFIGS, OP.CREATE])
ACLS = st.builds(
    AclBinding, st.sampled_from([TOPIC, GROUP]), NAMES.filter(bool), st.sampled_from([LIT, PRE]),
    PRINCIPALS, HOSTS, OPS, st.sampled_from([ALLOW, DENY]),
)
QUERIES = st.tuples(
    st.sampled_from([ALICE, "User:bob", "User:admin"]), st.sampled_from([HOST, "10.0.0.1"]),
    OPS.filter(lambda o: o != OP.ALL), st.sampled_from([TOPIC, GROUP]), NAMES.filter(bool),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ACLS, max_size=12), st.lists(ACLS, max_size=6), st.booleans(), st.lists(QUERIES, min_size=1, max_size=10))
def test_indexed_decision_equals_a_scan_of_every_acl_across_changes(
    acls: list[AclBinding], removed: list[AclBinding], everyone: bool, queries: list[tuple[str, str, int, int, str]]
) -> None:
    supers = frozenset({"User:admin"})
    a = StandardAuthorizer(supers, everyone)
    for principal, host, op, rtype, name in queries:  # decided (and memoized) with no ACL
        assert a.authorize(principal, host, op, rtype, name) == everyone or principal in supers
    a.create(acls + removed)
    before = set(acls) | set(removed)
    for principal, host, op, rtype, name in queries:  # every change is seen at once
        assert a.authorize(principal, host, op, rtype, name) == naive(before, supers, everyone, principal, host, op, rtype, name)
    from kbroker.acl.model import AclFilter

    a.delete([AclFilter(r.resource_type, r.resource_name, r.pattern_type, r.principal, r.host, r.operation, r.permission_type) for r in removed])
    model = set(acls) - set(removed)
    assert len(a) == len(model)
    for principal, host, op, rtype, name in queries:
        assert a.authorize(principal, host, op, rtype, name) == naive(model, supers, everyone, principal, host, op, rtype, name)
