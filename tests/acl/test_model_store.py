"""ACL filters (Kafka's AclBindingFilter matching), creation checks and the durable store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kbroker.acl.authorizer import StandardAuthorizer
from kbroker.acl.model import (
    AclBinding,
    AclFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    binding_error,
    new_binding,
)
from kbroker.acl.store import ACL_FILE, AclStore, AclStoreError

T, G = ResourceType.TOPIC, ResourceType.GROUP
LIT, PRE, MATCH, ANY = PatternType.LITERAL, PatternType.PREFIXED, PatternType.MATCH, PatternType.ANY
READ = AclOperation.READ
ALLOW = PermissionType.ALLOW


def b(name: str, pattern: int = LIT, rtype: int = T, principal: str = "User:a") -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, "*", READ, ALLOW)


def f(name: str | None, pattern: int, rtype: int = ResourceType.ANY, principal: str | None = None) -> AclFilter:
    return AclFilter(rtype, name, pattern, principal, None, AclOperation.ANY, PermissionType.ANY)


def test_match_filter_finds_every_pattern_that_covers_the_name() -> None:
    acls = [b("orders"), b("*"), b("ord", PRE), b("x", PRE), b("orders2")]
    got = [a for a in acls if f("orders", MATCH).matches(a)]
    assert got == [b("orders"), b("*"), b("ord", PRE)]


def test_literal_prefixed_and_any_filters_compare_names_exactly() -> None:
    acls = [b("orders"), b("*"), b("ord", PRE), b("orders", PRE)]
    assert [a for a in acls if f("orders", LIT).matches(a)] == [b("orders")]
    assert [a for a in acls if f("orders", PRE).matches(a)] == [b("orders", PRE)]
    assert [a for a in acls if f("orders", ANY).matches(a)] == [b("orders"), b("orders", PRE)]
    assert [a for a in acls if f("*", LIT).matches(a)] == [b("*")]
    assert all(f(None, ANY).matches(a) for a in acls)


def test_entry_filters_are_exact_and_resource_type_any_matches_all() -> None:
    assert f(None, ANY, principal="User:*").matches(b("t", principal="User:*"))
    assert not f(None, ANY, principal="User:*").matches(b("t"))
    assert not f(None, ANY, rtype=G).matches(b("t"))
    assert f(None, ANY, rtype=ResourceType.ANY).matches(b("t", rtype=G))


def test_unknown_codes_make_an_unknown_filter() -> None:
    assert AclFilter.of(99, None, ANY, None, None, 1, 1).unknown_element()
    assert not AclFilter.of(1, None, ANY, None, None, 1, 1).unknown_element()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((ResourceType.CLUSTER, "other", LIT), "The only valid name for the CLUSTER resource is kafka-cluster"),
        ((T, "", LIT), "Invalid empty resource name"),
        ((ResourceType.ANY, "t", LIT), "Invalid resourceType ANY"),
        ((T, "t", MATCH), "Invalid patternType MATCH"),
        ((T, "t", 77), "Invalid patternType UNKNOWN"),
    ],
)
def test_creation_checks(args: tuple[int, str, int], message: str) -> None:
    assert binding_error(new_binding(*args, "User:a", "*", READ, ALLOW)) == message


def test_creation_checks_principal_operation_permission() -> None:
    assert "no colon" in (binding_error(new_binding(T, "t", LIT, "alice", "*", READ, ALLOW)) or "")
    assert binding_error(new_binding(T, "t", LIT, "User:a", "*", AclOperation.ANY, ALLOW)) == "Invalid operation ANY"
    assert binding_error(new_binding(T, "t", LIT, "User:a", "*", READ, PermissionType.ANY)) == "Invalid permissionType ANY"
    assert binding_error(new_binding(ResourceType.CLUSTER, "kafka-cluster", LIT, "User:a", "*", READ, ALLOW)) is None


def test_store_round_trip_and_reload(tmp_path: Path) -> None:
    store = AclStore(tmp_path)
    a = StandardAuthorizer((), False, store)
    a.create([b("t"), b("p-", PRE)])
    again = StandardAuthorizer((), False, AclStore(tmp_path))
    assert again.describe(f(None, ANY)) == a.describe(f(None, ANY))
    assert again.authorize("User:a", "h", READ, T, "p-x")
    again.delete([f("t", LIT)])
    assert [x.resource_name for x in StandardAuthorizer((), False, AclStore(tmp_path)).describe(f(None, ANY))] == ["p-"]


def test_store_leftover_temp_file_is_ignored(tmp_path: Path) -> None:
    AclStore(tmp_path).save([b("t")])
    (tmp_path / (ACL_FILE + ".tmp")).write_bytes(b'{"half')  # a crash mid-write of the next version
    assert AclStore(tmp_path).load() == [b("t")]


def test_store_refuses_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / ACL_FILE).write_text("not json")
    with pytest.raises(AclStoreError, match="not a kbroker ACL file"):
        AclStore(tmp_path).load()
    (tmp_path / ACL_FILE).write_text(json.dumps({"version": 1, "acls": [[2, "", 3, "User:a", "*", 3, 3]]}))
    with pytest.raises(AclStoreError, match="Invalid empty resource name"):
        AclStore(tmp_path).load()


def test_a_failed_write_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    a = StandardAuthorizer((), False, AclStore(data))
    a.create([b("t")])
    (data / ACL_FILE).unlink()
    (data / ACL_FILE).mkdir()  # os.replace onto a directory fails
    with pytest.raises(OSError):
        a.create([b("u")])
    assert not a.authorize("User:a", "h", READ, T, "u")
    with pytest.raises(OSError):
        a.delete([f("t", LIT)])
    assert a.authorize("User:a", "h", READ, T, "t")
