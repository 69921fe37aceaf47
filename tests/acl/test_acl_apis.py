"""CreateAcls, DescribeAcls and DeleteAcls over a real socket, every served version (1-3),
with the errors Kafka 4 gives: SECURITY_DISABLED without an authorizer,
CLUSTER_AUTHORIZATION_FAILED without ALTER/DESCRIBE on the cluster, INVALID_REQUEST for a bad
ACL or filter.  The raw client is User:ANONYMOUS (no authentication on this listener)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from acl_harness import ANONYMOUS, Secured, cluster_acl
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_acls_request import AclCreation, CreateAclsRequest
from kbroker.wire.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from kbroker.wire.messages.describe_acls_request import DescribeAclsRequest

from kbroker.acl.model import AclOperation as Op
from kbroker.acl.model import PatternType as Pt
from kbroker.acl.model import PermissionType as Perm
from kbroker.acl.model import ResourceType as Rt
from kbroker.testing import BrokerThread

VERSIONS = [1, 2, 3]
Connect = Callable[[BrokerThread], RawClient]


def creation(name: str, pattern: int = Pt.LITERAL, op: int = Op.READ, perm: int = Perm.ALLOW, rtype: int = Rt.TOPIC, principal: str = "User:alice") -> AclCreation:
    return AclCreation(resource_type=rtype, resource_name=name, resource_pattern_type=pattern, principal=principal, host="*", operation=op, permission_type=perm)


def describe_all(pattern: int = Pt.ANY, name: str | None = None, rtype: int = Rt.ANY) -> DescribeAclsRequest:
    return DescribeAclsRequest(
        resource_type_filter=rtype, resource_name_filter=name, pattern_type_filter=pattern,
        principal_filter=None, host_filter=None, operation=Op.ANY, permission_type=Perm.ANY,
    )


def delete_filter(name: str | None, pattern: int = Pt.ANY, rtype: int = Rt.ANY) -> DeleteAclsFilter:
    return DeleteAclsFilter(
        resource_type_filter=rtype, resource_name_filter=name, pattern_type_filter=pattern,
        principal_filter=None, host_filter=None, operation=Op.ANY, permission_type=Perm.ANY,
    )


def listed(resp) -> set[tuple[int, str, int, str, int, int]]:  # type: ignore[no-untyped-def]
    assert resp.error_code == ErrorCode.NONE, resp
    return {(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.operation, a.permission_type) for r in resp.resources for a in r.acls}


@pytest.mark.parametrize("version", VERSIONS)
def test_create_describe_delete_round_trip(secured: Secured, connect: Connect, version: int) -> None:
    c = connect(secured(super_users=ANONYMOUS))
    created = c.request(CreateAclsRequest(creations=[
        creation("orders"), creation("pay-", Pt.PREFIXED, Op.WRITE), creation("g", rtype=Rt.GROUP, perm=Perm.DENY),
    ]), version)
    assert [r.error_code for r in created.results] == [0, 0, 0]
    everything = listed(c.request(describe_all(), version))
    assert everything == {
        (Rt.TOPIC, "orders", Pt.LITERAL, "User:alice", Op.READ, Perm.ALLOW),
        (Rt.TOPIC, "pay-", Pt.PREFIXED, "User:alice", Op.WRITE, Perm.ALLOW),
        (Rt.GROUP, "g", Pt.LITERAL, "User:alice", Op.READ, Perm.DENY),
    }
    # MATCH: the ACLs that apply to topic pay-eu
    assert listed(c.request(describe_all(Pt.MATCH, "pay-eu", Rt.TOPIC), version)) == {
        (Rt.TOPIC, "pay-", Pt.PREFIXED, "User:alice", Op.WRITE, Perm.ALLOW)
    }
    deleted = c.request(DeleteAclsRequest(filters=[delete_filter("orders", Pt.LITERAL), delete_filter(None, rtype=Rt.GROUP)]), version)
    assert [r.error_code for r in deleted.filter_results] == [0, 0]
    assert [[m.resource_name for m in r.matching_acls] for r in deleted.filter_results] == [["orders"], ["g"]]
    assert {a[1] for a in listed(c.request(describe_all(), version))} == {"pay-"}


@pytest.mark.parametrize("version", VERSIONS)
def test_invalid_creations_and_filters_are_invalid_request(secured: Secured, connect: Connect, version: int) -> None:
    c = connect(secured(super_users=ANONYMOUS))
    created = c.request(CreateAclsRequest(creations=[
        creation("other", rtype=Rt.CLUSTER), creation("t", Pt.MATCH), creation("t", principal="alice"), creation("ok"),
    ]), version)
    assert [r.error_code for r in created.results] == [ErrorCode.INVALID_REQUEST] * 3 + [ErrorCode.NONE]
    assert created.results[0].error_message == "The only valid name for the CLUSTER resource is kafka-cluster"
    bad = describe_all()
    bad.operation = 0  # UNKNOWN
    assert c.request(bad, version).error_code == ErrorCode.INVALID_REQUEST
    bad_filter = delete_filter(None)
    bad_filter.permission_type = 0
    deleted = c.request(DeleteAclsRequest(filters=[bad_filter, delete_filter("ok", Pt.LITERAL)]), version)
    assert [r.error_code for r in deleted.filter_results] == [ErrorCode.INVALID_REQUEST, ErrorCode.NONE]
    assert [m.resource_name for m in deleted.filter_results[1].matching_acls] == ["ok"]


@pytest.mark.parametrize("version", VERSIONS)
def test_without_cluster_acls_the_apis_are_refused(secured: Secured, connect: Connect, version: int) -> None:
    c = connect(secured())
    assert c.request(CreateAclsRequest(creations=[creation("t")]), version).results[0].error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    assert c.request(describe_all(), version).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    deleted = c.request(DeleteAclsRequest(filters=[delete_filter(None)]), version)
    assert deleted.filter_results[0].error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED


def test_describe_needs_only_describe_and_alter_implies_it(secured: Secured, connect: Connect) -> None:
    c = connect(secured(seed=(cluster_acl(ANONYMOUS, Op.DESCRIBE),)))
    assert len(listed(c.request(describe_all(), 3))) == 1
    assert c.request(CreateAclsRequest(creations=[creation("t")]), 3).results[0].error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED


@pytest.mark.parametrize("version", VERSIONS)
def test_without_an_authorizer_security_is_disabled(tmp_path: Path, version: int) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    c = RawClient(bt.address)
    try:
        assert c.request(CreateAclsRequest(creations=[creation("t")]), version).results[0].error_code == ErrorCode.SECURITY_DISABLED
        assert c.request(describe_all(), version).error_code == ErrorCode.SECURITY_DISABLED
        assert c.request(DeleteAclsRequest(filters=[delete_filter(None)]), version).filter_results[0].error_code == ErrorCode.SECURITY_DISABLED
    finally:
        c.close()
        bt.close()


def test_acls_survive_a_restart(secured: Secured, connect: Connect) -> None:
    bt = secured(super_users=ANONYMOUS)
    c = connect(bt)
    c.request(CreateAclsRequest(creations=[creation("kept", Pt.PREFIXED)]), 3)
    c.close()
    bt.restart()
    c2 = connect(bt)
    assert {a[1] for a in listed(c2.request(describe_all(), 3))} == {"kept"}
