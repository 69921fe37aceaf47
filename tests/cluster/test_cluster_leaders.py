"""Leadership: NOT_LEADER_OR_FOLLOWER with KIP-951 hints, leader moves, node stop/start, min ISR."""

from __future__ import annotations

import socket

import pytest
from cluster_helpers import (
    client_for,
    create_topic,
    metadata,
    node_address,
    other_node,
    partition_state,
    produce,
)
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kbroker.wire.messages.offset_for_leader_epoch_request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)

from kbroker.cluster import ClusterError
from kbroker.testing import BrokerThread


def _fetch(c, topic_id, partition: int, offset: int = 0, epoch: int = -1, version: int = 16):  # type: ignore[no-untyped-def]
    req = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=1 << 20,
        isolation_level=0,
        topics=[
            FetchTopic(
                topic_id=topic_id,
                partitions=[
                    FetchPartition(
                        partition=partition,
                        fetch_offset=offset,
                        current_leader_epoch=epoch,
                        partition_max_bytes=1 << 20,
                    )
                ],
            )
        ],
    )
    return c.request(req, version).responses[0].partitions[0]


def test_produce_to_a_follower_names_the_leader(cluster: BrokerThread) -> None:
    create_topic(cluster, "nl", 1)
    state = partition_state(cluster, "nl", 0)
    follower = other_node(state["leader"])
    c = client_for(cluster, follower)
    try:
        resp = produce(c, "nl", 0, [b"x"], version=10)
    finally:
        c.close()
    p = resp.responses[0].partition_responses[0]
    assert p.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert (p.current_leader.leader_id, p.current_leader.leader_epoch) == (
        state["leader"],
        state["leader_epoch"],
    )
    assert [(e.node_id, e.port) for e in resp.node_endpoints] == [
        (state["leader"], node_address(cluster, state["leader"])[1])
    ]
    leader = client_for(cluster, state["leader"])
    try:
        ok = produce(leader, "nl", 0, [b"x"], version=10)
    finally:
        leader.close()
    assert ok.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    assert ok.node_endpoints == []


def test_fetch_list_offsets_and_epoch_queries_need_the_leader(cluster: BrokerThread) -> None:
    create_topic(cluster, "fl", 1)
    state = partition_state(cluster, "fl", 0)
    follower = other_node(state["leader"])
    c = client_for(cluster, follower)
    try:
        topic_id = metadata(c, ["fl"]).topics[0].topic_id
        fetched = _fetch(c, topic_id, 0)
        offsets = c.request(
            ListOffsetsRequest(
                replica_id=-1,
                topics=[
                    ListOffsetsTopic(
                        name="fl",
                        partitions=[ListOffsetsPartition(partition_index=0, timestamp=-1)],
                    )
                ],
            ),
            7,
        )
        epochs = c.request(
            OffsetForLeaderEpochRequest(
                replica_id=-1,
                topics=[
                    OffsetForLeaderTopic(
                        topic="fl",
                        partitions=[
                            OffsetForLeaderPartition(
                                partition=0, current_leader_epoch=-1, leader_epoch=0
                            )
                        ],
                    )
                ],
            ),
            4,
        )
    finally:
        c.close()
    assert fetched.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert fetched.current_leader.leader_id == state["leader"]
    assert offsets.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
    assert epochs.topics[0].partitions[0].error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER


def test_moving_the_leader_bumps_the_epoch_and_fences_the_old_one(cluster: BrokerThread) -> None:
    create_topic(cluster, "mv", 1)
    before = partition_state(cluster, "mv", 0)
    target = other_node(before["leader"])
    old = client_for(cluster, before["leader"])
    try:
        assert (
            produce(old, "mv", 0, [b"a", b"b"]).responses[0].partition_responses[0].error_code
            == ErrorCode.NONE
        )
        cluster.move_leader("mv", 0, target)
        after = partition_state(cluster, "mv", 0)
        assert after["leader"] == target and after["leader_epoch"] == before["leader_epoch"] + 1
        refused = produce(old, "mv", 0, [b"c"]).responses[0].partition_responses[0]
        assert refused.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert refused.current_leader.leader_id == target
    finally:
        old.close()
    new = client_for(cluster, target)
    try:
        topic_id = metadata(new, ["mv"]).topics[0].topic_id
        assert (
            _fetch(new, topic_id, 0, epoch=before["leader_epoch"]).error_code
            == ErrorCode.FENCED_LEADER_EPOCH
        )
        data = _fetch(new, topic_id, 0, epoch=after["leader_epoch"])
        assert data.error_code == ErrorCode.NONE and data.high_watermark == 2
        # The new epoch starts at the log end (OffsetForLeaderEpoch answers it).
        epochs = new.request(
            OffsetForLeaderEpochRequest(
                replica_id=-1,
                topics=[
                    OffsetForLeaderTopic(
                        topic="mv",
                        partitions=[
                            OffsetForLeaderPartition(
                                partition=0,
                                current_leader_epoch=-1,
                                leader_epoch=before["leader_epoch"],
                            )
                        ],
                    )
                ],
            ),
            4,
        )
        assert epochs.topics[0].partitions[0].end_offset == 2
    finally:
        new.close()


