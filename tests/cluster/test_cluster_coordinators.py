"""Coordinators spread over the nodes, NOT_COORDINATOR elsewhere, and moves with their partition."""

from __future__ import annotations

import asyncio

from cluster_helpers import client_for, create_topic, other_node, partition_state
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)

from kbroker.control.cluster_routes import ROUTES
from kbroker.testing import BrokerThread

GROUPS = [f"group-{i}" for i in range(12)]


def _find(bt: BrokerThread, keys: list[str], key_type: int = 0) -> dict[str, int]:
    c = client_for(bt, 1)
    try:
        resp = c.request(FindCoordinatorRequest(key_type=key_type, coordinator_keys=keys), 4)
    finally:
        c.close()
    assert all(x.error_code == ErrorCode.NONE for x in resp.coordinators), resp
    return {x.key: x.node_id for x in resp.coordinators}


def test_groups_and_transactional_ids_spread_over_nodes(cluster: BrokerThread) -> None:
    found = _find(cluster, GROUPS)
    assert set(found.values()) == {1, 2, 3}
    txn = _find(cluster, [f"txn-{i}" for i in range(12)], key_type=1)
    assert set(txn.values()) == {1, 2, 3}
    # The coordinator is the leader of the group's __consumer_offsets partition.
    state = cluster.cluster_state()
    offsets = state["topics"]["__consumer_offsets"]["partitions"]
    assert all(len(p["replicas"]) == 3 for p in offsets)


def test_a_node_that_does_not_coordinate_answers_not_coordinator(cluster: BrokerThread) -> None:
    group = GROUPS[0]
    coordinator = _find(cluster, [group])[group]
    wrong = client_for(cluster, other_node(coordinator))
    try:
        hb = wrong.request(HeartbeatRequest(group_id=group, generation_id=1, member_id="m"), 4)
        commit = wrong.request(
            OffsetCommitRequest(
                group_id=group,
                generation_id_or_member_epoch=-1,
                member_id="",
                topics=[
                    OffsetCommitRequestTopic(
                        name="t",
                        partitions=[
                            OffsetCommitRequestPartition(partition_index=0, committed_offset=1)
                        ],
                    )
                ],
            ),
            8,
        )
        txn_id = "txn-a"
        txn_node = _find(cluster, [txn_id], key_type=1)[txn_id]
        init_wrong = client_for(cluster, other_node(txn_node))
        try:
            init = init_wrong.request(
                InitProducerIdRequest(transactional_id=txn_id, transaction_timeout_ms=60000), 4
            )
        finally:
            init_wrong.close()
    finally:
        wrong.close()
    assert hb.error_code == ErrorCode.NOT_COORDINATOR
    assert commit.topics[0].partitions[0].error_code == ErrorCode.NOT_COORDINATOR
    assert init.error_code == ErrorCode.NOT_COORDINATOR
    right = client_for(cluster, coordinator)
    try:
        hb = right.request(HeartbeatRequest(group_id=group, generation_id=1, member_id="m"), 4)
    finally:
        right.close()
    assert hb.error_code != ErrorCode.NOT_COORDINATOR  # the group is unknown there, not elsewhere


def test_the_coordinator_moves_with_its_partition(cluster: BrokerThread) -> None:
    group = GROUPS[1]
    before = _find(cluster, [group])[group]
    cluster.stop_node(before)
    after = _find(cluster, [group])[group]
    assert after != before and after in (1, 2, 3)
    cluster.start_node(before)
    # Moving the partition's leader moves the coordinator (find the partition by its leader).
    state = cluster.cluster_state()["topics"]["__consumer_offsets"]["partitions"]
    from kbroker.cluster import java_string_hash

    partition = (java_string_hash(group) & 0x7FFFFFFF) % len(state)
    target = other_node(state[partition]["leader"])
    cluster.move_leader("__consumer_offsets", partition, target)
    assert _find(cluster, [group])[group] == target
    assert (
        cluster.cluster_state()["topics"]["__consumer_offsets"]["partitions"][partition]["leader"]
        == target
    )


def _route(method: str, path: str):  # type: ignore[no-untyped-def]
    import re

    for m, pattern, handler in ROUTES:
        match = re.fullmatch(pattern, path)
        if m == method and match is not None:
            return handler, match.groupdict()
    raise AssertionError(f"no route for {method} {path}")


def _call(bt: BrokerThread, method: str, path: str, body=None):  # type: ignore[no-untyped-def]
    handler, groups = _route(method, path)
    assert bt.broker is not None
    return bt.call(handler(bt.broker, groups, body))


