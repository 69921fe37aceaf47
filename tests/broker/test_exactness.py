"""Exactness against Kafka 4.x found by running client libraries' own test suites (issue 10).

Raw requests over a real socket:
- OffsetCommit / TxnOffsetCommit for partitions that do not exist answer
  UNKNOWN_TOPIC_OR_PARTITION (Kafka's KafkaApis checks existence before the coordinator),
  for every version served, and commit nothing for them;
- IncrementalAlterConfigs SUBTRACT may leave ``cleanup.policy`` empty (Kafka 4.2: an empty
  list is allowed and means no cleanup at all), and DescribeConfigs then reports ``""``;
- DescribeConfigs answers no synonyms unless include_synonyms is set, at every version.
"""

from __future__ import annotations

from pathlib import Path

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.add_offsets_to_txn_request import AddOffsetsToTxnRequest
from kbroker.wire.messages.create_topics_request import (
    CreatableTopic,
    CreatableTopicConfig,
    CreateTopicsRequest,
)
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig,
    AlterConfigsResource,
    IncrementalAlterConfigsRequest,
)
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.offset_fetch_request import OffsetFetchRequest, OffsetFetchRequestTopic
from kbroker.wire.messages.txn_offset_commit_request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

from kbroker.testing import BrokerThread

UNKNOWN = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
RESOURCE_TOPIC, RESOURCE_BROKER = 2, 4
OP_SET, OP_DELETE, OP_APPEND, OP_SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC_CONFIG = 1


def create(c: RawClient, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
    topic = CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=-1,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
    )
    result = c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 7).topics[0]
    assert result.error_code == ErrorCode.NONE, result


def find_coordinator(c: RawClient, key: str, key_type: int = 0) -> None:
    assert c.request(FindCoordinatorRequest(key=key, key_type=key_type), 3).error_code == ErrorCode.NONE


def commit(c: RawClient, group: str, offsets: dict[str, dict[int, int]], version: int) -> dict[tuple[str, int], int]:
    req = OffsetCommitRequest(
        group_id=group,
        generation_id_or_member_epoch=-1,
        member_id="",
        topics=[
            OffsetCommitRequestTopic(
                name=name, partitions=[OffsetCommitRequestPartition(partition_index=p, committed_offset=o) for p, o in parts.items()]
            )
            for name, parts in offsets.items()
        ],
    )
    resp = c.request(req, version)
    return {(t.name, p.partition_index): p.error_code for t in resp.topics for p in t.partitions}


def committed(c: RawClient, group: str, topic: str, partitions: list[int]) -> dict[int, int]:
    req = OffsetFetchRequest(group_id=group, topics=[OffsetFetchRequestTopic(name=topic, partition_indexes=partitions)])
    resp = c.request(req, 7)
    assert resp.error_code == ErrorCode.NONE
    return {p.partition_index: p.committed_offset for t in resp.topics for p in t.partitions}


# -- OffsetCommit ----------------------------------------------------------------------------


def test_offset_commit_to_a_missing_topic_or_partition_is_refused_at_every_version(client: RawClient) -> None:
    create(client, "real", 2)
    find_coordinator(client, "g")
    for version in range(2, 10):
        group = f"g{version}"
        answers = commit(client, group, {"real": {0: 10 + version, 1: 20, 2: 30, 99: 40}, "ghost": {0: 50, 1: 60}}, version)
        assert answers == {
            ("real", 0): ErrorCode.NONE,
            ("real", 1): ErrorCode.NONE,
            ("real", 2): UNKNOWN,
            ("real", 99): UNKNOWN,
            ("ghost", 0): UNKNOWN,
            ("ghost", 1): UNKNOWN,
        }, version
        assert committed(client, group, "real", [0, 1, 2]) == {0: 10 + version, 1: 20, 2: -1}
        assert committed(client, group, "ghost", [0, 1]) == {0: -1, 1: -1}


def test_offset_commit_naming_only_missing_partitions_leaves_the_group_alone(client: RawClient) -> None:
    """Kafka does not hand such a request to the coordinator: no generation check (a
    stale generation would otherwise be ILLEGAL_GENERATION) and nothing stored."""
    find_coordinator(client, "lonely")
    req = OffsetCommitRequest(
        group_id="lonely",
        generation_id_or_member_epoch=7,
        member_id="nobody",
        topics=[OffsetCommitRequestTopic(name="ghost", partitions=[OffsetCommitRequestPartition(partition_index=0, committed_offset=5)])],
    )
    resp = client.request(req, 8)
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in resp.topics] == [("ghost", [(0, UNKNOWN)])]
    assert committed(client, "lonely", "ghost", [0]) == {0: -1}
    # Generation -1 (admin, simple consumer) would create a simple group; with nothing that
    # exists to commit, or nothing at all, Kafka creates none.
    for group, topics in (("simple-ghost", req.topics), ("simple-empty", [])):
        plain = OffsetCommitRequest(group_id=group, generation_id_or_member_epoch=-1, member_id="", topics=topics)
        assert [p.error_code for t in client.request(plain, 8).topics for p in t.partitions] == [UNKNOWN] * len(topics)
    listed = {g.group_id for g in client.request(ListGroupsRequest(), 4).groups}
    assert not listed & {"lonely", "simple-ghost", "simple-empty"}, listed


# -- TxnOffsetCommit -------------------------------------------------------------------------