def test_move_leader_refusals(cluster: BrokerThread) -> None:
    create_topic(cluster, "ref", 1, replication_factor=2)
    state = partition_state(cluster, "ref", 0)
    outside = next(n for n in (1, 2, 3) if n not in state["replicas"])
    with pytest.raises(ClusterError) as not_isr:
        cluster.move_leader("ref", 0, outside)
    assert not_isr.value.status == 409
    with pytest.raises(ClusterError) as unknown_node:
        cluster.move_leader("ref", 0, 7)
    assert unknown_node.value.status == 404
    with pytest.raises(ClusterError) as unknown_partition:
        cluster.move_leader("ref", 5, 1)
    assert unknown_partition.value.status == 404
    with pytest.raises(ClusterError) as unknown_stop:
        cluster.stop_node(4)
    assert unknown_stop.value.status == 404


def _refused(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_stopping_a_node_fails_its_partitions_over_and_start_brings_it_back(
    cluster: BrokerThread,
) -> None:
    create_topic(cluster, "fo", 3)
    create_topic(cluster, "solo", 3, replication_factor=1)
    before = {p: partition_state(cluster, "fo", p) for p in range(3)}
    victim = before[0]["leader"]
    address = node_address(cluster, victim)
    held = client_for(cluster, victim)
    metadata(held, ["fo"])  # served: the connection is established on the node
    cluster.stop_node(victim)
    try:
        assert held.is_closed_by_peer()  # its connections are closed too
    finally:
        held.close()
    assert _refused(address)
    state = cluster.cluster_state()
    assert [n["up"] for n in state["nodes"]] == [n != victim for n in (1, 2, 3)]
    for p in range(3):
        now = partition_state(cluster, "fo", p)
        assert victim not in now["isr"]
        if before[p]["leader"] == victim:
            assert now["leader"] != victim and now["leader"] in now["isr"]
            assert now["leader_epoch"] == before[p]["leader_epoch"] + 1
        else:
            assert (
                now["leader"] == before[p]["leader"]
                and now["leader_epoch"] == before[p]["leader_epoch"]
            )
    # A single-replica partition on the stopped node goes offline.
    offline = [p for p in range(3) if partition_state(cluster, "solo", p)["replicas"] == [victim]]
    assert len(offline) == 1
    other = client_for(cluster, other_node(victim))
    try:
        md = metadata(other, ["solo"])
        part = next(p for p in md.topics[0].partitions if p.partition_index == offline[0])
        assert (part.leader_id, part.error_code, part.offline_replicas) == (
            -1,
            ErrorCode.LEADER_NOT_AVAILABLE,
            [victim],
        )
        assert victim not in [b.node_id for b in md.brokers]
    finally:
        other.close()
    cluster.start_node(victim)
    assert node_address(cluster, victim) == address
    for p in range(3):
        assert sorted(partition_state(cluster, "fo", p)["isr"]) == [1, 2, 3]
    back = partition_state(cluster, "solo", offline[0])
    assert back["leader"] == victim
    c = client_for(cluster, victim)
    try:
        assert (
            produce(c, "solo", offline[0], [b"z"]).responses[0].partition_responses[0].error_code
            == ErrorCode.NONE
        )
    finally:
        c.close()


def test_acks_all_needs_min_insync_replicas(cluster: BrokerThread) -> None:
    create_topic(cluster, "mi", 1, replication_factor=2, configs={"min.insync.replicas": "2"})
    state = partition_state(cluster, "mi", 0)
    follower = next(n for n in state["replicas"] if n != state["leader"])
    cluster.stop_node(follower)
    c = client_for(cluster, state["leader"])
    try:
        refused = produce(c, "mi", 0, [b"x"], acks=-1).responses[0].partition_responses[0]
        assert refused.error_code == ErrorCode.NOT_ENOUGH_REPLICAS
        assert (
            produce(c, "mi", 0, [b"x"], acks=1).responses[0].partition_responses[0].error_code
            == ErrorCode.NONE
        )
        cluster.start_node(follower)
        assert (
            produce(c, "mi", 0, [b"y"], acks=-1).responses[0].partition_responses[0].error_code
            == ErrorCode.NONE
        )
    finally:
        c.close()


def test_leaders_and_epochs_survive_a_restart(cluster: BrokerThread) -> None:
    create_topic(cluster, "rs", 2, replication_factor=2)
    before = [partition_state(cluster, "rs", p) for p in range(2)]
    cluster.move_leader("rs", 0, before[0]["replicas"][1])
    moved_epoch = partition_state(cluster, "rs", 0)["leader_epoch"]
    ports = [n["port"] for n in cluster.cluster_state()["nodes"]]
    cluster.restart()
    after = [partition_state(cluster, "rs", p) for p in range(2)]
    assert [a["replicas"] for a in after] == [b["replicas"] for b in before]
    assert after[0]["leader"] == before[0]["replicas"][0]  # the preferred leader again
    assert after[0]["leader_epoch"] > moved_epoch  # never lower
    assert [n["port"] for n in cluster.cluster_state()["nodes"]] == ports
