"""The cluster routes through the control API's HTTP dispatcher, and fault rules on a
virtual cluster: the two parts of the control API served together."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from broker_harness import RawClient
from control_harness import add_rule, http, produce
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest

from kbroker.testing import BrokerThread

CLUSTER_CONTROL = {
    "kbroker.http.listen": "127.0.0.1:0",
    "kbroker.control.enabled": "true",
    "kbroker.nodes": "3",
}


@contextlib.contextmanager
def _client(bt: BrokerThread, node_id: int) -> Iterator[RawClient]:
    assert bt.broker is not None
    if bt.broker.cluster is None:  # a single node
        c = RawClient(bt.address)
    else:
        state = bt.cluster_state()
        node = next(n for n in state["nodes"] if n["id"] == node_id)
        c = RawClient((node["host"], node["port"]))
    try:
        yield c
    finally:
        c.close()


def _create_topic(bt: BrokerThread, name: str, partitions: int, replication_factor: int) -> None:
    with _client(bt, 1) as c:
        resp = c.request(
            CreateTopicsRequest(
                topics=[
                    CreatableTopic(
                        name=name,
                        num_partitions=partitions,
                        replication_factor=replication_factor,
                    )
                ]
            ),
            7,
        )
        assert resp.topics[0].error_code == ErrorCode.NONE, resp


def test_state_stop_start_and_leader_over_http(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", CLUSTER_CONTROL)
    bt.start()
    try:
        _create_topic(bt, "t", 1, 3)
        status, state = http(bt, "GET", "/state")
        assert status == 200
        assert [n["id"] for n in state["nodes"]] == [1, 2, 3]
        assert all(n["up"] for n in state["nodes"])
        (part,) = state["topics"]["t"]["partitions"]
        assert sorted(part["replicas"]) == [1, 2, 3] and sorted(part["isr"]) == [1, 2, 3]
        leader, epoch = part["leader"], part["leader_epoch"]
        target = 1 + leader % 3

        status, body = http(bt, "POST", "/partitions/t/0/leader", {"node": target})
        assert status == 200, body
        status, state = http(bt, "GET", "/state")
        (part,) = state["topics"]["t"]["partitions"]
        assert part["leader"] == target and part["leader_epoch"] > epoch

        status, body = http(bt, "POST", f"/nodes/{target}/stop")
        assert (status, body) == (200, {"node": target, "up": False})
        status, state = http(bt, "GET", "/state")
        assert [n["up"] for n in state["nodes"] if n["id"] == target] == [False]
        (part,) = state["topics"]["t"]["partitions"]
        assert part["leader"] != target and target not in part["isr"]
        # A leader outside the ISR is a conflict; an unknown node or partition is not found.
        status, body = http(bt, "POST", "/partitions/t/0/leader", {"node": target})
        assert status == 409 and "error" in body
        assert http(bt, "POST", "/nodes/7/stop")[0] == 404
        assert http(bt, "POST", "/partitions/nope/0/leader", {"node": 1})[0] == 404

        status, body = http(bt, "POST", f"/nodes/{target}/start")
        assert (status, body) == (200, {"node": target, "up": True})
    finally:
        bt.close()


def test_a_fault_rule_for_one_node_fires_only_there(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", CLUSTER_CONTROL)
    bt.start()
    try:
        _create_topic(bt, "f", 1, 3)
        (part,) = bt.cluster_state()["topics"]["f"]["partitions"]
        leader = part["leader"]
        follower = 1 + leader % 3
        rule_id = add_rule(
            bt, {"api": "Produce", "node": leader, "error": "NOT_ENOUGH_REPLICAS", "count": 1}
        )
        # The follower answers NOT_LEADER_OR_FOLLOWER as the cluster routes it; the rule,
        # for the leader only, neither fires there nor is used up.
        with _client(bt, follower) as c:
            answer = produce(c, "f", {0: b"x"})[0]
            assert answer.error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        with _client(bt, leader) as c:
            assert produce(c, "f", {0: b"y"})[0].error_code == ErrorCode.NOT_ENOUGH_REPLICAS
            assert produce(c, "f", {0: b"z"})[0].error_code == ErrorCode.NONE
        status, body = http(bt, "GET", f"/faults/{rule_id}")
        assert status == 200 and body["hits"] == 1 and body["remaining"] == 0
    finally:
        bt.close()


def test_state_of_a_single_node_broker(tmp_path: Path) -> None:
    settings = {k: v for k, v in CLUSTER_CONTROL.items() if k != "kbroker.nodes"}
    bt = BrokerThread(tmp_path / "data", settings)
    bt.start()
    try:
        _create_topic(bt, "s", 2, -1)
        status, state = http(bt, "GET", "/state")
        assert status == 200, state
        assert state["nodes"] == [
            {"id": 1, "host": bt.address[0], "port": bt.address[1], "up": True}
        ]
        assert [
            (p["partition"], p["leader"], p["replicas"], p["isr"])
            for p in state["topics"]["s"]["partitions"]
        ] == [(0, 1, [1], [1]), (1, 1, [1], [1])]
        # the cluster operations need a virtual cluster
        status, body = http(bt, "POST", "/nodes/1/stop")
        assert status == 400 and "not a virtual cluster" in body["error"]
    finally:
        bt.close()
