"""A virtual cluster in one process: ``kbroker.nodes=N`` broker nodes over one data dir.

Theory of operation
-------------------
Every node is a set of listeners (node k on the configured port + k - 1, or its own
ephemeral port when the configured one is 0) in front of the same :class:`Broker`: the
logs, the metadata and the coordinators exist once.  What differs per node is only what
a Kafka client can observe of a cluster:

- **Placement.**  Each partition has a replica list, chosen as Kafka's rack-unaware
  placement spreads them: partition p's replicas are nodes (start + p + j) mod N for
  j < replication factor, ``start`` a per-topic offset (stable across restarts: derived
  from the topic name), so leaders and replicas go round-robin over the nodes.  The
  assignment is persisted (``kbroker-cluster.json``); leaders and ISR are not (a restart
  elects the preferred leaders again, with a leader-epoch bump, as every start does).
- **Leadership.**  A partition has one leader (or -1: offline) and an ISR.  Only the
  leader's listeners serve Produce/Fetch/ListOffsets/OffsetForLeaderEpoch/DeleteRecords
  for it; the others answer NOT_LEADER_OR_FOLLOWER (KIP-951: with the current leader).
  Every leader change bumps the partition's leader epoch (persisted, never lower) and
  opens that epoch in the log's epoch cache, as a Kafka leader does when it takes over.
- **Followers are simulated.**  They share the leader's log, so a follower in the ISR is
  always caught up and the high watermark is the log end.  A stopped node leaves every ISR
  (the last member stays, with leader -1, as Kafka keeps it); a started node rejoins the
  ISR of each partition it replicates that has a leader, and takes back any partition
  whose only ISR member it was.  acks=all with fewer ISR members than
  ``min.insync.replicas`` is NOT_ENOUGH_REPLICAS.
- **Coordinators.**  A group's (transactional id's) coordinator is the leader of its
  ``__consumer_offsets`` (``__transaction_state``) partition, as in Kafka; other nodes
  answer NOT_COORDINATOR, and the coordinator moves when that partition's leader does.
  The coordinator state itself is shared, so a move loses nothing.

All of it lives on the event-loop thread.  Single-node brokers have no :class:`Cluster`
(``Broker.cluster`` is None), and the request path checks only that.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kbroker import cluster_routing
from kbroker.acceptor import Acceptor
from kbroker.config import ServedListener
from kbroker.errors import KafkaError
from kbroker.metadata import (
    OFFSETS_TOPIC,
    TRANSACTION_STATE_TOPIC,
    TopicMetadata,
    _write_atomically,
)
from kbroker.startup import bind_listener
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import RequestContext
    from kbroker.security.listener import ListenerSecurity
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# kbroker.nodes' ceiling: node k listens on port P + k - 1, so a cluster takes N ports.
MAX_NODES = 9
CLUSTER_FILE = "kbroker-cluster.json"
# Kafka's defaults for an unset replication factor are 1 (topics) and 3 (internal topics);
# in a virtual cluster a topic without an explicit factor gets this many replicas (or N).
DEFAULT_CLUSTER_REPLICATION_FACTOR = 3
NO_LEADER = -1


class ClusterError(Exception):
    """A control operation that cannot be done: ``status`` is its HTTP status (404, 409, 400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class PartitionReplicas:
    """One partition's replication state.  Invariant: ``leader`` is NO_LEADER or in ``isr``;
    ``isr`` is a non-empty subset of ``replicas``."""

    replicas: list[int]
    leader: int
    isr: list[int]


@dataclass
class ClusterNode:
    node_id: int
    # Where each listener binds (port 0: ephemeral) and, once bound, its served form.
    wanted: list[ServedListener]
    bound: list[ServedListener] = field(default_factory=list)
    up: bool = True
    servers: list[Any] = field(default_factory=list)

    def endpoint(self, listener_name: str) -> tuple[str, int]:
        listeners = self.bound or self.wanted
        for listener in listeners:
            if listener.name == listener_name:
                return listener.advertised
        return listeners[0].advertised


def java_string_hash(text: str) -> int:
    """Java's ``String.hashCode`` (UTF-16 code units, 32-bit wrap-around), signed."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def node_listeners(listeners: tuple[ServedListener, ...], node_id: int) -> list[ServedListener]:
    """Node ``node_id``'s listeners: each of node 1's shifted by node_id - 1 ports (port 0
    stays 0; an explicitly advertised port shifts likewise)."""
    shift = node_id - 1
    out = []
    for x in listeners:
        out.append(
            ServedListener(
                x.name,
                x.protocol,
                x.host,
                x.port + shift if x.port else 0,
                x.advertised_host,
                x.advertised_port + shift if x.advertised_port else None,
            )
        )
    return out


class Cluster:
    """The nodes and the per-partition replication state of a virtual cluster."""

    def __init__(self, broker: Broker, node_count: int) -> None:
        assert 2 <= node_count <= MAX_NODES
        self.broker = broker
        self.node_count = node_count
        self.nodes: dict[int, ClusterNode] = {
            k: ClusterNode(k, node_listeners(broker.config.listeners, k))
            for k in range(1, node_count + 1)
        }
        self.partitions: dict[str, list[PartitionReplicas]] = {}
        self._security: dict[str, ListenerSecurity | None] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Read the persisted assignments and elect the preferred leaders (all nodes up)."""
        path = self.broker.config.data_dir / CLUSTER_FILE
        stored: dict[str, Any] = {}
        if path.exists():
            stored = json.loads(path.read_text()).get("topics", {})
        for topic in self.broker.metadata:
            entry = stored.get(topic.name)
            assignment: list[list[int]] | None = None
            if entry is not None and entry.get("topic_id") == str(topic.topic_id):
                assignment = entry["replicas"]
                if len(assignment) != topic.num_partitions or any(
                    not r or any(not 1 <= n <= self.node_count for n in r) for r in assignment
                ):
                    assignment = None  # another node count, or damaged: place again
            if assignment is None:
                rf = min(
                    len(entry["replicas"][0])
                    if entry and entry.get("replicas")
                    else self.default_replication_factor(topic.name),
                    self.node_count,
                )
                assignment = self.place(topic.name, 0, topic.num_partitions, rf)
            self.partitions[topic.name] = [
                PartitionReplicas(list(r), r[0], list(r)) for r in assignment
            ]
        self.save()

    def save(self) -> None:
        doc = {
            "version": 1,
            "nodes": self.node_count,
            "topics": {
                t.name: {
                    "topic_id": str(t.topic_id),
                    "replicas": [p.replicas for p in self.partitions.get(t.name, [])],
                }
                for t in self.broker.metadata
            },
        }
        _write_atomically(
            self.broker.config.data_dir / CLUSTER_FILE, json.dumps(doc, indent=1).encode()
        )

    def adopt_node_one(self, servers: list[Any], bound: list[ServedListener]) -> None:
        """Node 1 is the broker's own listeners (bound by :meth:`Broker.start`)."""
        node = self.nodes[1]
        node.servers = servers
        node.bound = bound

    async def start(self, security: dict[str, ListenerSecurity | None]) -> None:
        """Bind and serve nodes 2..N (node 1 is the broker's own listeners)."""
        self._security = security
        for node_id in range(2, self.node_count + 1):
            await self._open(self.nodes[node_id])

    async def _open(self, node: ClusterNode) -> None:
        wanted = node.bound or node.wanted  # a restart binds the ports it had
        socks = []
        try:
            for listener in wanted:
                socks.append(bind_listener(listener.host, listener.port))
        except BaseException:
            for sock in socks:
                sock.close()
            raise
        bound = []
        for listener, sock in zip(wanted, socks, strict=True):
            secured = self._security.get(listener.name)
            context = secured.ssl_context if secured is not None else None
            limits = self.broker.limits
            acceptor = Acceptor(
                sock,
                self.broker.connection_factory(secured, node.node_id),
                context,
                limits.admits,
                limits.at_fd_budget,
            )
            await acceptor.start()
            node.servers.append(acceptor)
            port = sock.getsockname()[1]
            bound.append(
                listener
                if listener.port == port and listener.advertised_port
                else listener.bound_to(port)
            )
        node.bound = bound
        node.up = True

    def close_servers(self) -> None:
        for node in self.nodes.values():
            for server in node.servers:
                server.close()
            node.servers.clear()

    # -- placement -------------------------------------------------------------------------

    def default_replication_factor(self, topic_name: str) -> int:
        """The factor of a topic created without one: the configured default if set, else
        DEFAULT_CLUSTER_REPLICATION_FACTOR; never more than the nodes."""
        config = self.broker.config
        name = {
            OFFSETS_TOPIC: "offsets.topic.replication.factor",
            TRANSACTION_STATE_TOPIC: "transaction.state.log.replication.factor",
        }.get(topic_name, "default.replication.factor")
        wanted = (
            int(config.properties[name])
            if name in config.properties
            else DEFAULT_CLUSTER_REPLICATION_FACTOR
        )
        return max(1, min(wanted, self.node_count))

    def place(
        self, topic_name: str, first_partition: int, end_partition: int, rf: int
    ) -> list[list[int]]:
        """Replicas of partitions first..end-1: round-robin from a per-topic start node."""
        n = self.node_count
        start = zlib.crc32(topic_name.encode()) % n
        return [
            [(start + p + j) % n + 1 for j in range(rf)]
            for p in range(first_partition, end_partition)
        ]

    def topic_created(self, topic: TopicMetadata, rf: int) -> None:
        assignment = self.place(topic.name, 0, topic.num_partitions, rf)
        self.partitions[topic.name] = [self._elect_new(r) for r in assignment]
        self.save()

    def partitions_added(self, topic: TopicMetadata) -> None:
        states = self.partitions.setdefault(topic.name, [])
        rf = len(states[0].replicas) if states else self.default_replication_factor(topic.name)
        states.extend(
            self._elect_new(r)
            for r in self.place(topic.name, len(states), topic.num_partitions, rf)
        )
        self.save()

    def topic_deleted(self, name: str) -> None:
        if self.partitions.pop(name, None) is not None:
            self.save()

    def _elect_new(self, replicas: list[int]) -> PartitionReplicas:
        live = [n for n in replicas if self.nodes[n].up]
        if not live:
            return PartitionReplicas(replicas, NO_LEADER, [replicas[0]])
        return PartitionReplicas(replicas, live[0], live)

    # -- queries ---------------------------------------------------------------------------

    def replication_factor(self, topic_name: str) -> int:
        states = self.partitions.get(topic_name)
        return len(states[0].replicas) if states else 1

    def state_of(self, topic_name: str, partition: int) -> PartitionReplicas | None:
        states = self.partitions.get(topic_name)
        if states is None or not 0 <= partition < len(states):
            return None
        return states[partition]

    def check_leader(self, node_id: int, topic_name: str, partition: int) -> None:
        """NOT_LEADER_OR_FOLLOWER unless ``node_id`` leads the partition."""
        states = self.partitions.get(topic_name)
        if states is not None and partition < len(states) and states[partition].leader != node_id:
            raise KafkaError(ErrorCode.NOT_LEADER_OR_FOLLOWER)

    def check_min_isr(self, topic: TopicMetadata, partition: int) -> None:
        """acks=all: NOT_ENOUGH_REPLICAS when the ISR is below min.insync.replicas."""
        state = self.state_of(topic.name, partition)
        if state is None:
            return
        min_isr = int(self.broker.topics.effective_configs(topic).get("min.insync.replicas", "1"))
        if len(state.isr) < min_isr:
            raise KafkaError(
                ErrorCode.NOT_ENOUGH_REPLICAS,
                f"The size of the current ISR {state.isr} is insufficient to satisfy the min.isr requirement of {min_isr}",
            )

    def live_nodes(self) -> list[ClusterNode]:
        return [node for node in self.nodes.values() if node.up]

    def endpoint(self, node_id: int, listener_name: str) -> tuple[str, int]:
        return self.nodes[node_id].endpoint(listener_name)

    def coordinator_of(self, key_type: int, key: str) -> int:
        """The node coordinating a group (key_type 0) or transactional id (1): the leader
        of its internal-topic partition; NO_LEADER when that partition is offline."""
        if key_type == 1:
            topic, partitions_config = (
                TRANSACTION_STATE_TOPIC,
                "transaction.state.log.num.partitions",
            )
        else:
            topic, partitions_config = OFFSETS_TOPIC, "offsets.topic.num.partitions"
        states = self.partitions.get(topic)
        count = len(states) if states else self.broker.config.get_int(partitions_config)
        partition = (java_string_hash(key) & 0x7FFFFFFF) % count
        if states:
            return states[partition].leader
        # Not created yet: where it will be placed.
        replicas = self.place(
            topic, partition, partition + 1, self.default_replication_factor(topic)
        )[0]
        live = [n for n in replicas if self.nodes[n].up]
        return live[0] if live else NO_LEADER

    def route(self, ctx: RequestContext, request: Any) -> Any:
        """A coordinator request sent to the wrong node: its answer; else None."""
        return cluster_routing.route(self, ctx, request)

    # -- control operations ----------------------------------------------------------------

    def _node(self, node_id: int) -> ClusterNode:
        node = self.nodes.get(node_id)
        if node is None:
            raise ClusterError(404, f"unknown node {node_id}")
        return node

    async def stop_node(self, node_id: int) -> None:
        """Close the node's listeners and connections; fail its partitions over."""
        node = self._node(node_id)
        if not node.up:
            return
        node.up = False
        for server in node.servers:
            server.close()
        node.servers.clear()
        self.broker.drop_connections(node_id)
        changed = False
        for name, states in self.partitions.items():
            for index, state in enumerate(states):
                if node_id not in state.isr:
                    continue
                if len(state.isr) > 1:
                    state.isr.remove(node_id)
                if state.leader == node_id:
                    others = [
                        n
                        for n in state.replicas
                        if n in state.isr and n != node_id and self.nodes[n].up
                    ]
                    self._set_leader(name, index, others[0] if others else NO_LEADER)
                    changed = True
        if changed:
            self.broker.metadata.save()
        logger.info("node %d stopped", node_id)

    async def start_node(self, node_id: int) -> None:
        """Reopen the node's listeners; it rejoins the ISR (and leads what was offline)."""
        node = self._node(node_id)
        if node.up:
            return
        await self._open(node)
        changed = False
        for name, states in self.partitions.items():
            for index, state in enumerate(states):
                if node_id not in state.replicas:
                    continue
                if state.leader == NO_LEADER:
                    if node_id in state.isr:
                        self._set_leader(name, index, node_id)
                        changed = True
                elif node_id not in state.isr:
                    state.isr = [n for n in state.replicas if n in state.isr or n == node_id]
        if changed:
            self.broker.metadata.save()
        logger.info("node %d started", node_id)

    def move_leader(self, topic_name: str, partition: int, node_id: int) -> None:
        """Make ``node_id`` the partition's leader (an ISR member), bumping the epoch."""
        self._node(node_id)
        state = self.state_of(topic_name, partition)
        if state is None:
            raise ClusterError(404, f"unknown partition {topic_name}-{partition}")
        if node_id not in state.isr or not self.nodes[node_id].up:
            raise ClusterError(
                409, f"node {node_id} is not in the ISR {state.isr} of {topic_name}-{partition}"
            )
        if state.leader == node_id:
            return
        self._set_leader(topic_name, partition, node_id)
        self.broker.metadata.save()

    def elect(self, topic_name: str, partition: int, unclean: bool) -> ErrorCode:
        """ElectLeaders for one partition: preferred (the first replica, if live and in the
        ISR) or unclean (any live replica, only when the partition has no leader)."""
        state = self.partitions[topic_name][partition]
        if unclean:
            if state.leader != NO_LEADER:
                return ErrorCode.ELECTION_NOT_NEEDED
            live = [n for n in state.replicas if self.nodes[n].up]
            if not live:
                return ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE
            state.isr = [live[0]]
            self._set_leader(topic_name, partition, live[0])
        else:
            preferred = state.replicas[0]
            if state.leader == preferred:
                return ErrorCode.ELECTION_NOT_NEEDED
            if preferred not in state.isr or not self.nodes[preferred].up:
                return ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE
            self._set_leader(topic_name, partition, preferred)
        self.broker.metadata.save()
        return ErrorCode.NONE

    def _set_leader(self, topic_name: str, partition: int, node_id: int) -> None:
        """A leader change: new epoch, opened in the log's epoch cache at the log end."""
        state = self.partitions[topic_name][partition]
        state.leader = node_id
        topic = self.broker.metadata.get(topic_name)
        if topic is None:
            return
        topic.leader_epochs[partition] += 1
        log = self.broker.topics.log(topic_name, partition)
        if log is not None:
            log.epoch_cache.assign(topic.leader_epochs[partition], log.log_end_offset)
        self.broker.waiters.notify((topic_name, partition))  # parked fetches answer the change

    # -- reporting -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What GET /v1/state answers: nodes, partitions, groups."""
        listener = self.broker.config.listeners[0].name
        nodes = []
        for node in self.nodes.values():
            host, port = node.endpoint(listener)
            nodes.append({"id": node.node_id, "host": host, "port": port, "up": node.up})
        topics: dict[str, Any] = {}
        for topic in self.broker.metadata:
            states = self.partitions.get(topic.name, [])
            topics[topic.name] = {
                "partitions": [
                    {
                        "partition": index,
                        "leader": s.leader,
                        "leader_epoch": topic.leader_epochs[index],
                        "replicas": list(s.replicas),
                        "isr": list(s.isr),
                    }
                    for index, s in enumerate(states)
                ]
            }
        return {"nodes": nodes, "topics": topics, "groups": self.groups_state()}

    def groups_state(self) -> dict[str, Any]:
        """Each known group: its coordinator node and state (classic and KIP-848 groups)."""
        groups: dict[str, Any] = {}
        runtime = self.broker.group_runtime_if_started
        coordinator = None if runtime is None else runtime.coordinator
        if coordinator is None:
            return groups
        found: list[tuple[str, Any]] = [
            *coordinator.consumer_groups.groups.items(),
            *coordinator.groups.groups.items(),
        ]
        for group_id, group in sorted(found, key=lambda item: item[0]):
            groups[group_id] = {
                "coordinator": self.coordinator_of(0, group_id),
                "state": str(group.state),
            }
        return groups
