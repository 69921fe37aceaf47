"""A small synchronous Kafka client for the admin CLI, built on ``kbroker.wire``.

Theory of operation
-------------------
:class:`Client` keeps one :class:`BrokerConnection` per broker it talks to: first the
bootstrap address, then the brokers Metadata names (by node id, for the partition leaders),
and the group coordinators FindCoordinator names.  Requests that concern partitions
(Produce, Fetch, ListOffsets) are split by leader and sent to each leader in turn; group
requests go to the group's coordinator; topic, ACL and SCRAM-credential administration goes
to the controller Metadata names (any broker of a Kafka 4 cluster forwards it there anyway).  Nothing in here is
kbroker-specific: every call is plain Kafka protocol, at the version
:meth:`BrokerConnection.version` agrees with the broker.

Errors come back as :class:`ClientError` (a one-line message for the command to print);
per-item errors of batch APIs (one topic of several) are returned to the caller instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kbroker.acl.model import AclBinding, AclFilter
from kbroker.client.connection import (
    DEFAULT_TIMEOUT_S,
    BrokerConnection,
    ClientError,
    KafkaError,
    check,
)
from kbroker.client.security import SecurityConfig
from kbroker.wire.errors import ErrorCode

# The security settings the admin CLI's options chose (kbroker.commands sets it once per run):
# every Client of the run connects with them unless given others.
_DEFAULT_SECURITY: SecurityConfig | None = None


def set_default_security(security: SecurityConfig | None) -> None:
    global _DEFAULT_SECURITY
    _DEFAULT_SECURITY = security

# ListOffsets' special timestamps.
LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
# FindCoordinator key type of a consumer group.
GROUP_KEY_TYPE = 0
# ConfigResource type of a topic (DescribeConfigs, IncrementalAlterConfigs).
TOPIC_RESOURCE = 2
# IncrementalAlterConfigs operations.
CONFIG_SET = 0
CONFIG_DELETE = 1
# Retries of a request answered with a retriable error (a leader moving, a coordinator loading).
RETRIES = 5
RETRY_BACKOFF_S = 0.2


def parse_bootstrap(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9092`` for IPv6) -> (host, port); ClientError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ClientError(f"--bootstrap takes HOST:PORT, got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not 0 < int(port) < 65536:
        raise ClientError(f"--bootstrap port out of range: {port}")
    return host, int(port)


@dataclass
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: list[int]
    isr: list[int]
    error_code: int = 0


@dataclass
class TopicInfo:
    name: str
    error_code: int
    internal: bool
    topic_id: str | None
    partitions: dict[int, PartitionInfo] = field(default_factory=dict)


@dataclass
class ClusterInfo:
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, tuple[str, int]]
    topics: dict[str, TopicInfo]


class Client:
    """Connections to a cluster reached through ``bootstrap`` (``HOST:PORT``)."""

    def __init__(self, bootstrap: str, timeout_s: float = DEFAULT_TIMEOUT_S, security: SecurityConfig | None = None) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.timeout_s = timeout_s
        self.security = security if security is not None else _DEFAULT_SECURITY
        self._bootstrap_conn: BrokerConnection | None = None
        self._by_node: dict[int, BrokerConnection] = {}
        self._brokers: dict[int, tuple[str, int]] = {}
        self._controller_id = -1

    def close(self) -> None:
        for conn in {id(c): c for c in [self._bootstrap_conn, *self._by_node.values()] if c}.values():
            conn.close()
        self._by_node.clear()
        self._bootstrap_conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections -------------------------------------------------------------------------
    @property
    def any_broker(self) -> BrokerConnection:
        if self._bootstrap_conn is None:
            self._bootstrap_conn = BrokerConnection(*self.bootstrap, timeout_s=self.timeout_s, security=self.security)
        return self._bootstrap_conn

    def node(self, node_id: int) -> BrokerConnection:
        """The connection to broker ``node_id`` (as Metadata advertises it)."""
        conn = self._by_node.get(node_id)
        if conn is not None:
            return conn
        if node_id not in self._brokers:
            self.metadata([])
        if node_id not in self._brokers:
            raise ClientError(f"broker {node_id} is not in the cluster's metadata")
        host, port = self._brokers[node_id]
        if (host, port) == self.bootstrap:
            conn = self.any_broker
        else:
            conn = BrokerConnection(host, port, timeout_s=self.timeout_s, security=self.security)
        self._by_node[node_id] = conn
        return conn

    def controller(self) -> BrokerConnection:
        if self._controller_id < 0:
            self.metadata([])
        return self.node(self._controller_id) if self._controller_id in self._brokers else self.any_broker

    # -- metadata ----------------------------------------------------------------------------
    def metadata(self, topics: Sequence[str] | None) -> ClusterInfo:
        """Metadata for ``topics`` (None: every topic; []: brokers only).  Never creates a topic."""
        from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic

        req = MetadataRequest(
            topics=None if topics is None else [MetadataRequestTopic(name=t) for t in topics],
            allow_auto_topic_creation=False,
        )
        resp = self.any_broker.request(req)
        self._brokers = {b.node_id: (b.host, b.port) for b in resp.brokers}
        self._controller_id = resp.controller_id
        info = ClusterInfo(resp.cluster_id, resp.controller_id, dict(self._brokers), {})
        for t in resp.topics:
            topic_id = None if t.topic_id is None or t.topic_id.int == 0 else str(t.topic_id)
            ti = TopicInfo(t.name or "", t.error_code, t.is_internal, topic_id)
            for p in t.partitions:
                ti.partitions[p.partition_index] = PartitionInfo(
                    p.partition_index, p.leader_id, p.leader_epoch, list(p.replica_nodes), list(p.isr_nodes), p.error_code
                )
            info.topics[ti.name] = ti
        return info

    def topic(self, name: str) -> TopicInfo:
        """One existing topic's metadata; KafkaError when it does not exist."""
        info = self.metadata([name]).topics.get(name)
        if info is None:
            raise KafkaError(f"topic {name!r}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        check(f"topic {name!r}", info.error_code)
        return info

    def leaders(self, topic: str, partitions: Iterable[int]) -> dict[int, list[int]]:
        """leader node id -> the given partitions of ``topic`` it leads."""
        info = self.topic(topic)
        out: dict[int, list[int]] = {}
        for p in partitions:
            part = info.partitions.get(p)
            if part is None:
                raise KafkaError(f"topic {topic!r} partition {p}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
            if part.leader < 0:
                raise KafkaError(f"topic {topic!r} partition {p}", ErrorCode.LEADER_NOT_AVAILABLE)
            out.setdefault(part.leader, []).append(p)
        return out

    # -- topics ------------------------------------------------------------------------------
    def create_topic(
        self, name: str, partitions: int, replication_factor: int, configs: dict[str, str]
    ) -> Any:
        """Create one topic; the CreatableTopicResult (error_code, error_message, ...)."""
        from kbroker.wire.messages.create_topics_request import (
            CreatableTopic,
            CreatableTopicConfig,
            CreateTopicsRequest,
        )

        topic = CreatableTopic(
            name=name,
            num_partitions=partitions,
            replication_factor=replication_factor,
            configs=[CreatableTopicConfig(name=k, value=v) for k, v in configs.items()],
        )
        req = CreateTopicsRequest(topics=[topic], timeout_ms=int(self.timeout_s * 1000))
        resp = self.controller().request(req)
        return resp.topics[0]

    def delete_topic(self, name: str) -> tuple[int, str | None]:
        """Delete one topic by name; (error_code, error_message)."""
        from kbroker.wire.messages.delete_topics_request import (
            DeleteTopicsRequest,
            DeleteTopicState,
        )

        conn = self.controller()
        req = DeleteTopicsRequest(timeout_ms=int(self.timeout_s * 1000))
        if conn.version(req.API_KEY) >= 6:
            req.topics = [DeleteTopicState(name=name)]
        else:
            req.topic_names = [name]
        resp = conn.request(req)
        r = resp.responses[0]
        return r.error_code, r.error_message

    def describe_topic_configs(self, name: str) -> list[Any]:
        """Every config of topic ``name`` (DescribeConfigsResourceResult.configs)."""
        from kbroker.wire.messages.describe_configs_request import (
            DescribeConfigsRequest,
            DescribeConfigsResource,
        )

        req = DescribeConfigsRequest(
            resources=[DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name, configuration_keys=None)]
        )
        resp = self.any_broker.request(req)
        result = resp.results[0]
        check(f"topic {name!r} configs", result.error_code, result.error_message)
        return list(result.configs)

    def alter_topic_configs(self, name: str, set_: dict[str, str], delete: Sequence[str]) -> None:
        from kbroker.wire.messages.incremental_alter_configs_request import (
            AlterableConfig,
            AlterConfigsResource,
            IncrementalAlterConfigsRequest,
        )

        configs = [AlterableConfig(name=k, config_operation=CONFIG_SET, value=v) for k, v in set_.items()]
        configs += [AlterableConfig(name=k, config_operation=CONFIG_DELETE, value=None) for k in delete]
        req = IncrementalAlterConfigsRequest(
            resources=[AlterConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name, configs=configs)]
        )
        resp = self.any_broker.request(req)
        r = resp.responses[0]
        check(f"topic {name!r}", r.error_code, r.error_message)

    # -- offsets -----------------------------------------------------------------------------
    def list_offsets(self, topic: str, partitions: Iterable[int], timestamp: int) -> dict[int, int]:
        """partition -> offset for ``timestamp`` (LATEST_TIMESTAMP, EARLIEST_TIMESTAMP or ms).

        A time after every record answers -1 (Kafka's "no such offset"), passed through.
        """
        from kbroker.wire.messages.list_offsets_request import (
            ListOffsetsPartition,
            ListOffsetsRequest,
            ListOffsetsTopic,
        )

        out: dict[int, int] = {}
        for leader, parts in self.leaders(topic, partitions).items():
            req = ListOffsetsRequest(
                replica_id=-1,
                topics=[ListOffsetsTopic(name=topic, partitions=[
                    ListOffsetsPartition(partition_index=p, current_leader_epoch=-1, timestamp=timestamp) for p in parts
                ])],
            )
            resp = self.node(leader).request(req)
            for t in resp.topics:
                for p in t.partitions:
                    check(f"topic {topic!r} partition {p.partition_index}", p.error_code)
                    out[p.partition_index] = p.offset
        return out

    # -- groups ------------------------------------------------------------------------------
    def coordinator(self, group: str) -> BrokerConnection:
        from kbroker.wire.messages.find_coordinator_request import FindCoordinatorRequest

        conn = self.any_broker
        req = FindCoordinatorRequest(key_type=GROUP_KEY_TYPE)
        version = conn.version(req.API_KEY)
        if version >= 4:
            req.coordinator_keys = [group]
        else:
            req.key = group
        for attempt in range(RETRIES):
            resp = conn.request(req, version)
            if version >= 4:
                c = resp.coordinators[0]
                code, message, node_id, host, port = c.error_code, c.error_message, c.node_id, c.host, c.port
            else:
                code, message = resp.error_code, resp.error_message
                node_id, host, port = resp.node_id, resp.host, resp.port
            if code == ErrorCode.COORDINATOR_NOT_AVAILABLE and attempt + 1 < RETRIES:
                _sleep(RETRY_BACKOFF_S)
                continue
            check(f"group {group!r} coordinator", code, message)
            self._brokers.setdefault(node_id, (host, port))
            return self.node(node_id)
        raise AssertionError("unreachable")

    def list_groups(self) -> list[Any]:
        """Every group of every broker (ListGroupsResponse.groups items)."""
        from kbroker.wire.messages.list_groups_request import ListGroupsRequest

        found: dict[str, Any] = {}
        brokers = self.metadata([]).brokers
        for node_id in sorted(brokers):
            resp = self.node(node_id).request(ListGroupsRequest())
            check(f"ListGroups on broker {node_id}", resp.error_code)
            for g in resp.groups:
                found[g.group_id] = g
        return [found[k] for k in sorted(found)]

    def describe_group(self, group: str) -> Any:
        from kbroker.wire.messages.describe_groups_request import DescribeGroupsRequest

        for attempt in range(RETRIES):
            resp = self.coordinator(group).request(DescribeGroupsRequest(groups=[group]))
            g = resp.groups[0]
            if g.error_code == ErrorCode.COORDINATOR_LOAD_IN_PROGRESS and attempt + 1 < RETRIES:
                _sleep(RETRY_BACKOFF_S)
                continue
            check(f"group {group!r}", g.error_code, g.error_message)
            return g
        raise AssertionError("unreachable")

    def delete_group(self, group: str) -> int:
        from kbroker.wire.messages.delete_groups_request import DeleteGroupsRequest

        resp = self.coordinator(group).request(DeleteGroupsRequest(groups_names=[group]))
        return int(resp.results[0].error_code)

    def committed_offsets(self, group: str, topics: dict[str, list[int]] | None = None) -> dict[tuple[str, int], int]:
        """(topic, partition) -> committed offset of ``group`` (every committed one when
        ``topics`` is None); partitions with nothing committed are left out."""
        from kbroker.wire.messages import offset_fetch_request as of

        conn = self.coordinator(group)
        version = conn.version(of.OffsetFetchRequest.API_KEY)
        if version >= 8:
            wanted8 = None if topics is None else [of.OffsetFetchRequestTopics(name=t, partition_indexes=ps) for t, ps in topics.items()]
            req = of.OffsetFetchRequest(groups=[of.OffsetFetchRequestGroup(group_id=group, topics=wanted8)])
        else:
            wanted = None if topics is None else [of.OffsetFetchRequestTopic(name=t, partition_indexes=ps) for t, ps in topics.items()]
            req = of.OffsetFetchRequest(group_id=group, topics=wanted)
        resp = conn.request(req, version)
        if version >= 8:
            g = resp.groups[0]
            check(f"group {group!r} offsets", g.error_code)
            answered = g.topics
        else:
            check(f"group {group!r} offsets", resp.error_code)
            answered = resp.topics
        out: dict[tuple[str, int], int] = {}
        for t in answered:
            for p in t.partitions:
                check(f"group {group!r} topic {t.name!r} partition {p.partition_index}", p.error_code)
                if p.committed_offset >= 0:
                    out[(t.name, p.partition_index)] = p.committed_offset
        return out

    def commit_offsets(
        self, group: str, offsets: dict[tuple[str, int], int], *, generation: int = -1, member_id: str = ""
    ) -> None:
        """OffsetCommit; with the defaults (generation -1, no member) as a client outside the
        group's membership, which a broker accepts only while the group has no members."""
        from kbroker.wire.messages.offset_commit_request import (
            OffsetCommitRequest,
            OffsetCommitRequestPartition,
            OffsetCommitRequestTopic,
        )

        by_topic: dict[str, list[OffsetCommitRequestPartition]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            by_topic.setdefault(topic, []).append(
                OffsetCommitRequestPartition(partition_index=partition, committed_offset=offset, committed_leader_epoch=-1, committed_metadata="")
            )
        req = OffsetCommitRequest(
            group_id=group,
            generation_id_or_member_epoch=generation,
            member_id=member_id,
            topics=[OffsetCommitRequestTopic(name=t, partitions=ps) for t, ps in by_topic.items()],
        )
        resp = self.coordinator(group).request(req)
        for t in resp.topics:
            for p in t.partitions:
                check(f"group {group!r} commit of {t.name}:{p.partition_index}", p.error_code)

    # -- produce / fetch ---------------------------------------------------------------------
    def produce(self, topic: str, batches: dict[int, bytes], acks: int = -1) -> dict[int, int]:
        """Send one record batch per partition; partition -> base offset."""
        from kbroker.wire.messages.produce_request import (
            PartitionProduceData,
            ProduceRequest,
            TopicProduceData,
        )

        out: dict[int, int] = {}
        for leader, parts in self.leaders(topic, batches).items():
            req = ProduceRequest(
                acks=acks,
                timeout_ms=int(self.timeout_s * 1000),
                topic_data=[TopicProduceData(name=topic, partition_data=[
                    PartitionProduceData(index=p, records=batches[p]) for p in parts
                ])],
            )
            resp = self.node(leader).request(req)
            for t in resp.responses:
                for p in t.partition_responses:
                    check(f"produce to {topic}:{p.index}", p.error_code, p.error_message)
                    out[p.index] = p.base_offset
        return out

    def fetch(
        self, topic: str, positions: dict[int, int], *, max_wait_ms: int, max_bytes: int, partition_max_bytes: int
    ) -> list[Any]:
        """One Fetch per leader for ``positions`` (partition -> offset); the PartitionData answers."""
        from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic

        answers: list[Any] = []
        leaders = self.leaders(topic, positions)
        wait = max_wait_ms if len(leaders) == 1 else min(max_wait_ms, 100)
        for leader, parts in leaders.items():
            req = FetchRequest(
                replica_id=-1,
                max_wait_ms=wait,
                min_bytes=1,
                max_bytes=max_bytes,
                isolation_level=0,
                session_id=0,
                session_epoch=-1,
                topics=[FetchTopic(topic=topic, partitions=[
                    FetchPartition(partition=p, current_leader_epoch=-1, fetch_offset=positions[p], log_start_offset=-1,
                                   partition_max_bytes=partition_max_bytes)
                    for p in parts
                ])],
            )
            resp = self.node(leader).request(req)
            check(f"fetch from {topic}", resp.error_code)
            for t in resp.responses:
                answers.extend(t.partitions)
        return answers

    # -- ACLs ---------------------------------------------------------------------------------
    def describe_acls(self, f: AclFilter) -> list[AclBinding]:
        """The ACLs matching ``f`` (DescribeAcls), sorted."""
        from kbroker.wire.messages.describe_acls_request import DescribeAclsRequest

        req = DescribeAclsRequest(
            resource_type_filter=f.resource_type, resource_name_filter=f.resource_name, pattern_type_filter=f.pattern_type,
            principal_filter=f.principal, host_filter=f.host, operation=f.operation, permission_type=f.permission_type,
        )
        resp = self.any_broker.request(req)
        check("DescribeAcls", resp.error_code, resp.error_message)
        found = [
            AclBinding(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation, a.permission_type)
            for r in resp.resources for a in r.acls
        ]
        return sorted(found, key=AclBinding.sort_key)

    def create_acls(self, acls: Sequence[AclBinding]) -> list[tuple[int, str | None]]:
        """CreateAcls; one (error_code, error_message) per binding, in order."""
        from kbroker.wire.messages.create_acls_request import AclCreation, CreateAclsRequest

        req = CreateAclsRequest(creations=[
            AclCreation(resource_type=a.resource_type, resource_name=a.resource_name, resource_pattern_type=a.pattern_type,
                        principal=a.principal, host=a.host, operation=a.operation, permission_type=a.permission_type)
            for a in acls
        ])
        resp = self.controller().request(req)
        if len(resp.results) != len(acls):
            raise ClientError(f"CreateAcls answered {len(resp.results)} results for {len(acls)} ACLs")
        return [(r.error_code, r.error_message) for r in resp.results]

    def delete_acls(self, f: AclFilter) -> list[tuple[AclBinding, int, str | None]]:
        """DeleteAcls with one filter; (binding, error_code, error_message) per matching ACL."""
        from kbroker.wire.messages.delete_acls_request import DeleteAclsFilter, DeleteAclsRequest

        req = DeleteAclsRequest(filters=[DeleteAclsFilter(
            resource_type_filter=f.resource_type, resource_name_filter=f.resource_name, pattern_type_filter=f.pattern_type,
            principal_filter=f.principal, host_filter=f.host, operation=f.operation, permission_type=f.permission_type,
        )])
        resp = self.controller().request(req)
        result = resp.filter_results[0]
        check("DeleteAcls", result.error_code, result.error_message)
        return [
            (AclBinding(m.resource_type, m.resource_name, m.pattern_type, m.principal, m.host, m.operation, m.permission_type),
             m.error_code, m.error_message)
            for m in result.matching_acls
        ]

    # -- SCRAM credentials ----------------------------------------------------------------------
    def describe_scram_users(self, names: Sequence[str] | None) -> list[Any]:
        """DescribeUserScramCredentials for ``names`` (None: every user); the result items
        (user, error_code, error_message, credential_infos)."""
        from kbroker.wire.messages.describe_user_scram_credentials_request import (
            DescribeUserScramCredentialsRequest,
            UserName,
        )

        req = DescribeUserScramCredentialsRequest(users=None if names is None else [UserName(name=n) for n in names])
        resp = self.controller().request(req)
        check("DescribeUserScramCredentials", resp.error_code, resp.error_message)
        return list(resp.results)

    def alter_scram_users(
        self, upsertions: Sequence[tuple[str, int, int, bytes, bytes]], deletions: Sequence[tuple[str, int]]
    ) -> list[Any]:
        """AlterUserScramCredentials: upsertions (name, mechanism, iterations, salt,
        salted_password), deletions (name, mechanism); the per-user results."""
        from kbroker.wire.messages.alter_user_scram_credentials_request import (
            AlterUserScramCredentialsRequest,
            ScramCredentialDeletion,
            ScramCredentialUpsertion,
        )

        req = AlterUserScramCredentialsRequest(
            deletions=[ScramCredentialDeletion(name=n, mechanism=m) for n, m in deletions],
            upsertions=[
                ScramCredentialUpsertion(name=n, mechanism=m, iterations=i, salt=salt, salted_password=sp)
                for n, m, i, salt, sp in upsertions
            ],
        )
        return list(self.controller().request(req).results)


def _sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)
