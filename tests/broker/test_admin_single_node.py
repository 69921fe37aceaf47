"""Raw-protocol tests of the single-node admin APIs (issue 12): DescribeTopicPartitions (75),
ElectLeaders (43), AlterPartitionReassignments / ListPartitionReassignments (45/46) and
DescribeQuorum (55), every served version.  Expected answers are a single-node KRaft
Kafka 4.1's."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_partition_reassignments_request import (
    AlterPartitionReassignmentsRequest,
    ReassignablePartition,
    ReassignableTopic,
)
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.describe_log_dirs_request import (
    DescribableLogDirTopic,
    DescribeLogDirsRequest,
)
from kbroker.wire.messages.describe_quorum_request import (
    DescribeQuorumRequest,
    PartitionData,
    TopicData,
)
from kbroker.wire.messages.describe_topic_partitions_request import (
    Cursor,
    DescribeTopicPartitionsRequest,
    TopicRequest,
)
from kbroker.wire.messages.elect_leaders_request import ElectLeadersRequest, TopicPartitions
from kbroker.wire.messages.list_partition_reassignments_request import (
    ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsTopics,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread

NODE_ID = 1
ZERO_UUID = uuid.UUID(int=0)


BIG_CREATE_TIMEOUT_S = 120.0


def create(c: RawClient, name: str, partitions: int) -> None:
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)
    resp = c.request(CreateTopicsRequest(topics=[topic], timeout_ms=5000), 7)
    assert resp.topics[0].error_code == ErrorCode.NONE


def describe(c: RawClient, names: list[str], limit: int = 2000, cursor: tuple[str, int] | None = None):
    req = DescribeTopicPartitionsRequest(
        topics=[TopicRequest(name=n) for n in names],
        response_partition_limit=limit,
        cursor=None if cursor is None else Cursor(topic_name=cursor[0], partition_index=cursor[1]),
    )
    return c.request(req, 0)


def pages(c: RawClient, names: list[str], limit: int) -> list[list[tuple[str, list[int]]]]:
    """Every page of a paginated describe, following next_cursor, as (topic, partitions) lists."""
    out = []
    cursor = None
    for _ in range(100):
        resp = describe(c, names, limit, cursor)
        out.append([(t.name, [p.partition_index for p in t.partitions]) for t in resp.topics])
        if resp.next_cursor is None:
            return out
        cursor = (resp.next_cursor.topic_name, resp.next_cursor.partition_index)
    raise AssertionError("pagination did not end")


# -- DescribeTopicPartitions -----------------------------------------------------------------


def test_describe_topic_partitions_matches_metadata(client: RawClient) -> None:
    create(client, "dtp-a", 3)
    resp = describe(client, ["dtp-a"])
    md = client.request(MetadataRequest(topics=[MetadataRequestTopic(name="dtp-a")]), 12).topics[0]
    assert resp.next_cursor is None
    [topic] = resp.topics
    assert (topic.error_code, topic.name, topic.topic_id, topic.is_internal) == (ErrorCode.NONE, "dtp-a", md.topic_id, False)
    assert topic.topic_id != ZERO_UUID
    assert [p.partition_index for p in topic.partitions] == [0, 1, 2]
    for p, mp in zip(topic.partitions, md.partitions, strict=True):
        assert (p.leader_id, p.leader_epoch, p.replica_nodes, p.isr_nodes) == (NODE_ID, mp.leader_epoch, [NODE_ID], [NODE_ID])
        assert (p.eligible_leader_replicas, p.last_known_elr, p.offline_replicas) == ([], [], [])
    assert topic.topic_authorized_operations > 0


def test_describe_topic_partitions_unknown_and_invalid_names(client: RawClient) -> None:
    create(client, "dtp-b", 1)
    resp = describe(client, ["nope", "dtp-b", "bad/name", "dtp-b"])
    got = [(t.name, t.error_code, t.topic_id, len(t.partitions)) for t in resp.topics]
    assert got == [
        ("bad/name", ErrorCode.INVALID_TOPIC_EXCEPTION, ZERO_UUID, 0),
        ("dtp-b", ErrorCode.NONE, got[1][2], 1),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, ZERO_UUID, 0),
    ]


def test_describe_topic_partitions_all_topics_sorted_without_errors(client: RawClient) -> None:
    for name in ("dtp-z", "dtp-m", "dtp-c"):
        create(client, name, 2)
    resp = describe(client, [])
    assert [t.name for t in resp.topics] == ["dtp-c", "dtp-m", "dtp-z"]
    assert all(t.error_code == ErrorCode.NONE for t in resp.topics)


def test_describe_topic_partitions_pagination_cuts_topics(client: RawClient) -> None:
    create(client, "pg-a", 3)
    create(client, "pg-b", 2)
    create(client, "pg-c", 4)
    assert pages(client, [], 2) == [
        [("pg-a", [0, 1])],
        [("pg-a", [2]), ("pg-b", [0])],
        [("pg-b", [1]), ("pg-c", [0])],
        [("pg-c", [1, 2])],
        [("pg-c", [3])],
    ]
    # The same over a named list (with an unknown name, which takes no room).
    assert pages(client, ["pg-c", "pg-a", "pg-x"], 4) == [
        [("pg-a", [0, 1, 2]), ("pg-c", [0])],
        [("pg-c", [1, 2, 3]), ("pg-x", [])],
    ]


def test_describe_topic_partitions_exact_fill_points_at_next_topic(client: RawClient) -> None:
    create(client, "ex-a", 2)
    create(client, "ex-b", 1)
    resp = describe(client, [], 2)
    assert [t.name for t in resp.topics] == ["ex-a"]
    assert (resp.next_cursor.topic_name, resp.next_cursor.partition_index) == ("ex-b", 0)
    last = describe(client, [], 2, ("ex-b", 0))
    assert [t.name for t in last.topics] == ["ex-b"] and last.next_cursor is None
    # Filling the limit with the last topic leaves no cursor.
    assert describe(client, [], 3).next_cursor is None


def test_describe_topic_partitions_limit_is_at_least_one_and_capped(client: RawClient) -> None:
    create(client, "lim", 3)
    for limit in (0, -5):
        resp = describe(client, ["lim"], limit)
        assert [p.partition_index for p in resp.topics[0].partitions] == [0]
        assert resp.next_cursor.partition_index == 1
    # Creating 2,001 partitions takes seconds (a directory and files each; ~9.5 s on a loaded
    # 2-core machine), more than the harness's default socket timeout: give it room.
    client.sock.settimeout(BIG_CREATE_TIMEOUT_S)
    create(client, "big", 2001)
    resp = describe(client, ["big"], 5000)
    assert len(resp.topics[0].partitions) == 2000
    assert (resp.next_cursor.topic_name, resp.next_cursor.partition_index) == ("big", 2000)


def test_describe_topic_partitions_cursor_errors(client: RawClient) -> None:
    create(client, "cur", 2)
    resp = describe(client, ["cur"], cursor=("other", 0))
    assert [(t.name, t.error_code) for t in resp.topics] == [("cur", ErrorCode.INVALID_REQUEST)]
    resp = describe(client, ["cur"], cursor=("cur", -1))
    assert [(t.name, t.error_code) for t in resp.topics] == [("cur", ErrorCode.INVALID_REQUEST)]
    # A cursor past the topic's end gives the topic with no partitions.
    resp = describe(client, ["cur"], cursor=("cur", 7))
    assert [(t.name, len(t.partitions)) for t in resp.topics] == [("cur", 0)] and resp.next_cursor is None


# -- ElectLeaders ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_existing_and_unknown(client: RawClient, version: int) -> None:
    create(client, "el", 2)
    req = ElectLeadersRequest(
        election_type=0,
        topic_partitions=[TopicPartitions(topic="el", partitions=[0, 1, 2]), TopicPartitions(topic="el-none", partitions=[0])],
        timeout_ms=5000,
    )
    resp = client.request(req, version)
    assert resp.error_code == ErrorCode.NONE
    got = {(r.topic, p.partition_id): p.error_code for r in resp.replica_election_results for p in r.partition_result}
    assert got == {
        ("el", 0): ErrorCode.ELECTION_NOT_NEEDED,
        ("el", 1): ErrorCode.ELECTION_NOT_NEEDED,
        ("el", 2): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("el-none", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }


@pytest.mark.parametrize("version", [1, 2])
def test_elect_leaders_unclean_and_bad_type(client: RawClient, version: int) -> None:
    create(client, "elu", 1)
    parts = [TopicPartitions(topic="elu", partitions=[0])]
    resp = client.request(ElectLeadersRequest(election_type=1, topic_partitions=parts, timeout_ms=5000), version)
    assert resp.replica_election_results[0].partition_result[0].error_code == ErrorCode.ELECTION_NOT_NEEDED
    resp = client.request(ElectLeadersRequest(election_type=7, topic_partitions=parts, timeout_ms=5000), version)
    assert resp.error_code == ErrorCode.INVALID_REQUEST
    assert resp.replica_election_results[0].partition_result[0].error_code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize("version", [0, 1, 2])
def test_elect_leaders_all_partitions_lists_none(client: RawClient, version: int) -> None:
    create(client, "ela", 3)
    resp = client.request(ElectLeadersRequest(election_type=0, topic_partitions=None, timeout_ms=5000), version)
    assert (resp.error_code, resp.replica_election_results) == (ErrorCode.NONE, [])


# -- Alter/ListPartitionReassignments --------------------------------------------------------


def reassign(c: RawClient, parts: list[tuple[str, int, list[int] | None]], version: int, allow_rf: bool = True):
    by_topic: dict[str, list[ReassignablePartition]] = {}
    for name, index, replicas in parts:
        by_topic.setdefault(name, []).append(ReassignablePartition(partition_index=index, replicas=replicas))
    req = AlterPartitionReassignmentsRequest(
        timeout_ms=5000,
        allow_replication_factor_change=allow_rf,
        topics=[ReassignableTopic(name=n, partitions=p) for n, p in by_topic.items()],
    )
    resp = c.request(req, version)
    assert (resp.error_code, resp.error_message) == (ErrorCode.NONE, None)
    return {(t.name, p.partition_index): p.error_code for t in resp.responses for p in t.partitions}


@pytest.mark.parametrize("version", [0, 1])
def test_alter_partition_reassignments(client: RawClient, version: int) -> None:
    create(client, "re", 2)
    got = reassign(client, [("re", 0, [NODE_ID]), ("re", 1, [2]), ("re", 5, [NODE_ID]), ("re-none", 0, None)], version)
    assert got == {
        ("re", 0): ErrorCode.NONE,
        ("re", 1): ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        ("re", 5): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("re-none", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
    }
    assert reassign(client, [("re", 0, [NODE_ID])], version) == {("re", 0): ErrorCode.NONE}
    assert reassign(client, [("re", 0, None)], version) == {("re", 0): ErrorCode.NO_REASSIGNMENT_IN_PROGRESS}
    for bad in ([2], [], [NODE_ID, NODE_ID], [NODE_ID, 2], [-1]):
        assert reassign(client, [("re", 1, bad)], version) == {("re", 1): ErrorCode.INVALID_REPLICA_ASSIGNMENT}, bad


def test_alter_partition_reassignments_v1_replication_factor_flag(client: RawClient) -> None:
    create(client, "rf", 1)
    assert reassign(client, [("rf", 0, [NODE_ID])], 1, allow_rf=False) == {("rf", 0): ErrorCode.NONE}
    assert reassign(client, [("rf", 0, [NODE_ID, 2])], 1, allow_rf=False) == {("rf", 0): ErrorCode.INVALID_REPLICA_ASSIGNMENT}


def test_list_partition_reassignments_reports_none(client: RawClient) -> None:
    create(client, "lr", 2)
    assert reassign(client, [("lr", 0, [NODE_ID])], 1) == {("lr", 0): ErrorCode.NONE}
    for topics in (None, [ListPartitionReassignmentsTopics(name="lr", partition_indexes=[0, 1]),
                          ListPartitionReassignmentsTopics(name="lr-none", partition_indexes=[0])]):
        resp = client.request(ListPartitionReassignmentsRequest(timeout_ms=5000, topics=topics), 0)
        assert (resp.error_code, resp.error_message, resp.topics) == (ErrorCode.NONE, None, [])


# -- DescribeQuorum --------------------------------------------------------------------------


def quorum_request(topic: str = "__cluster_metadata", partitions: tuple[int, ...] = (0,)) -> DescribeQuorumRequest:
    return DescribeQuorumRequest(
        topics=[TopicData(topic_name=topic, partitions=[PartitionData(partition_index=i) for i in partitions])]
    )


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_single_voter(broker_thread: BrokerThread, client: RawClient, version: int) -> None:
    before = client.request(quorum_request(), version)
    assert before.error_code == ErrorCode.NONE
    [topic] = before.topics
    [part] = topic.partitions
    assert (topic.topic_name, part.partition_index, part.error_code, part.leader_id) == ("__cluster_metadata", 0, 0, NODE_ID)
    assert part.leader_epoch >= 1 and part.observers == []
    [voter] = part.current_voters
    assert voter.replica_id == NODE_ID
    assert voter.log_end_offset == part.high_watermark > 0
    if version >= 1:
        assert voter.last_fetch_timestamp > 0 and voter.last_caught_up_timestamp > 0
    else:
        assert voter.last_fetch_timestamp == -1  # not on the wire before v1: the decoder's default
    if version >= 2:
        assert before.error_message is None
        [node] = before.nodes
        assert node.node_id == NODE_ID
        assert [(lst.host, lst.port) for lst in node.listeners] == [broker_thread.address]
    # A metadata change moves the log end offset on.
    create(client, "quorum-t", 1)
    after = client.request(quorum_request(), version).topics[0].partitions[0]
    assert after.high_watermark > part.high_watermark
    assert after.current_voters[0].log_end_offset == after.high_watermark


def test_describe_quorum_epoch_and_offset_grow_across_restarts(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    first = c.request(quorum_request(), 2).topics[0].partitions[0]
    c.close()
    broker_thread.restart()
    c = RawClient(broker_thread.address)
    try:
        second = c.request(quorum_request(), 2).topics[0].partitions[0]
    finally:
        c.close()
    assert second.leader_epoch > first.leader_epoch
    assert second.high_watermark > first.high_watermark


@pytest.mark.parametrize("version", [0, 1, 2])
def test_describe_quorum_other_partitions_are_invalid(client: RawClient, version: int) -> None:
    for req in (
        quorum_request("some-topic"),
        quorum_request(partitions=(1,)),
        quorum_request(partitions=(0, 0)),
        DescribeQuorumRequest(topics=[]),
    ):
        resp = client.request(req, version)
        assert (resp.error_code, resp.topics) == (ErrorCode.INVALID_REQUEST, [])


# -- DescribeLogDirs -------------------------------------------------------------------------


def log_dirs(c: RawClient, topics: dict[str, list[int]] | None, version: int):
    req = DescribeLogDirsRequest(
        topics=None if topics is None else [DescribableLogDirTopic(topic=t, partitions=p) for t, p in topics.items()]
    )
    resp = c.request(req, version)
    assert resp.error_code == ErrorCode.NONE
    [result] = resp.results
    return result


def segment_bytes_on_disk(data_dir: Path, topic: str, partition: int) -> int:
    return sum(f.stat().st_size for f in (data_dir / f"{topic}-{partition}").glob("*.log"))


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_describe_log_dirs_sizes(broker_thread: BrokerThread, client: RawClient, version: int) -> None:
    create(client, "ld-a", 2)
    create(client, "ld-b", 1)
    req = ProduceRequest(
        acks=-1,
        timeout_ms=5000,
        topic_data=[
            TopicProduceData(
                name="ld-a", partition_data=[PartitionProduceData(index=1, records=bytes(make_batch([b"x" * 500] * 3)))]
            )
        ],
    )
    assert client.request(req, 9).responses[0].partition_responses[0].error_code == ErrorCode.NONE
    data_dir = broker_thread.data_dir
    result = log_dirs(client, None, version)
    assert (result.error_code, result.log_dir) == (ErrorCode.NONE, str(data_dir.resolve()))
    sizes = {(t.name, p.partition_index): p.partition_size for t in result.topics for p in t.partitions}
    assert {k: v for k, v in sizes.items() if k[0].startswith("ld-")} == {
        ("ld-a", 0): 0,
        ("ld-a", 1): segment_bytes_on_disk(data_dir, "ld-a", 1),
        ("ld-b", 0): 0,
    }
    assert sizes[("ld-a", 1)] > 1500
    assert all(p.offset_lag == 0 and not p.is_future_key for t in result.topics for p in t.partitions)
    if version >= 4:
        assert result.total_bytes >= result.usable_bytes > 0
    else:
        assert (result.total_bytes, result.usable_bytes) == (-1, -1)  # not on the wire: the decoder's default


def test_describe_log_dirs_named_partitions(client: RawClient) -> None:
    create(client, "ldn-a", 3)
    create(client, "ldn-b", 1)
    result = log_dirs(client, {"ldn-a": [2, 0, 9], "ldn-none": [0]}, 4)
    got = {t.name: sorted(p.partition_index for p in t.partitions) for t in result.topics}
    # Only the requested, existing partitions; a topic with none of them is left out.
    assert got == {"ldn-a": [0, 2]}
    # An empty (not null) list asks for no partition.
    assert log_dirs(client, {}, 4).topics == []
