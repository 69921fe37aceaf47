"""A virtual cluster's shape as clients see it: nodes, placement, replicas, ISR, epochs."""

from __future__ import annotations

import socket

import pytest
from cluster_helpers import client_for, create_topic, metadata, node_address, partition_state
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_cluster_request import DescribeClusterRequest
from kbroker.wire.messages.describe_topic_partitions_request import (
    DescribeTopicPartitionsRequest,
    TopicRequest,
)

from kbroker.cluster import MAX_NODES, java_string_hash, node_listeners
from kbroker.config import ConfigError, ServedListener, build_config
from kbroker.testing import BrokerThread


def test_every_node_listens_and_answers_metadata_listing_all_nodes(cluster: BrokerThread) -> None:
    state = cluster.cluster_state()
    assert [n["id"] for n in state["nodes"]] == [1, 2, 3]
    assert len({n["port"] for n in state["nodes"]}) == 3
    assert all(n["up"] for n in state["nodes"])
    create_topic(cluster, "shape", 3)
    for node_id in (1, 2, 3):
        c = client_for(cluster, node_id)
        try:
            resp = metadata(c, ["shape"])
        finally:
            c.close()
        assert sorted((b.node_id, b.port) for b in resp.brokers) == sorted(
            (n["id"], n["port"]) for n in state["nodes"]
        )
        assert resp.controller_id in (1, 2, 3)
        parts = sorted(resp.topics[0].partitions, key=lambda p: p.partition_index)
        # Default replication factor in a cluster: min(3, N); leaders spread round-robin.
        assert [len(p.replica_nodes) for p in parts] == [3, 3, 3]
        assert sorted(p.leader_id for p in parts) == [1, 2, 3]
        for p in parts:
            assert p.leader_id == p.replica_nodes[0]
            assert sorted(p.isr_nodes) == [1, 2, 3]
            assert p.offline_replicas == []


def test_explicit_replication_factor_is_honoured_and_capped_by_the_node_count(
    cluster: BrokerThread,
) -> None:
    created = create_topic(cluster, "rf2", 4, replication_factor=2)
    assert created.error_code == ErrorCode.NONE and created.replication_factor == 2
    replicas = [partition_state(cluster, "rf2", p)["replicas"] for p in range(4)]
    assert all(len(r) == 2 and len(set(r)) == 2 for r in replicas)
    assert len({r[0] for r in replicas}) == 3  # leaders spread over every node
    too_many = create_topic(cluster, "rf4", 1, replication_factor=4)
    assert too_many.error_code == ErrorCode.INVALID_REPLICATION_FACTOR
    assert "only 3 broker(s)" in too_many.error_message


def test_describe_cluster_and_describe_topic_partitions_report_the_cluster(
    cluster: BrokerThread,
) -> None:
    create_topic(cluster, "dtp", 2, replication_factor=2)
    cluster.stop_node(3)
    c = client_for(cluster, 1)
    try:
        dc = c.request(DescribeClusterRequest(endpoint_type=1), 2)
        dtp = c.request(
            DescribeTopicPartitionsRequest(
                topics=[TopicRequest(name="dtp")], response_partition_limit=100
            ),
            0,
        )
    finally:
        c.close()
    assert {(b.broker_id, b.is_fenced) for b in dc.brokers} == {(1, False), (2, False), (3, True)}
    for p in dtp.topics[0].partitions:
        expected = partition_state(cluster, "dtp", p.partition_index)
        assert p.leader_id == expected["leader"] and p.isr_nodes == expected["isr"]
        assert p.replica_nodes == expected["replicas"]
        assert p.offline_replicas == ([3] if 3 in expected["replicas"] else [])
        assert 3 not in p.isr_nodes


def test_node_ports_follow_the_first_listener() -> None:
    base = ServedListener("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9092)
    assert [node_listeners((base,), k)[0].port for k in (1, 2, 3)] == [9092, 9093, 9094]
    ephemeral = ServedListener("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 0)
    assert node_listeners((ephemeral,), 5)[0].port == 0
    advertised = ServedListener("PLAINTEXT", "PLAINTEXT", "0.0.0.0", 9092, "kafka.example", 19092)
    assert node_listeners((advertised,), 2)[0].advertised == ("kafka.example", 19093)


def _free_port_block(count: int) -> int:
    """A port P with P..P+count-1 all free right now (a race with other processes is possible
    but unlikely on loopback; the test binds them itself right after)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        socks = []
        try:
            for k in range(count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", base + k))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports")


def test_node_k_listens_on_port_p_plus_k_minus_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = _free_port_block(3)
    bt = BrokerThread(tmp_path / "d", {"kbroker.nodes": "3"}, listen=f"127.0.0.1:{base}")
    try:
        bt.start()
        assert [node_address(bt, k)[1] for k in (1, 2, 3)] == [base, base + 1, base + 2]
    finally:
        bt.close()


def test_node_count_is_bounded() -> None:
    assert MAX_NODES == 9
    build_config(overrides=["kbroker.nodes=9"], environ={})
    with pytest.raises(ConfigError):
        build_config(overrides=["kbroker.nodes=10"], environ={})
    with pytest.raises(ConfigError):
        build_config(overrides=["kbroker.nodes=0"], environ={})


def test_java_string_hash_matches_java() -> None:
    # Values of Java's "...".hashCode().
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Hello World") == -862545276  # wraps around 32 bits


def test_single_node_request_context_carries_the_configured_node_id(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bt = BrokerThread(tmp_path / "d", {"node.id": "7"})
    try:
        bt.start()
        assert bt.broker is not None and bt.broker.cluster is None
        c = client_for_single(bt)
        try:
            resp = metadata(c, [], version=12)
            conns = list(bt.broker._connections)  # the answer came, so it is registered
        finally:
            c.close()
        assert [b.node_id for b in resp.brokers] == [7]
        assert [conn.node_id for conn in conns] == [7]
        assert conns[0].session.node_id == 7
        with pytest.raises(RuntimeError, match="not a virtual cluster"):
            bt.cluster_state()
    finally:
        bt.close()


def client_for_single(bt: BrokerThread):  # type: ignore[no-untyped-def]
    from broker_harness import RawClient

    return RawClient(bt.address)
