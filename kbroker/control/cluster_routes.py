"""The control API's cluster operations: nodes, partition leaders, state.

``ROUTES`` rows are (HTTP method, path regex relative to ``/v1`` with named groups,
handler); the control dispatcher matches them and encodes the answers as JSON.  A
handler takes (broker, the path's groups, the parsed JSON body or None) and returns
(HTTP status, JSON-able body).  Errors are ``{"error": "..."}``: 404 for an unknown node
or partition, 409 for a leader outside the ISR, 400 for a bad body or, for the node and
leader operations, a broker that is not a virtual cluster (``kbroker.nodes`` = 1).  GET
/v1/state answers on any broker: a single node reports itself leading every partition.

    POST /v1/nodes/{id}/stop                          -> {"node": id, "up": false}
    POST /v1/nodes/{id}/start                         -> {"node": id, "up": true}
    POST /v1/partitions/{topic}/{partition}/leader    {"node": 2}  -> the partition's state
    GET  /v1/state                                    -> {"nodes": [...], "topics": {...}, "groups": {...}}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kbroker.cluster import Cluster, ClusterError

if TYPE_CHECKING:
    from kbroker.server import Broker

RouteHandler = Callable[["Broker", dict[str, str], Any], Awaitable[tuple[int, Any]]]


def _cluster(broker: Broker) -> Cluster:
    if broker.cluster is None:
        raise ClusterError(400, "not a virtual cluster (start with --nodes N, N > 1)")
    return broker.cluster


def _error(exc: ClusterError) -> tuple[int, Any]:
    return exc.status, {"error": str(exc)}


async def stop_node(broker: Broker, groups: dict[str, str], body: Any) -> tuple[int, Any]:
    try:
        await _cluster(broker).stop_node(int(groups["id"]))
    except ClusterError as exc:
        return _error(exc)
    return 200, {"node": int(groups["id"]), "up": False}


async def start_node(broker: Broker, groups: dict[str, str], body: Any) -> tuple[int, Any]:
    try:
        await _cluster(broker).start_node(int(groups["id"]))
    except ClusterError as exc:
        return _error(exc)
    except OSError as exc:  # its port was taken meanwhile
        return 409, {"error": f"node {groups['id']} cannot listen again: {exc}"}
    return 200, {"node": int(groups["id"]), "up": True}


async def move_leader(broker: Broker, groups: dict[str, str], body: Any) -> tuple[int, Any]:
    if not isinstance(body, dict) or type(body.get("node")) is not int:
        return 400, {"error": 'the body must be {"node": NODE_ID}'}
    topic, partition = groups["topic"], int(groups["partition"])
    try:
        cluster = _cluster(broker)
        cluster.move_leader(topic, partition, body["node"])
    except ClusterError as exc:
        return _error(exc)
    state = cluster.state()["topics"][topic]["partitions"][partition]
    return 200, {"topic": topic, **state}


async def get_state(broker: Broker, groups: dict[str, str], body: Any) -> tuple[int, Any]:
    if broker.cluster is None:
        return 200, single_node_state(broker)
    return 200, broker.cluster.state()


def single_node_state(broker: Broker) -> dict[str, Any]:
    """GET /v1/state of a one-node broker, in the cluster's shape: this node leads every
    partition, alone in its replicas and ISR."""
    node_id = broker.node_id
    host, port = broker.listen_address
    topics: dict[str, Any] = {}
    for topic in broker.metadata:
        topics[topic.name] = {
            "partitions": [
                {
                    "partition": index,
                    "leader": node_id,
                    "leader_epoch": topic.leader_epochs[index],
                    "replicas": [node_id],
                    "isr": [node_id],
                }
                for index in range(topic.num_partitions)
            ]
        }
    found: dict[str, Any] = {}
    runtime = broker.group_runtime_if_started
    coordinator = None if runtime is None else runtime.coordinator
    if coordinator is not None:
        known: list[tuple[str, Any]] = [
            *coordinator.consumer_groups.groups.items(),
            *coordinator.groups.groups.items(),
        ]
        for group_id, group in sorted(known, key=lambda item: item[0]):
            found[group_id] = {"coordinator": node_id, "state": str(group.state)}
    nodes = [{"id": node_id, "host": host, "port": port, "up": True}]
    return {"nodes": nodes, "topics": topics, "groups": found}


ROUTES: list[tuple[str, str, RouteHandler]] = [
    ("POST", r"/nodes/(?P<id>[0-9]{1,9})/stop", stop_node),
    ("POST", r"/nodes/(?P<id>[0-9]{1,9})/start", start_node),
    (
        "POST",
        r"/partitions/(?P<topic>[a-zA-Z0-9._-]{1,249})/(?P<partition>[0-9]{1,9})/leader",
        move_leader,
    ),
    ("GET", r"/state", get_state),
]
