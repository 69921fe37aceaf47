"""Share groups in a virtual cluster: each node keeps its own share sessions (librdkafka
opens one per broker it fetches from, as with Kafka), ShareGroupHeartbeat goes to the
group's coordinator, and a member that left may still close its sessions."""

from __future__ import annotations

from typing import Any

from cluster_helpers import client_for, create_topic, metadata
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.share_acknowledge_request import ShareAcknowledgeRequest
from kbroker.wire.messages.share_fetch_request import FetchPartition, FetchTopic, ShareFetchRequest
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest

from kbroker.testing import BrokerThread


def _fetch(c: Any, topic_id: Any, epoch: int) -> Any:
    req = ShareFetchRequest(
        group_id="sg",
        member_id="m1",
        share_session_epoch=epoch,
        max_wait_ms=0,
        max_records=10,
        topics=[FetchTopic(topic_id=topic_id, partitions=[FetchPartition(partition_index=0)])],
    )
    return c.request(req, 2)


def test_share_sessions_are_per_node_and_heartbeats_go_to_the_coordinator(cluster: BrokerThread) -> None:
    create_topic(cluster, "t", 1)
    c1 = client_for(cluster, 1)
    topic_id = metadata(c1, ["t"]).topics[0].topic_id
    found = c1.request(FindCoordinatorRequest(key_type=0, coordinator_keys=["sg"]), 4).coordinators[0]
    coordinator = found.node_id
    other = coordinator % 3 + 1
    join = ShareGroupHeartbeatRequest(group_id="sg", member_id="m1", member_epoch=0, subscribed_topic_names=["t"])
    assert client_for(cluster, other).request(join, 1).error_code == ErrorCode.NOT_COORDINATOR
    assert client_for(cluster, coordinator).request(join, 1).error_code == 0
    a, b = client_for(cluster, 1), client_for(cluster, 2)
    assert _fetch(a, topic_id, 0).error_code == 0
    assert _fetch(b, topic_id, 0).error_code == 0  # its own session: node 1's stays open
    assert _fetch(a, topic_id, 1).error_code == 0
    assert _fetch(b, topic_id, 1).error_code == 0
    leave = ShareGroupHeartbeatRequest(group_id="sg", member_id="m1", member_epoch=-1)
    assert client_for(cluster, coordinator).request(leave, 1).error_code == 0
    close = ShareAcknowledgeRequest(group_id="sg", member_id="m1", share_session_epoch=-1, topics=[])
    assert a.request(close, 2).error_code == 0
    assert _fetch(b, topic_id, 2).error_code == ErrorCode.UNKNOWN_MEMBER_ID
