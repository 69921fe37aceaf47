"""kafka-python 3.0.12's KafkaAdminClient against a real broker process: issue 12's single-node
admin calls (describe_topic_partitions and its pagination, elect_leaders, describe_log_dirs,
alter/list_partition_reassignments, describe_metadata_quorum).  Expected answers are a
single-node KRaft Kafka 4.1's.
"""

from __future__ import annotations

import kafka.errors as Errors
import pytest
from helpers import unique_topic
from kafka import KafkaAdminClient, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

NODE_ID = 1


def admin_for(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-admin12", request_timeout_ms=10_000)


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_topic_partitions_paginates(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        a, b = sorted([unique_topic("kp-dtp"), unique_topic("kp-dtp")])
        admin.create_topics([NewTopic(a, 3, 1), NewTopic(b, 2, 1)])
        seen: list[tuple[str, int]] = []
        cursor = None
        for _ in range(10):
            page = admin.describe_topic_partitions([b, a], response_partition_limit=2, cursor=cursor)
            assert sum(len(t["partitions"]) for t in page["topics"]) <= 2
            for t in page["topics"]:
                assert t["error_code"] == 0
                for p in t["partitions"]:
                    assert (p["leader_id"], p["replica_nodes"], p["isr_nodes"]) == (NODE_ID, [NODE_ID], [NODE_ID])
                    seen.append((t["name"], p["partition_index"]))
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [(a, 0), (a, 1), (a, 2), (b, 0), (b, 1)]
        missing = admin.describe_topic_partitions([unique_topic("kp-dtp-none")])["topics"]
        assert [t["error_code"] for t in missing] == [Errors.UnknownTopicOrPartitionError.errno]
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_elect_leaders(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        topic = unique_topic("kp-elect")
        admin.create_topics([NewTopic(topic, 2, 1)])
        resp = admin.elect_leaders(0, {topic: [0, 1]})  # ELECTION_NOT_NEEDED is not raised
        codes = {p.partition_id: p.error_code for r in resp.replica_election_results for p in r.partition_result}
        assert codes == {0: Errors.ElectionNotNeededError.errno, 1: Errors.ElectionNotNeededError.errno}
        # topic_partitions=None: kafka-python lists every partition of every topic itself.
        every = admin.elect_leaders(0, None).replica_election_results
        assert {(r.topic, p.partition_id) for r in every for p in r.partition_result} >= {(topic, 0), (topic, 1)}
        assert {p.error_code for r in every for p in r.partition_result} == {Errors.ElectionNotNeededError.errno}
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.elect_leaders(0, {unique_topic("kp-elect-none"): [0]})
        with pytest.raises(Errors.UnknownTopicOrPartitionError):
            admin.elect_leaders(1, {topic: [5]})
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_partition_reassignments(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        topic = unique_topic("kp-reassign")
        admin.create_topics([NewTopic(topic, 2, 1)])
        tp0, tp1 = TopicPartition(topic, 0), TopicPartition(topic, 1)
        missing = TopicPartition(unique_topic("kp-reassign-none"), 0)
        got = admin.alter_partition_reassignments({tp0: [NODE_ID], tp1: [NODE_ID, 2], missing: [NODE_ID]})
        assert got == {
            tp0: None,
            tp1: Errors.InvalidReplicationAssignmentError,
            missing: Errors.UnknownTopicOrPartitionError,
        }
        assert admin.alter_partition_reassignments({tp0: None}) == {tp0: Errors.NoReassignmentInProgressError}
        assert admin.list_partition_reassignments() == {}
        assert admin.list_partition_reassignments([tp0, tp1]) == {}
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_metadata_quorum(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        first = admin.describe_metadata_quorum()
        [topic] = first["topics"]
        [part] = topic["partitions"]
        assert (topic["topic_name"], part["partition_index"], part["error"]) == ("__cluster_metadata", 0, None)
        assert part["leader_id"] == NODE_ID and part["observers"] == []
        [voter] = part["current_voters"]
        assert voter["replica_id"] == NODE_ID
        assert voter["log_end_offset"] == part["high_watermark"] > 0
        assert voter["last_fetch_timestamp"] > 0 and voter["last_caught_up_timestamp"] > 0
        assert [n["node_id"] for n in first["nodes"]] == [NODE_ID]
        admin.create_topics([NewTopic(unique_topic("kp-quorum"), 1, 1)])
        later = admin.describe_metadata_quorum()["topics"][0]["partitions"][0]
        assert later["high_watermark"] > part["high_watermark"]
    finally:
        admin.close()


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_log_dirs(broker) -> None:
    admin = admin_for(broker.bootstrap)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=10_000, linger_ms=0)
    try:
        topic, other = unique_topic("kp-logdirs"), unique_topic("kp-logdirs")
        admin.create_topics([NewTopic(topic, 2, 1), NewTopic(other, 1, 1)])
        for _ in range(20):
            producer.send(topic, value=b"v" * 200, partition=1).get(timeout=10)
        [answer] = admin.describe_log_dirs({topic: [0, 1]})
        assert answer["broker"] == NODE_ID
        [log_dir] = answer["log_dirs"]
        assert log_dir["error_code"] == 0 and log_dir["log_dir"]
        assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
        sizes = {
            (t["name"], p["partition_index"]): (p["partition_size"], p["offset_lag"], p["is_future_key"])
            for t in log_dir["topics"]
            for p in t["partitions"]
        }
        assert set(sizes) == {(topic, 0), (topic, 1)}
        assert sizes[(topic, 0)] == (0, 0, False)
        assert sizes[(topic, 1)][0] > 20 * 200 and sizes[(topic, 1)][1:] == (0, False)
        # No topic named: every partition.
        [every] = admin.describe_log_dirs()[0]["log_dirs"]
        assert {(t["name"], len(t["partitions"])) for t in every["topics"]} >= {(topic, 2), (other, 1)}
    finally:
        producer.close()
        admin.close()
