"""The broker: listener, connections, dispatch, and the state handlers share.

Lifecycle: :meth:`Broker.start` locks the data dir (``kbroker.startup``), binds the
listening sockets (one per listener, each with its security: ``kbroker.security``), loads the metadata and opens (recovering if needed) every
partition log, starts the group and transaction coordinators whose internal topics exist
(the others start on the first request that needs them: :attr:`Broker.groups`,
:attr:`Broker.transactions`), then listens.  Handler modules are imported on their key's
first request (``kbroker.registry.load_handler``).  :meth:`Broker.shutdown` closes the listener, lets each
connection finish the request it is serving (up to ``GRACEFUL_SHUTDOWN_S``), cancels what
remains, then flushes and closes the logs, which writes the clean-shutdown marker, and
unlocks the data dir.

All state is changed on the event-loop thread only; log calls are synchronous and
bounded.  Tests can run a broker in-process: ``await Broker(config).start()`` on port 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from kbroker.acceptor import Acceptor
from kbroker.clock import now_ms
from kbroker.config import BrokerConfig, ConfigError
from kbroker.connection import CloseConnection, KafkaConnection
from kbroker.control.faults import FaultEngine
from kbroker.delayed import DataWaiters
from kbroker.emulation import emulation_for
from kbroker.errors import KafkaError, fill_error
from kbroker.features import FinalizedFeatures
from kbroker.limits import ConnectionLimits, RequestMemory, ResponseMemory, connection_fd_budget
from kbroker.log.errors import LogStorageError
from kbroker.metadata import (
    META_PROPERTIES,
    OFFSETS_TOPIC,
    SHARE_GROUP_STATE_TOPIC,
    TRANSACTION_STATE_TOPIC,
    MetadataStore,
)
from kbroker.registry import Handler, RequestContext, load_handler
from kbroker.session import Session
from kbroker.startup import DataDirLock, StartupError, bind_listener, prepare_data_dir
from kbroker.stats import BrokerStats
from kbroker.topics import TopicManager
from kbroker.wire.codec import decode_from
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError, WireError
from kbroker.wire.headers import decode_request_header, encode_response, peek_request_header

if TYPE_CHECKING:
    from kbroker.acl.authorizer import StandardAuthorizer
    from kbroker.client_metrics import ClientMetricsStore
    from kbroker.cluster import Cluster
    from kbroker.groups import GroupRuntime
    from kbroker.http import HttpListener
    from kbroker.quotas.manager import ClientQuotas
    from kbroker.security.listener import ListenerSecurity
    from kbroker.security.scram import ScramStore
    from kbroker.telemetry import TelemetryManager
    from kbroker.transactions import TransactionRuntime

logger = logging.getLogger(__name__)

# How long shutdown waits for in-flight requests before cancelling them.
GRACEFUL_SHUTDOWN_S = 5.0
# How often the periodic task runs log housekeeping (flush.ms, segment.ms, retention checks
# are each compared against their own interval inside; this is only the tick).
HOUSEKEEPING_TICK_S = 1.0


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.metadata = MetadataStore(config.data_dir)
        self.waiters = DataWaiters()
        self.topics = TopicManager(self)
        self._groups: GroupRuntime | None = None
        self._transactions: TransactionRuntime | None = None
        self._scram: ScramStore | None = None
        self._delegation_tokens: Any = None  # kbroker.security.delegation.DelegationTokenStore
        self._client_metrics: ClientMetricsStore | None = None
        self._telemetry: TelemetryManager | None = None
        # (mechanism, user, credential) set at start, as kafka-storage format --add-scram.
        self.scram_seed: list[tuple[str, str, Any]] = []
        self.closing = False
        self.in_flight = 0
        self._servers: list[Acceptor] = []
        self._connections: set[KafkaConnection] = set()
        # max.connections, max.connections.per.ip (+ overrides), queued.max.request.bytes
        self.limits = ConnectionLimits.from_config(config)
        self.request_memory = RequestMemory(config.get_int("queued.max.request.bytes"))
        self.response_memory = ResponseMemory(config.get_int("kbroker.queued.max.response.bytes"))
        self._background: set[asyncio.Task[None]] = set()
        # The first listener's bound address, and every listener's by name.
        self.listen_address: tuple[str, int] = (config.listen_host, config.listen_port)
        self.listen_addresses: dict[str, tuple[str, int]] = {x.name: (x.host, x.port) for x in config.listeners}
        # Fault rules (kbroker.control.faults).  dispatch and the Produce handler check only
        # these two flags, which the engine keeps true while a rule of their kind can fire.
        self.faults_active = False
        self.append_faults_active = False
        self.fault_engine = FaultEngine(self)
        self.node_id = config.node_id
        every = config.get_int("kbroker.test.fail.produce.after.append.every")
        if every > 0:  # the older way to ask for one such rule
            self.fault_engine.add({"api": "Produce", "error": "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "after_append": True, "every": every})
        self._lock = DataDirLock(config.data_dir)
        # The other log directories (log.dirs) are locked too: one broker per directory.
        data_abs = config.data_dir.absolute()
        self._log_dir_locks = [DataDirLock(d) for d in config.effective_log_dirs if d.absolute() != data_abs]
        # The Kafka release answered as (kbroker.emulate.version): ranges, features, behaviour.
        self.emulation = emulation_for(config.get("kbroker.emulate.version"), config.get_bool("kbroker.client.telemetry.enable"))
        self.features: FinalizedFeatures | None = None  # loaded at start (data dir locked)
        self.stats = BrokerStats()
        self.http: HttpListener | None = None  # kbroker.http.listen (aiohttp imported only then)
        if config.get("kbroker.http.listen"):
            from kbroker.http import HttpListener

            self.http = HttpListener(self, config.get("kbroker.http.listen") or "")
        if config.get_bool("kbroker.control.enabled"):
            if self.http is None:
                raise ConfigError("kbroker.control.enabled=true needs the HTTP listener: set kbroker.http.listen (or use --dev)")
            from kbroker.control.api import install_control

            install_control(self, self.http)
        self.ready = False  # logs recovered and the Kafka listener accepting (/readyz)
        # The ACL authorizer (kbroker.acl), loaded at start when authorizer.class.name asks for
        # it; None means every request is allowed, and is all a handler checks then.
        self.authorizer: StandardAuthorizer | None = None
        # The virtual cluster (kbroker.nodes > 1): nodes, replicas, leaders, ISR.  None for a
        # single node, which is all the request path checks then.
        self.cluster: Cluster | None = None
        self._node_id = self.node_id  # read once (config.node_id parses)
        if config.get_int("kbroker.nodes") > 1:
            from kbroker.cluster import Cluster

            self.cluster = Cluster(self, config.get_int("kbroker.nodes"))
        # Client quotas (kbroker.quotas), loaded at start from the data dir.
        self.quotas: ClientQuotas | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Lock the data dir, bind, load and recover, then serve.  A failure raises
        StartupError (or the OSError of the metadata/logs) with everything undone."""
        data_dir = self.config.data_dir
        prepare_data_dir(data_dir)
        self._lock.acquire()
        try:
            for lock in self._log_dir_locks:
                prepare_data_dir(lock.path.parent)
                lock.acquire()
        except BaseException:
            self._release_locks()
            raise
        socks: list[socket.socket] = []
        logs_open = False
        try:
            security = self._listener_security()
            # Bind before loading anything: a port in use fails in a blink, not after recovery.
            for listener in self.config.listeners:
                socks.append(bind_listener(listener.host, listener.port))
            if self.http is not None:  # before recovery: /healthz answers, /readyz says 503
                await self.http.start()
            if self.scram_seed:
                store = self.scram_credentials
                for mechanism, user, credential in self.scram_seed:
                    store.upsert(user, mechanism, credential)
                store.save()
            existing = (data_dir / META_PROPERTIES).exists()
            self.metadata.load(self.config.node_id)
            self._load_authorizer()
            self._load_quotas()
            self.features = FinalizedFeatures(data_dir, self.emulation)
            self.topics.open(now_ms())
            logs_open = True
            if self.cluster is not None:
                self.cluster.load()
            assert self.topics.logs is not None
            self.limits.fd_budget = connection_fd_budget(self.topics.logs.files.max_open)
            if existing:
                self._log_recovery()
            # A coordinator with state on disk starts now: its timers (member sessions, offset
            # expiry, transaction timeouts) and the markers of prepared transactions cannot wait
            # for a client.  Otherwise it starts on the first request that needs it.
            if self.metadata.get(OFFSETS_TOPIC) is not None or self.metadata.get(SHARE_GROUP_STATE_TOPIC) is not None:
                _ = self.groups
            if self.metadata.get(TRANSACTION_STATE_TOPIC) is not None:
                _ = self.transactions
            for listener, sock in zip(self.config.listeners, socks, strict=True):
                secured = security[listener.name]
                context = secured.ssl_context if secured is not None else None
                acceptor = Acceptor(
                    sock, self.connection_factory(secured), context, self.limits.admits, self.limits.at_fd_budget
                )
                await acceptor.start()
                self._servers.append(acceptor)
        except BaseException:  # incl. cancellation (Ctrl-C during start-up): undo, then re-raise
            self._undo_start(socks, logs_open)
            if self.http is not None:
                await self.http.stop()
            raise
        bound = {}
        for listener, sock in zip(self.config.listeners, socks, strict=True):
            name = sock.getsockname()
            self.listen_addresses[listener.name] = (name[0], name[1])
            if listener.port == 0:
                bound[listener.name] = name[1]
        self.listen_address = self.listen_addresses[self.config.listeners[0].name]
        if bound:
            self.config = self.config.with_bound_ports(bound)
        if self.cluster is not None:
            await self._start_cluster(security)
        self._spawn(self._housekeeping())
        self.ready = True

    def _load_authorizer(self) -> None:
        if self.config.get("authorizer.class.name"):
            from kbroker.acl.authorizer import authorizer_from_config
            from kbroker.acl.store import AclStoreError

            try:
                self.authorizer = authorizer_from_config(self.config)
            except AclStoreError as exc:
                raise StartupError(str(exc)) from None

    async def _start_cluster(self, security: dict[str, ListenerSecurity | None]) -> None:
        """Serve nodes 2..N of the virtual cluster (node 1 is the listeners just bound)."""
        assert self.cluster is not None
        self.cluster.adopt_node_one(self._servers, list(self.config.listeners))
        try:
            await self.cluster.start(security)
        except BaseException:
            self.cluster.close_servers()
            self._undo_start([], logs_open=True)
            if self.http is not None:
                await self.http.stop()
            raise

    def connection_factory(self, security: ListenerSecurity | None, node_id: int | None = None) -> Callable[[], KafkaConnection]:
        if node_id is None:  # the broker's own listeners: node.id, or a virtual cluster's node 1
            node_id = 1 if self.cluster is not None else self.config.node_id
        node = node_id
        return lambda: KafkaConnection(self, security, node)

    def drop_connections(self, node_id: int) -> None:
        """Close every connection a node's listeners accepted (a virtual node stops)."""
        for conn in list(self._connections):
            if conn.node_id == node_id:
                conn.abort()

    def _load_quotas(self) -> None:
        from kbroker.quotas.manager import ClientQuotas
        from kbroker.quotas.store import QuotaStoreError

        try:
            self.quotas = ClientQuotas(
                self.config.data_dir, self.config.get_int("quota.window.num"), self.config.get_int("quota.window.size.seconds")
            )
        except QuotaStoreError as exc:
            raise StartupError(str(exc)) from None

    def _listener_security(self) -> dict[str, ListenerSecurity | None]:
        """Each listener's security (for a PLAINTEXT listener only its name, which the
        sessions carry); a property that is not usable is a StartupError."""
        from kbroker.security.listener import build_listener_security

        out: dict[str, ListenerSecurity | None] = {}
        for listener in self.config.listeners:
            try:
                out[listener.name] = build_listener_security(self.config, listener, self)
            except ConfigError as exc:
                raise StartupError(str(exc)) from None
        return out

    def _undo_start(self, socks: list[socket.socket], logs_open: bool) -> None:
        self.closing = True
        for server in self._servers:
            server.close()
        for sock in socks[len(self._servers) :]:
            sock.close()
        # logs fully loaded: closing them cleanly is true (and saves a rescan)
        self._close_state(logs_open=logs_open)

    def _close_state(self, *, logs_open: bool) -> None:
        """Close the coordinators, the logs (when they were opened) and unlock the data dir:
        the end of both a shutdown and an undone start."""
        if self._transactions is not None:
            self._transactions.close()
        if self._groups is not None:
            self._groups.close()
        try:
            if logs_open:
                self.topics.close()
        except LogStorageError as exc:  # e.g. a full disk: no clean-shutdown marker then
            logger.error("the logs did not close cleanly (the next start recovers them): %s", exc)
        finally:
            self._release_locks()

    def _release_locks(self) -> None:
        for lock in self._log_dir_locks:
            lock.release()
        self._lock.release()

    def _log_recovery(self) -> None:
        logs = self.topics.logs
        if logs is None or logs.had_clean_shutdown:
            return
        logger.info(
            "unclean stop: %d partitions are recovered on first use or in the background",
            logs.unloaded_partitions,
        )

    @property
    def client_metrics(self) -> ClientMetricsStore:
        """The CLIENT_METRICS subscriptions (``kbroker.client_metrics``); the first use reads
        them from the data dir."""
        if self._client_metrics is None:
            from kbroker.client_metrics import ClientMetricsStore

            self._client_metrics = ClientMetricsStore(self.config.data_dir)
        return self._client_metrics

    @property
    def telemetry(self) -> TelemetryManager:
        """Client telemetry (``kbroker.telemetry``, KIP-714); made on first use."""
        if self._telemetry is None:
            from kbroker.telemetry import TelemetryManager

            self._telemetry = TelemetryManager(self.client_metrics, self.config.get_int("telemetry.max.bytes"))
        return self._telemetry

    @property
    def telemetry_if_started(self) -> TelemetryManager | None:
        return self._telemetry

    @property
    def scram_credentials(self) -> ScramStore:
        """The SCRAM credentials (``kbroker.security.scram``); the first use reads them
        from the data dir."""
        if self._scram is None:
            from kbroker.security.scram import ScramStore

            store = ScramStore(self.config.data_dir)
            store.load()
            self._scram = store
        return self._scram

    @property
    def delegation_tokens(self) -> Any:
        """The delegation tokens (``kbroker.security.delegation``); the first use reads them
        from the data dir."""
        if self._delegation_tokens is None:
            from kbroker.security.delegation import DelegationTokenStore

            store = DelegationTokenStore(self.config.data_dir, self.config)
            store.load()
            self._delegation_tokens = store
        return self._delegation_tokens

    @property
    def groups(self) -> GroupRuntime:
        """The group coordinator's runtime; the first use imports it and replays
        ``__consumer_offsets``, so no group request is served before the replay."""
        if self._groups is None:
            from kbroker.groups import GroupRuntime

            runtime = GroupRuntime(self)
            runtime.start()
            self._groups = runtime
        return self._groups

    @property
    def transactions(self) -> TransactionRuntime:
        """The transaction coordinator's runtime; the first use imports it and replays
        ``__transaction_state``."""
        if self._transactions is None:
            from kbroker.transactions import TransactionRuntime

            runtime = TransactionRuntime(self)
            runtime.start()
            self._transactions = runtime
        return self._transactions

    def accept_connection(self, conn: KafkaConnection) -> bool:
        """Register a new connection; False (the caller closes it) past ``max.connections``
        or its address's ``max.connections.per.ip`` quota."""
        if self.closing:
            return False
        if self.cluster is not None and not self.cluster.nodes[conn.node_id].up:
            return False  # accepted just before its node stopped
        if not self.limits.add(conn.session.client_host):
            return False
        self._connections.add(conn)
        self.stats.connections_accepted += 1
        return True

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def group_runtime_if_started(self) -> GroupRuntime | None:
        return self._groups

    def forget_connection(self, conn: KafkaConnection) -> None:
        if conn in self._connections:
            self._connections.remove(conn)
            self.limits.remove(conn.session.client_host)
            if self.cluster is None:
                for acceptor in self._servers:
                    acceptor.room_freed()
            else:  # node 1's acceptors are self._servers
                for node in self.cluster.nodes.values():
                    for acceptor in node.servers:
                        acceptor.room_freed()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _housekeeping(self) -> None:
        while not self.closing:
            await asyncio.sleep(HOUSEKEEPING_TICK_S)
            try:
                self.topics.run_periodic(now_ms())
            except LogStorageError as exc:  # e.g. a full disk: retried at the next tick
                logger.warning("log housekeeping: %s", exc)
            except Exception:
                logger.exception("log housekeeping failed")

    async def shutdown(self) -> None:
        self.closing = True
        self.ready = False
        if self.http is not None:
            await self.http.stop()
        for server in self._servers:
            server.close()
        if self.cluster is not None:
            self.cluster.close_servers()
        self.waiters.notify_all()  # parked fetches answer now
        for conn in list(self._connections):
            conn.shutdown()  # idle ones close now, busy ones after writing their answer
        deadline = time.monotonic() + GRACEFUL_SHUTDOWN_S
        while (self.in_flight or self._connections) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        cancelled = [task for conn in list(self._connections) if (task := conn.abort()) is not None]
        for task in list(self._background):
            task.cancel()
        for task in cancelled + list(self._background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._close_state(logs_open=True)
        logger.info("stopped: logs flushed, clean-shutdown marker written, data dir %s unlocked", self.config.data_dir)

    # -- dispatch --------------------------------------------------------------------------


    def _cluster_routed(self, handler: Handler) -> Handler:
        """``handler`` with the virtual cluster's routing in front (NOT_LEADER_OR_FOLLOWER,
        NOT_COORDINATOR, ...), for the fault engine, which calls ``handler.fn`` itself."""
        cluster = self.cluster
        assert cluster is not None
        inner = handler.fn

        async def routed(ctx: RequestContext, request: Any) -> Any:
            early = cluster.route(ctx, request)
            return early if early is not None else await inner(ctx, request)

        return dataclasses.replace(handler, fn=routed)

    async def dispatch(self, frame: bytes | bytearray, peer: str, session: Session | None = None) -> bytes | bytearray | None:
        """Answer one request frame; None for no answer (Produce acks=0)."""
        try:
            api_key, api_version, correlation_id = peek_request_header(frame)
        except DecodeError as exc:
            raise CloseConnection(f"undecodable request header: {exc}") from None
        served = self.emulation.api_ranges.get(api_key)
        handler = None if served is None else load_handler(api_key)
        if handler is None or served is None:
            # Kafka closes the connection on an API key it does not know.
            raise CloseConnection(f"unknown API key {api_key}")
        if not served[0] <= api_version <= served[1]:
            if api_key == 18:  # ApiVersions: answer v0 with the error and our ranges (KIP-511)
                from kbroker.handlers.api_versions import unsupported_version_response

                return encode_response(correlation_id, api_key, 0, unsupported_version_response(self.emulation))
            raise CloseConnection(f"API key {api_key} version {api_version} not supported")
        try:
            header, body_offset = decode_request_header(frame)
            # Trailing bytes after the body are ignored, as Kafka's parser does (librdkafka
            # 2.16 sends three extra bytes after its Metadata v13 body).
            request: Any
            request, _end = decode_from(handler.request_cls, api_version, memoryview(frame), body_offset)
        except DecodeError as exc:
            logger.debug("undecodable frame from %s: %s", peer, bytes(frame[:256]).hex())
            raise CloseConnection(f"undecodable {handler.request_cls.__name__} v{api_version}: {exc}") from None
        session = session or Session(node_id=self._node_id)
        ctx = RequestContext(self, api_key, api_version, correlation_id, header.client_id, peer, now_ms(), session, session.node_id)
        started = time.perf_counter()
        try:
            if self.faults_active:  # a fault rule can fire (kbroker.control.faults)
                if self.cluster is not None:
                    handler = self._cluster_routed(handler)
                response = await self.fault_engine.handle(handler, ctx, request)
            elif self.cluster is not None:
                early = self.cluster.route(ctx, request)
                response = early if early is not None else await handler.fn(ctx, request)
            else:
                response = await handler.fn(ctx, request)
        except KafkaError as exc:
            response = handler.response_cls()
            if not fill_error(response, exc.code, exc.message):
                raise CloseConnection(f"{exc.code.name} with no error field to carry it") from None
        except (CloseConnection, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("handler for API key %d v%d failed", api_key, api_version)
            response = handler.response_cls()
            if not fill_error(response, ErrorCode.UNKNOWN_SERVER_ERROR):
                raise CloseConnection("internal error") from None
        elapsed_s = time.perf_counter() - started
        self.stats.request(api_key, getattr(response, "error_code", 0), elapsed_s)
        quotas = self.quotas
        if quotas is not None and quotas.active:
            throttle_ms = quotas.throttle_request(
                api_key, request, response, ctx.session.principal, ctx.client_id, len(frame), max(elapsed_s - ctx.parked_s, 0.0), now_ms()
            )
            if throttle_ms > 0:
                # KIP-219: answered at once with the throttle time; the connection then reads
                # nothing from this client for that long (kbroker.connection).
                ctx.session.throttle_ms = throttle_ms
                if response is not None and hasattr(response, "throttle_time_ms"):
                    response.throttle_time_ms = max(response.throttle_time_ms, throttle_ms)
        if response is None:
            return None
        try:
            return encode_response(correlation_id, api_key, api_version, response)
        except WireError:
            logger.exception("could not encode the answer to API key %d v%d", api_key, api_version)
            raise CloseConnection("internal error encoding the response") from None
