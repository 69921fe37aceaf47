"""The handler registry: which API keys and versions kbroker serves, and by what.

``API_TABLE`` is the single source of the ApiVersions answer: a key is advertised exactly
when it has a row, with the row's range, and the row names the module of
``kbroker.handlers`` that serves it.  That module is imported on the key's first request
(:func:`load_handler`), so start-up pays for no handler it has not used; its
``@handler(...)`` registration must state the same range as the row, which
:func:`load_handler` checks (and ``tests/broker/test_registry.py`` checks for every row).
Registering a key twice raises at import time; a range beyond what the generated schemas
can code raises too.

A handler may be registered from a version below the schema's minimum, to advertise it
and answer it with an error (Produce v0-2, as Kafka 4 does: KAFKA-18659).

Version emulation (``kbroker.emulate.version``, see ``kbroker.emulation``) narrows these
rows to a Kafka release's ranges with :func:`served_ranges`; it never widens them.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from kbroker.session import Session
from kbroker.wire.api import ApiKey
from kbroker.wire.messages import REQUESTS, RESPONSES

if TYPE_CHECKING:
    from kbroker.server import Broker

T = TypeVar("T")

# api key -> (module in kbroker.handlers, min version, max version).
API_TABLE: dict[int, tuple[str, int, int]] = {
    ApiKey.PRODUCE: ("produce", 0, 13),
    ApiKey.FETCH: ("fetch", 4, 18),
    ApiKey.LIST_OFFSETS: ("list_offsets", 1, 11),
    ApiKey.METADATA: ("metadata", 0, 13),
    ApiKey.OFFSET_COMMIT: ("offset_commit", 2, 10),
    ApiKey.OFFSET_FETCH: ("offset_fetch", 1, 10),
    ApiKey.FIND_COORDINATOR: ("find_coordinator", 0, 6),
    ApiKey.JOIN_GROUP: ("join_group", 0, 9),
    ApiKey.HEARTBEAT: ("heartbeat", 0, 4),
    ApiKey.LEAVE_GROUP: ("leave_group", 0, 5),
    ApiKey.SYNC_GROUP: ("sync_group", 0, 5),
    ApiKey.DESCRIBE_GROUPS: ("describe_groups", 0, 6),
    ApiKey.LIST_GROUPS: ("list_groups", 0, 5),
    ApiKey.API_VERSIONS: ("api_versions", 0, 4),
    ApiKey.CREATE_TOPICS: ("create_topics", 2, 7),
    ApiKey.DELETE_TOPICS: ("delete_topics", 1, 6),
    ApiKey.DELETE_RECORDS: ("delete_records", 0, 2),
    ApiKey.INIT_PRODUCER_ID: ("init_producer_id", 0, 5),
    ApiKey.OFFSET_FOR_LEADER_EPOCH: ("offset_for_leader_epoch", 2, 4),
    ApiKey.ADD_PARTITIONS_TO_TXN: ("add_partitions_to_txn", 0, 5),
    ApiKey.ADD_OFFSETS_TO_TXN: ("add_offsets_to_txn", 0, 4),
    ApiKey.END_TXN: ("end_txn", 0, 5),
    ApiKey.TXN_OFFSET_COMMIT: ("txn_offset_commit", 0, 5),
    ApiKey.DESCRIBE_CONFIGS: ("describe_configs", 1, 4),
    ApiKey.ALTER_CONFIGS: ("alter_configs", 0, 2),
    ApiKey.CREATE_PARTITIONS: ("create_partitions", 0, 3),
    ApiKey.DELETE_GROUPS: ("delete_groups", 0, 2),
    ApiKey.INCREMENTAL_ALTER_CONFIGS: ("alter_configs", 0, 1),
    ApiKey.OFFSET_DELETE: ("offset_delete", 0, 0),
    ApiKey.DESCRIBE_CLUSTER: ("describe_cluster", 0, 2),
    ApiKey.DESCRIBE_PRODUCERS: ("describe_producers", 0, 0),
    ApiKey.DESCRIBE_TRANSACTIONS: ("describe_transactions", 0, 0),
    ApiKey.LIST_TRANSACTIONS: ("list_transactions", 0, 2),
    ApiKey.ALTER_REPLICA_LOG_DIRS: ("alter_replica_log_dirs", 1, 2),
    ApiKey.DESCRIBE_LOG_DIRS: ("describe_log_dirs", 1, 4),
    ApiKey.ELECT_LEADERS: ("elect_leaders", 0, 2),
    ApiKey.ALTER_PARTITION_REASSIGNMENTS: ("alter_partition_reassignments", 0, 1),
    ApiKey.LIST_PARTITION_REASSIGNMENTS: ("list_partition_reassignments", 0, 0),
    ApiKey.DESCRIBE_QUORUM: ("describe_quorum", 0, 2),
    ApiKey.UPDATE_FEATURES: ("update_features", 0, 2),
    ApiKey.LIST_CONFIG_RESOURCES: ("list_config_resources", 0, 1),
    ApiKey.DESCRIBE_TOPIC_PARTITIONS: ("describe_topic_partitions", 0, 0),
    # ACLs (issue 11)
    ApiKey.DESCRIBE_ACLS: ("describe_acls", 1, 3),
    ApiKey.CREATE_ACLS: ("create_acls", 1, 3),
    ApiKey.DELETE_ACLS: ("delete_acls", 1, 3),
    # -- security (issue 11): SASL and SCRAM credentials
    ApiKey.SASL_HANDSHAKE: ("sasl_handshake", 0, 1),
    ApiKey.SASL_AUTHENTICATE: ("sasl_authenticate", 0, 2),
    ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS: ("describe_user_scram_credentials", 0, 0),
    ApiKey.ALTER_USER_SCRAM_CREDENTIALS: ("alter_user_scram_credentials", 0, 0),
    # -- delegation tokens (issue 11, kbroker.security.delegation)
    ApiKey.CREATE_DELEGATION_TOKEN: ("create_delegation_token", 1, 3),
    ApiKey.RENEW_DELEGATION_TOKEN: ("renew_delegation_token", 1, 2),
    ApiKey.EXPIRE_DELEGATION_TOKEN: ("expire_delegation_token", 1, 2),
    ApiKey.DESCRIBE_DELEGATION_TOKEN: ("describe_delegation_token", 1, 3),
    # -- KIP-848 consumer groups (issue 14) --
    ApiKey.CONSUMER_GROUP_HEARTBEAT: ("consumer_group_heartbeat", 0, 1),
    ApiKey.CONSUMER_GROUP_DESCRIBE: ("consumer_group_describe", 0, 1),
    # -- client quotas (issue 12) --
    ApiKey.DESCRIBE_CLIENT_QUOTAS: ("describe_client_quotas", 0, 1),
    ApiKey.ALTER_CLIENT_QUOTAS: ("alter_client_quotas", 0, 1),
    # -- client telemetry (issue 12, KIP-714): advertised only with kbroker.client.telemetry.enable
    ApiKey.GET_TELEMETRY_SUBSCRIPTIONS: ("get_telemetry_subscriptions", 0, 0),
    ApiKey.PUSH_TELEMETRY: ("push_telemetry", 0, 0),
    # -- KIP-932 share groups (issue 14) --
    ApiKey.SHARE_GROUP_HEARTBEAT: ("share_group_heartbeat", 1, 1),
    ApiKey.SHARE_GROUP_DESCRIBE: ("share_group_describe", 1, 1),
    ApiKey.SHARE_FETCH: ("share_fetch", 1, 2),
    ApiKey.SHARE_ACKNOWLEDGE: ("share_acknowledge", 1, 2),
    ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS: ("describe_share_group_offsets", 0, 1),
    ApiKey.ALTER_SHARE_GROUP_OFFSETS: ("alter_share_group_offsets", 0, 0),
    ApiKey.DELETE_SHARE_GROUP_OFFSETS: ("delete_share_group_offsets", 0, 0),
}


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request besides its body."""

    broker: Broker
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    peer: str
    now_ms: int
    # The connection's security facts (principal, client host, listener).
    session: Session = field(default_factory=Session)
    # The node whose listener accepted the connection: the configured node.id, or in a
    # virtual cluster (kbroker.nodes > 1) one of 1..N.
    node_id: int = 1
    # Seconds the handler spent parked (a Fetch long poll, a rebalance): not busy time, so
    # left out of the request-time quota (kbroker.quotas).  See :meth:`parked`.
    parked_s: float = 0.0

    async def parked(self, waiting: Awaitable[T]) -> T:
        """Await ``waiting``, counting the time as parked rather than busy."""
        started = time.perf_counter()
        try:
            return await waiting
        finally:
            self.parked_s += time.perf_counter() - started