def txn_commit(c: RawClient, pid: int, epoch: int, offsets: dict[str, list[int]], version: int) -> dict[tuple[str, int], int]:
    req = TxnOffsetCommitRequest(
        transactional_id="tx",
        group_id="txg",
        producer_id=pid,
        producer_epoch=epoch,
        generation_id=-1,
        member_id="",
        topics=[
            TxnOffsetCommitRequestTopic(name=name, partitions=[TxnOffsetCommitRequestPartition(partition_index=p, committed_offset=7) for p in parts])
            for name, parts in offsets.items()
        ],
    )
    resp = c.request(req, version)
    return {(t.name, p.partition_index): p.error_code for t in resp.topics for p in t.partitions}


def test_txn_offset_commit_checks_partitions_exist_before_the_transaction(client: RawClient) -> None:
    create(client, "real", 1)
    find_coordinator(client, "tx", key_type=1)
    # No transaction at all: missing partitions are refused as such, whatever the producer.
    for version in range(4):
        assert txn_commit(client, 4242, 0, {"ghost": [0, 1], "real": [3]}, version) == {
            ("ghost", 0): UNKNOWN,
            ("ghost", 1): UNKNOWN,
            ("real", 3): UNKNOWN,
        }, version
    # A real transaction: existing partitions commit, missing ones are refused.
    pid = client.request(InitProducerIdRequest(transactional_id="tx", transaction_timeout_ms=60000), 4)
    assert pid.error_code == ErrorCode.NONE
    find_coordinator(client, "txg")
    added = client.request(
        AddOffsetsToTxnRequest(transactional_id="tx", producer_id=pid.producer_id, producer_epoch=pid.producer_epoch, group_id="txg"), 3
    )
    assert added.error_code == ErrorCode.NONE
    assert txn_commit(client, pid.producer_id, pid.producer_epoch, {"real": [0, 1], "ghost": [0]}, 3) == {
        ("real", 0): ErrorCode.NONE,
        ("real", 1): UNKNOWN,
        ("ghost", 0): UNKNOWN,
    }


# -- IncrementalAlterConfigs / DescribeConfigs --------------------------------------------------


def alter(c: RawClient, topic: str, name: str, op: int, value: str | None) -> tuple[int, str | None]:
    req = IncrementalAlterConfigsRequest(
        resources=[
            AlterConfigsResource(
                resource_type=RESOURCE_TOPIC, resource_name=topic, configs=[AlterableConfig(name=name, config_operation=op, value=value)]
            )
        ]
    )
    r = c.request(req, 1).responses[0]
    return r.error_code, r.error_message


def describe(c: RawClient, resource_type: int, name: str, version: int = 4, *, synonyms: bool = True, keys: list[str] | None = None):
    req = DescribeConfigsRequest(
        resources=[DescribeConfigsResource(resource_type=resource_type, resource_name=name, configuration_keys=keys)],
        include_synonyms=synonyms,
    )
    result = c.request(req, version).results[0]
    assert result.error_code == ErrorCode.NONE, result
    return {e.name: e for e in result.configs}


def test_subtract_may_empty_cleanup_policy(broker_thread: BrokerThread, client: RawClient) -> None:
    create(client, "keep", 1, {"cleanup.policy": "compact,delete"})
    assert alter(client, "keep", "cleanup.policy", OP_SUBTRACT, "compact") == (ErrorCode.NONE, None)
    assert alter(client, "keep", "cleanup.policy", OP_SUBTRACT, "delete") == (ErrorCode.NONE, None)
    entry = describe(client, RESOURCE_TOPIC, "keep", keys=["cleanup.policy"])["cleanup.policy"]
    assert (entry.value, entry.config_source) == ("", DYNAMIC_TOPIC_CONFIG)
    # Neither deletion nor compaction: the log keeps everything.
    assert broker_thread.broker is not None
    log = broker_thread.broker.topics.log("keep", 0)
    assert log is not None and not log.config.deletes_by_retention
    # Set explicitly to the empty list, and back by APPEND.
    assert alter(client, "keep", "cleanup.policy", OP_SET, "")[0] == ErrorCode.NONE
    assert alter(client, "keep", "cleanup.policy", OP_APPEND, "delete")[0] == ErrorCode.NONE
    assert describe(client, RESOURCE_TOPIC, "keep", keys=["cleanup.policy"])["cleanup.policy"].value == "delete"
    # Values outside the list are still refused.
    assert alter(client, "keep", "cleanup.policy", OP_SET, "shred")[0] == ErrorCode.INVALID_CONFIG


def test_describe_configs_sends_synonyms_only_when_asked_at_every_version(tmp_path: Path) -> None:
    # A static broker override and a topic override make every synonym chain non-trivial.
    bt = BrokerThread(tmp_path / "d", {"log.retention.ms": "7200000"})
    bt.start()
    c = RawClient(bt.address)
    try:
        create(c, "syn", 1, {"retention.ms": "5000"})
        node = str(bt.broker.config.node_id) if bt.broker else "1"
        for version in range(1, 5):
            for resource_type, name in ((RESOURCE_TOPIC, "syn"), (RESOURCE_BROKER, node)):
                for keys in (None, ["retention.ms", "log.retention.ms"]):
                    plain = describe(c, resource_type, name, version, synonyms=False, keys=keys)
                    assert plain and all(e.synonyms == [] for e in plain.values()), (version, resource_type, keys)
                    full = describe(c, resource_type, name, version, synonyms=True, keys=keys)
                    assert any(e.synonyms for e in full.values()), (version, resource_type, keys)
    finally:
        c.close()
        bt.close()