def test_control_routes(cluster: BrokerThread) -> None:
    create_topic(cluster, "routes", 2)
    status, state = _call(cluster, "GET", "/state")
    assert status == 200 and set(state) == {"nodes", "topics", "groups"}
    assert set(state["nodes"][0]) == {"id", "host", "port", "up"}
    assert set(state["topics"]["routes"]["partitions"][0]) == {
        "partition",
        "leader",
        "leader_epoch",
        "replicas",
        "isr",
    }
    leader = partition_state(cluster, "routes", 1)["leader"]
    target = other_node(leader)
    status, moved = _call(cluster, "POST", "/partitions/routes/1/leader", {"node": target})
    assert status == 200 and moved["leader"] == target
    assert _call(cluster, "POST", "/partitions/routes/1/leader", {"node": "2"})[0] == 400
    assert _call(cluster, "POST", "/partitions/routes/1/leader", None)[0] == 400
    assert _call(cluster, "POST", "/partitions/routes/9/leader", {"node": 1}) == (
        404,
        {"error": "unknown partition routes-9"},
    )
    assert _call(cluster, "POST", "/partitions/nope/0/leader", {"node": 1})[0] == 404
    assert _call(cluster, "POST", "/nodes/8/stop") == (404, {"error": "unknown node 8"})
    assert _call(cluster, "POST", "/nodes/2/stop") == (200, {"node": 2, "up": False})
    status, body = _call(cluster, "POST", "/partitions/routes/0/leader", {"node": 2})
    assert status == 409 and "not in the ISR" in body["error"]
    assert _call(cluster, "POST", "/nodes/2/start") == (200, {"node": 2, "up": True})
    assert [n["up"] for n in cluster.cluster_state()["nodes"]] == [True, True, True]


def test_control_routes_on_a_single_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bt = BrokerThread(tmp_path / "d")
    try:
        bt.start()
        status, body = _call(bt, "POST", "/nodes/1/stop")
        assert status == 400 and "not a virtual cluster" in body["error"]
        # the state of one node: it leads everything (GET /v1/state works on any broker)
        status, body = _call(bt, "GET", "/state")
        assert status == 200, body
        assert [(n["id"], n["up"]) for n in body["nodes"]] == [(1, True)]
        assert body["nodes"][0]["port"] == bt.address[1]
    finally:
        bt.close()


def test_route_handlers_are_coroutines() -> None:
    assert {(m, p) for m, p, _ in ROUTES} == {
        ("POST", r"/nodes/(?P<id>[0-9]{1,9})/stop"),
        ("POST", r"/nodes/(?P<id>[0-9]{1,9})/start"),
        ("POST", r"/partitions/(?P<topic>[a-zA-Z0-9._-]{1,249})/(?P<partition>[0-9]{1,9})/leader"),
        ("GET", r"/state"),
    }
    assert all(asyncio.iscoroutinefunction(h) for _, _, h in ROUTES)


def test_each_node_lists_the_groups_it_coordinates_and_describes_broker_configs_as_itself(
    cluster: BrokerThread,
) -> None:
    from kbroker.wire.messages.describe_configs_request import (
        DescribeConfigsRequest,
        DescribeConfigsResource,
    )
    from kbroker.wire.messages.list_groups_request import ListGroupsRequest

    groups = GROUPS[:6]
    coordinators = _find(cluster, groups)
    for group in groups:  # an empty group exists once an offset is committed for it
        c = client_for(cluster, coordinators[group])
        try:
            resp = c.request(
                OffsetCommitRequest(
                    group_id=group,
                    generation_id_or_member_epoch=-1,
                    member_id="",
                    topics=[
                        OffsetCommitRequestTopic(
                            name="__consumer_offsets",
                            partitions=[
                                OffsetCommitRequestPartition(partition_index=0, committed_offset=0)
                            ],
                        )
                    ],
                ),
                8,
            )
            assert resp.topics[0].partitions[0].error_code == ErrorCode.NONE
        finally:
            c.close()
    listed: dict[int, set[str]] = {}
    for node_id in (1, 2, 3):
        c = client_for(cluster, node_id)
        try:
            listed[node_id] = {g.group_id for g in c.request(ListGroupsRequest(), 4).groups}
            configs = c.request(
                DescribeConfigsRequest(
                    resources=[DescribeConfigsResource(resource_type=4, resource_name=str(node_id))]
                ),
                4,
            )
            assert configs.results[0].error_code == ErrorCode.NONE
        finally:
            c.close()
    for group in groups:
        assert [n for n in (1, 2, 3) if group in listed[n]] == [coordinators[group]]


def test_an_offline_coordinator_partition_is_coordinator_not_available(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bt = BrokerThread(
        tmp_path / "d", {"kbroker.nodes": "3", "offsets.topic.replication.factor": "1"}
    )
    try:
        bt.start()
        group = GROUPS[2]
        coordinator = _find(bt, [group])[group]
        bt.stop_node(coordinator)
        c = client_for(bt, other_node(coordinator))
        try:
            found = c.request(
                FindCoordinatorRequest(key_type=0, coordinator_keys=[group]), 4
            ).coordinators[0]
            hb = c.request(HeartbeatRequest(group_id=group, generation_id=1, member_id="m"), 4)
        finally:
            c.close()
        assert (found.error_code, found.node_id) == (ErrorCode.COORDINATOR_NOT_AVAILABLE, -1)
        assert hb.error_code == ErrorCode.COORDINATOR_NOT_AVAILABLE
        bt.start_node(coordinator)
        assert _find(bt, [group])[group] == coordinator
    finally:
        bt.close()
