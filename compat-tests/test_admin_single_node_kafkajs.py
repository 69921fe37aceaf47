"""kafkajs 2.2.4's admin against a real broker process: issue 12's single-node admin calls it
has, alterPartitionReassignments / listPartitionReassignments (AlterPartitionReassignments v0,
ListPartitionReassignments v0), through ``js/driver.js admin-ops``.  kafkajs has no
ElectLeaders, DescribeQuorum, DescribeTopicPartitions or DescribeLogDirs call.  Expected
answers are a single-node KRaft Kafka 4.1's.
"""

from __future__ import annotations

import pytest
from helpers import unique_topic
from test_admin_kafkajs import ok, ops
from test_kafkajs import kafkajs  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

NODE_ID = 1


@pytest.mark.feature("admin", client="kafkajs")
def test_partition_reassignments(broker, kafkajs) -> None:  # noqa: F811
    topic = unique_topic("js-reassign")
    create, same, other, listed_all, listed = ops(
        broker.bootstrap,
        {"op": "create", "topics": [{"topic": topic, "numPartitions": 2, "replicationFactor": 1}]},
        {"op": "alterReassignments", "topics": [{"topic": topic, "partitionAssignment": [{"partition": 0, "replicas": [NODE_ID]}]}]},
        {"op": "alterReassignments", "topics": [{"topic": topic, "partitionAssignment": [{"partition": 1, "replicas": [NODE_ID, 2]}]}]},
        {"op": "listReassignments"},
        {"op": "listReassignments", "topics": [{"topic": topic, "partitions": [0, 1]}]},
    )
    ok(create)
    ok(same)
    assert [(e["type"], e["topic"]) for e in other["error"]["errors"]] == [("INVALID_REPLICA_ASSIGNMENT", topic)], other
    assert ok(listed_all) == {"topics": []}
    assert ok(listed) == {"topics": []}
