"""Every served API refuses with Kafka's error when the principal has no ACL at all
(authorizer on, no super user, ``allow.everyone.if.no.acl.found=false``), and the same request
from a super user is not refused: the error comes from the ACL check, nothing else.

Each case is (request, version, how to read the error code from the answer, expected code).
Topic ``t`` exists on both brokers (created in-process, as no one may create it over the wire).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from acl_harness import ANONYMOUS
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages import add_offsets_to_txn_request as aot
from kbroker.wire.messages import create_partitions_request as cp
from kbroker.wire.messages import delete_records_request as dr
from kbroker.wire.messages import describe_configs_request as dc
from kbroker.wire.messages import describe_groups_request as dg
from kbroker.wire.messages import describe_log_dirs_request as dld
from kbroker.wire.messages import describe_producers_request as dp
from kbroker.wire.messages import describe_quorum_request as dq
from kbroker.wire.messages import describe_transactions_request as dt
from kbroker.wire.messages import elect_leaders_request as el
from kbroker.wire.messages import end_txn_request as et
from kbroker.wire.messages import find_coordinator_request as fc
from kbroker.wire.messages import incremental_alter_configs_request as iac
from kbroker.wire.messages import join_group_request as jg
from kbroker.wire.messages import list_offsets_request as lo
from kbroker.wire.messages import list_partition_reassignments_request as lpr
from kbroker.wire.messages import offset_delete_request as od
from kbroker.wire.messages import offset_fetch_request as of
from kbroker.wire.messages import txn_offset_commit_request as toc

from kbroker.config import STANDARD_AUTHORIZER
from kbroker.testing import BrokerThread

E = ErrorCode
TOPIC_DENIED, GROUP_DENIED = E.TOPIC_AUTHORIZATION_FAILED, E.GROUP_AUTHORIZATION_FAILED
CLUSTER_DENIED, TXN_DENIED = E.CLUSTER_AUTHORIZATION_FAILED, E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
AUTHORIZATION_ERRORS = {TOPIC_DENIED, GROUP_DENIED, CLUSTER_DENIED, TXN_DENIED}

Case = tuple[Any, int, Callable[[Any], int], int]
CASES: dict[str, Case] = {
    "ListOffsets": (lo.ListOffsetsRequest(replica_id=-1, topics=[lo.ListOffsetsTopic(name="t", partitions=[lo.ListOffsetsPartition(partition_index=0, timestamp=-1)])]), 7,
                    lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    "DeleteRecords": (dr.DeleteRecordsRequest(topics=[dr.DeleteRecordsTopic(name="t", partitions=[dr.DeleteRecordsPartition(partition_index=0, offset=0)])], timeout_ms=5000), 2,
                      lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    "DescribeProducers": (dp.DescribeProducersRequest(topics=[dp.TopicRequest(name="t", partition_indexes=[0])]), 0,
                          lambda r: r.topics[0].partitions[0].error_code, TOPIC_DENIED),
    "CreatePartitions": (cp.CreatePartitionsRequest(topics=[cp.CreatePartitionsTopic(name="t", count=2, assignments=None)], timeout_ms=5000, validate_only=True), 3,
                         lambda r: r.results[0].error_code, TOPIC_DENIED),
    "DescribeConfigs topic": (dc.DescribeConfigsRequest(resources=[dc.DescribeConfigsResource(resource_type=2, resource_name="t", configuration_keys=None)]), 4,
                              lambda r: r.results[0].error_code, TOPIC_DENIED),
    "DescribeConfigs broker": (dc.DescribeConfigsRequest(resources=[dc.DescribeConfigsResource(resource_type=4, resource_name="1", configuration_keys=None)]), 4,
                               lambda r: r.results[0].error_code, CLUSTER_DENIED),
    "IncrementalAlterConfigs": (iac.IncrementalAlterConfigsRequest(resources=[iac.AlterConfigsResource(resource_type=2, resource_name="t", configs=[iac.AlterableConfig(name="retention.ms", config_operation=0, value="1000")])], validate_only=True), 1,
                                lambda r: r.responses[0].error_code, TOPIC_DENIED),
    "FindCoordinator group": (fc.FindCoordinatorRequest(key_type=0, coordinator_keys=["g"]), 4, lambda r: r.coordinators[0].error_code, GROUP_DENIED),
    "FindCoordinator txn": (fc.FindCoordinatorRequest(key="tx", key_type=1), 3, lambda r: r.error_code, TXN_DENIED),
    "JoinGroup": (jg.JoinGroupRequest(group_id="g", session_timeout_ms=10000, rebalance_timeout_ms=10000, member_id="", protocol_type="consumer",
                                      protocols=[jg.JoinGroupRequestProtocol(name="range", metadata=b"")]), 5, lambda r: r.error_code, GROUP_DENIED),
    "DescribeGroups": (dg.DescribeGroupsRequest(groups=["g"], include_authorized_operations=True), 5, lambda r: r.groups[0].error_code, GROUP_DENIED),
    "OffsetFetch v7": (of.OffsetFetchRequest(group_id="g", topics=None), 7, lambda r: r.error_code, GROUP_DENIED),
    "OffsetFetch v8": (of.OffsetFetchRequest(groups=[of.OffsetFetchRequestGroup(group_id="g", topics=None)]), 8, lambda r: r.groups[0].error_code, GROUP_DENIED),
    "OffsetDelete": (od.OffsetDeleteRequest(group_id="g", topics=[od.OffsetDeleteRequestTopic(name="t", partitions=[od.OffsetDeleteRequestPartition(partition_index=0)])]), 0,
                     lambda r: r.error_code, GROUP_DENIED),
    "AddOffsetsToTxn": (aot.AddOffsetsToTxnRequest(transactional_id="tx", producer_id=1, producer_epoch=0, group_id="g"), 3, lambda r: r.error_code, TXN_DENIED),
    "EndTxn": (et.EndTxnRequest(transactional_id="tx", producer_id=1, producer_epoch=0, committed=True), 3, lambda r: r.error_code, TXN_DENIED),
    "TxnOffsetCommit": (toc.TxnOffsetCommitRequest(transactional_id="tx", group_id="g", producer_id=1, producer_epoch=0, topics=[
        toc.TxnOffsetCommitRequestTopic(name="t", partitions=[toc.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=0)])]), 3,
        lambda r: r.topics[0].partitions[0].error_code, TXN_DENIED),
    "DescribeTransactions": (dt.DescribeTransactionsRequest(transactional_ids=["tx"]), 0, lambda r: r.transaction_states[0].error_code, TXN_DENIED),
    "DescribeLogDirs": (dld.DescribeLogDirsRequest(topics=None), 4, lambda r: r.error_code, CLUSTER_DENIED),
    "DescribeQuorum": (dq.DescribeQuorumRequest(topics=[dq.TopicData(topic_name="__cluster_metadata", partitions=[dq.PartitionData(partition_index=0)])]), 2,
                       lambda r: r.error_code, CLUSTER_DENIED),
    "ElectLeaders": (el.ElectLeadersRequest(election_type=0, topic_partitions=[el.TopicPartitions(topic="t", partitions=[0])]), 2, lambda r: r.error_code, CLUSTER_DENIED),
    "ListPartitionReassignments": (lpr.ListPartitionReassignmentsRequest(topics=None), 0, lambda r: r.error_code, CLUSTER_DENIED),
}


def _broker(data_dir: Any, settings: dict[str, str]) -> BrokerThread:
    bt = BrokerThread(data_dir, {"authorizer.class.name": STANDARD_AUTHORIZER, **settings})
    bt.start()

    async def make_topic() -> None:
        assert bt.broker is not None
        bt.broker.topics.create_topic("t", 1, {}, 0)

    bt.call(make_topic())
    return bt


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RawClient]]:
    base = tmp_path_factory.mktemp("denied")
    brokers = {"nobody": _broker(base / "nobody", {}), "super": _broker(base / "super", {"super.users": ANONYMOUS})}
    made = {name: RawClient(bt.address) for name, bt in brokers.items()}
    yield made
    for c in made.values():
        c.close()
    for bt in brokers.values():
        bt.close()


@pytest.mark.parametrize("name", list(CASES))
def test_refused_without_acls_and_not_for_a_super_user(clients: dict[str, RawClient], name: str) -> None:
    request, version, code_of, expected = CASES[name]
    assert code_of(clients["nobody"].request(request, version)) == expected
    assert code_of(clients["super"].request(request, version)) not in AUTHORIZATION_ERRORS
