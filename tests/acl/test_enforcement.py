"""Each served API checks the ACL Kafka checks, over a real socket.

The raw client is User:ANONYMOUS.  The broker starts with the authorizer, no super users and
``allow.everyone.if.no.acl.found=false``, and one seed ACL: ANONYMOUS may ALTER the cluster,
so the same connection manages its own ACLs with CreateAcls/DeleteAcls and every decision is
seen to change at once, without reconnecting.  ``PRINCIPAL`` is the principal under test.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from acl_harness import ANONYMOUS, Secured, cluster_acl
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_acls_request import AclCreation, CreateAclsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest
from kbroker.wire.messages.delete_topics_request import DeleteTopicsRequest
from kbroker.wire.messages.describe_cluster_request import DescribeClusterRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.acl.model import AclOperation as Op
from kbroker.acl.model import PatternType as Pt
from kbroker.acl.model import PermissionType as Perm
from kbroker.acl.model import ResourceType as Rt
from kbroker.authz import TOPIC_OPERATIONS
from kbroker.testing import BrokerThread

PRINCIPAL = ANONYMOUS
Connect = Callable[[BrokerThread], RawClient]


@pytest.fixture
def c(secured: Secured, connect: Connect) -> RawClient:
    return connect(secured(seed=(cluster_acl(PRINCIPAL),), allow_everyone_if_no_acl_found="false"))


def grant(c: RawClient, rtype: int, name: str, op: int, pattern: int = Pt.LITERAL, perm: int = Perm.ALLOW) -> None:
    creation = AclCreation(resource_type=rtype, resource_name=name, resource_pattern_type=pattern, principal=PRINCIPAL, host="*", operation=op, permission_type=perm)
    assert c.request(CreateAclsRequest(creations=[creation]), 3).results[0].error_code == ErrorCode.NONE


def revoke(c: RawClient, rtype: int, name: str, op: int) -> None:
    f = DeleteAclsFilter(resource_type_filter=rtype, resource_name_filter=name, pattern_type_filter=Pt.ANY, principal_filter=PRINCIPAL, host_filter=None, operation=op, permission_type=Perm.ANY)
    assert c.request(DeleteAclsRequest(filters=[f]), 3).filter_results[0].matching_acls


def create_topic(c: RawClient, name: str) -> int:
    return c.request(CreateTopicsRequest(topics=[CreatableTopic(name=name, num_partitions=1, replication_factor=-1)], timeout_ms=5000), 7).topics[0].error_code


def produce(c: RawClient, name: str, transactional_id: str | None = None) -> int:
    req = ProduceRequest(acks=-1, timeout_ms=5000, transactional_id=transactional_id, topic_data=[
        TopicProduceData(name=name, partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"v"])))])
    ])
    return c.request(req, 9).responses[0].partition_responses[0].error_code


def fetch(c: RawClient, name: str) -> int:
    req = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0, topics=[
        FetchTopic(topic=name, partitions=[FetchPartition(partition=0, fetch_offset=0, partition_max_bytes=1 << 20)])
    ])
    return c.request(req, 12).responses[0].partitions[0].error_code


def metadata(c: RawClient, names: list[str] | None, auto_create: bool = False):  # type: ignore[no-untyped-def]
    topics = None if names is None else [MetadataRequestTopic(name=n) for n in names]
    req = MetadataRequest(topics=topics, allow_auto_topic_creation=auto_create, include_topic_authorized_operations=True)
    return c.request(req, 12)


def test_produce_denied_then_allowed_then_denied_on_one_connection(c: RawClient) -> None:
    assert create_topic(c, "orders") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(c, Rt.TOPIC, "orders", Op.CREATE)
    assert create_topic(c, "orders") == ErrorCode.NONE
    assert produce(c, "orders") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(c, Rt.TOPIC, "orders", Op.WRITE)
    assert produce(c, "orders") == ErrorCode.NONE
    revoke(c, Rt.TOPIC, "orders", Op.WRITE)
    assert produce(c, "orders") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    # an unknown topic is refused for authorization first, as Kafka does (no existence leak)
    assert produce(c, "nope") == ErrorCode.TOPIC_AUTHORIZATION_FAILED


def test_fetch_needs_read_and_deny_beats_allow(c: RawClient) -> None:
    grant(c, Rt.TOPIC, "*", Op.ALL)
    assert create_topic(c, "secret-1") == ErrorCode.NONE
    assert fetch(c, "secret-1") == ErrorCode.NONE
    grant(c, Rt.TOPIC, "secret-", Op.READ, Pt.PREFIXED, Perm.DENY)
    assert fetch(c, "secret-1") == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert produce(c, "secret-1") == ErrorCode.NONE  # the DENY is for READ only


def test_metadata_hides_undescribable_topics_and_auto_creation_needs_create(c: RawClient) -> None:
    grant(c, Rt.TOPIC, "a", Op.CREATE)
    grant(c, Rt.TOPIC, "b", Op.CREATE)
    assert create_topic(c, "a") == create_topic(c, "b") == ErrorCode.NONE
    grant(c, Rt.TOPIC, "a", Op.WRITE)  # WRITE implies DESCRIBE
    everything = metadata(c, None)
    assert [t.name for t in everything.topics] == ["a"]
    assert everything.topics[0].topic_authorized_operations == (1 << Op.WRITE) | (1 << Op.DESCRIBE) | (1 << Op.CREATE)
    named = {t.name: t.error_code for t in metadata(c, ["a", "b"]).topics}
    assert named == {"a": ErrorCode.NONE, "b": ErrorCode.TOPIC_AUTHORIZATION_FAILED}
    grant(c, Rt.TOPIC, "auto-", Op.DESCRIBE, Pt.PREFIXED)
    assert metadata(c, ["auto-x"], auto_create=True).topics[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    assert metadata(c, ["auto-x"]).topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION  # not created
    grant(c, Rt.TOPIC, "auto-", Op.CREATE, Pt.PREFIXED)
    assert metadata(c, ["auto-x"], auto_create=True).topics[0].error_code == ErrorCode.NONE


def test_delete_topics_needs_delete(c: RawClient) -> None:
    grant(c, Rt.TOPIC, "d", Op.CREATE)
    assert create_topic(c, "d") == ErrorCode.NONE
    req = DeleteTopicsRequest(topic_names=["d"], timeout_ms=5000)
    assert c.request(req, 5).responses[0].error_code == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(c, Rt.TOPIC, "d", Op.DELETE)
    assert c.request(req, 5).responses[0].error_code == ErrorCode.NONE


def test_group_acls_prefixed(c: RawClient) -> None:
    beat = HeartbeatRequest(group_id="app-1", generation_id=1, member_id="m")
    assert c.request(beat, 4).error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED
    grant(c, Rt.GROUP, "app-", Op.READ, Pt.PREFIXED)
    assert c.request(beat, 4).error_code == ErrorCode.UNKNOWN_MEMBER_ID  # past the ACL, to the coordinator
    other = HeartbeatRequest(group_id="web-1", generation_id=1, member_id="m")
    assert c.request(other, 4).error_code == ErrorCode.GROUP_AUTHORIZATION_FAILED


def test_offset_commit_needs_read_on_group_and_topic(c: RawClient) -> None:
    grant(c, Rt.TOPIC, "oc", Op.CREATE)
    assert create_topic(c, "oc") == ErrorCode.NONE

    def commit() -> int:
        req = OffsetCommitRequest(group_id="g", topics=[OffsetCommitRequestTopic(name="oc", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=0)])])
        return c.request(req, 8).topics[0].partitions[0].error_code

    assert commit() == ErrorCode.GROUP_AUTHORIZATION_FAILED
    grant(c, Rt.GROUP, "g", Op.READ)
    assert commit() == ErrorCode.TOPIC_AUTHORIZATION_FAILED
    grant(c, Rt.TOPIC, "oc", Op.READ)
    assert commit() == ErrorCode.NONE


def test_init_producer_id_idempotent_and_transactional(c: RawClient) -> None:
    idempotent = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000)
    assert c.request(idempotent, 4).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    grant(c, Rt.TOPIC, "any-topic", Op.WRITE)  # WRITE on some topic is enough (KIP-679)
    assert c.request(idempotent, 4).error_code == ErrorCode.NONE
    txn = InitProducerIdRequest(transactional_id="tx-1", transaction_timeout_ms=60000)
    assert c.request(txn, 4).error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    grant(c, Rt.TRANSACTIONAL_ID, "tx-", Op.WRITE, Pt.PREFIXED)
    assert c.request(txn, 4).error_code == ErrorCode.NONE
    grant(c, Rt.TOPIC, "tt", Op.CREATE)
    create_topic(c, "tt")
    grant(c, Rt.TOPIC, "tt", Op.WRITE)
    assert produce(c, "tt", transactional_id="other") == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


def test_describe_cluster_and_its_authorized_operations(c: RawClient) -> None:
    resp = c.request(DescribeClusterRequest(include_cluster_authorized_operations=True), 1)
    assert resp.error_code == ErrorCode.NONE  # ALTER implies DESCRIBE
    assert resp.cluster_authorized_operations == (1 << Op.ALTER) | (1 << Op.DESCRIBE)
    revoke(c, Rt.CLUSTER, "kafka-cluster", Op.ALTER)
    assert c.request(DescribeClusterRequest(), 1).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED


def test_without_an_authorizer_every_operation_is_reported(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bt = BrokerThread(tmp_path / "plain")
    bt.start()
    client = RawClient(bt.address)
    try:
        assert create_topic(client, "x") == ErrorCode.NONE
        assert metadata(client, ["x"]).topics[0].topic_authorized_operations == TOPIC_OPERATIONS
    finally:
        client.close()
        bt.close()