HandlerFn = Callable[[RequestContext, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Handler:
    api_key: int
    min_version: int
    max_version: int
    fn: HandlerFn
    request_cls: type
    response_cls: type


# The handlers registered so far (their modules imported); see load_handler.
HANDLERS: dict[int, Handler] = {}


def handler(api_key: int, min_version: int, max_version: int) -> Callable[[HandlerFn], HandlerFn]:
    """Register ``fn`` as the handler of ``api_key`` for versions min..max."""

    def register(fn: HandlerFn) -> HandlerFn:
        if api_key in HANDLERS:
            raise RuntimeError(f"API key {api_key} registered twice")
        request_cls: Any = REQUESTS[api_key]
        response_cls = RESPONSES[api_key]
        spec_max: int = request_cls.VALID_VERSIONS[1]
        if max_version > spec_max:
            raise RuntimeError(f"API key {api_key}: max {max_version} > schema max {spec_max}")
        HANDLERS[api_key] = Handler(api_key, min_version, max_version, fn, request_cls, response_cls)
        return fn

    return register


def load_handler(api_key: int) -> Handler | None:
    """The handler of ``api_key`` (importing its module the first time), or None if
    ``API_TABLE`` has no row for it."""
    found = HANDLERS.get(api_key)
    if found is not None:
        return found
    row = API_TABLE.get(api_key)
    if row is None:
        return None
    module, lo, hi = row
    importlib.import_module(f"kbroker.handlers.{module}")
    found = HANDLERS.get(api_key)
    if found is None or (found.min_version, found.max_version) != (lo, hi):
        registered = None if found is None else (found.min_version, found.max_version)
        raise RuntimeError(f"API key {api_key}: API_TABLE says {module} v{lo}-{hi}, the module registered {registered}")
    return found


def advertised_versions() -> list[tuple[int, int, int]]:
    """(api_key, min_version, max_version) for ApiVersions, sorted by key."""
    return sorted((int(key), lo, hi) for key, (_module, lo, hi) in API_TABLE.items())


def served_ranges(release_ranges: dict[int, tuple[int, int]] | None) -> dict[int, tuple[int, int]]:
    """API key -> (min, max) to advertise and accept: ``API_TABLE``'s rows intersected with
    a release's ranges (None: the rows as they are).  A key the release lacks, or whose
    range does not meet kbroker's, is left out."""
    out: dict[int, tuple[int, int]] = {}
    for key, (_module, lo, hi) in API_TABLE.items():
        if release_ranges is not None:
            theirs = release_ranges.get(int(key))
            if theirs is None:
                continue
            lo, hi = max(lo, theirs[0]), min(hi, theirs[1])
            if lo > hi:
                continue
        out[int(key)] = (lo, hi)
    return dict(sorted(out.items()))
