"""Run kbroker inside a test process: a real broker on a loopback port, in a background thread.

    from kbroker.testing import running_broker

    def test_my_app(tmp_path):
        with running_broker(tmp_path / "kafka") as broker:
            app = MyApp(bootstrap_servers=broker.bootstrap)
            ...

The broker has its own event loop in a daemon thread, so synchronous clients
(kafka-python, confluent-kafka) and asyncio clients on the test's own loop (aiokafka) can
both talk to it.  ``settings`` are broker properties, as ``--set`` takes them.  Like the
command, the broker locks its data directory (``.lock``) from start to stop, so two brokers
never share one; ``restart()`` releases and takes the lock again.  The pytest
fixture ``kbroker`` (registered through the ``pytest11`` entry point) does the same with
a temporary data directory.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kbroker.config import build_config
from kbroker.server import Broker

# How long start/stop may take before the caller is told something is wrong.
CALL_TIMEOUT_S = 30.0
# Test-friendly defaults: groups form at once (also kbroker's default now; kept explicit so a
# change of the broker default cannot slow every test down).
TEST_DEFAULTS = {"group.initial.rebalance.delay.ms": "0"}


class BrokerThread:
    """A :class:`Broker` serving from its own event loop in a daemon thread."""

    def __init__(self, data_dir: Path, settings: Mapping[str, str] | None = None, listen: str = "127.0.0.1:0") -> None:
        self.data_dir = Path(data_dir)
        self.settings = {**TEST_DEFAULTS, **(settings or {})}
        self.listen = listen
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="kbroker", daemon=True)
        self._thread.start()
        self.broker: Broker | None = None

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = CALL_TIMEOUT_S) -> Any:
        """Run ``coro`` on the broker's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        overrides = [f"{k}={v}" for k, v in self.settings.items()]
        config = build_config(listen=self.listen, data_dir=str(self.data_dir), overrides=overrides, environ={})
        if self.broker is not None:  # a restart keeps the port clients know
            config = config.with_listen_port(self.broker.listen_address[1])
        broker = Broker(config)
        if self.broker is not None and self.broker.cluster is not None and broker.cluster is not None:
            for node_id, node in self.broker.cluster.nodes.items():  # ... and so do the other nodes
                if node_id > 1 and node_id in broker.cluster.nodes:
                    broker.cluster.nodes[node_id].bound = list(node.bound)
        self.call(broker.start())
        self.broker = broker

    def stop(self) -> None:
        """Shut the broker down cleanly (it can be started again on the same port)."""
        if self.broker is not None and not self.broker.closing:
            self.call(self.broker.shutdown())

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(CALL_TIMEOUT_S)
        self.loop.close()

    # -- virtual cluster (kbroker.nodes > 1): the control API's operations ------------------

    def _cluster(self) -> Any:
        assert self.broker is not None, "broker not started"
        if self.broker.cluster is None:
            raise RuntimeError("not a virtual cluster: start with settings {'kbroker.nodes': 'N'}")
        return self.broker.cluster

    def stop_node(self, node_id: int) -> None:
        """Stop node ``node_id``: its listeners close, its partitions and coordinators move."""
        self.call(self._cluster().stop_node(node_id))

    def start_node(self, node_id: int) -> None:
        """Start node ``node_id`` again on its port; it rejoins the ISR."""
        self.call(self._cluster().start_node(node_id))

    def move_leader(self, topic: str, partition: int, node_id: int) -> None:
        """Make ``node_id`` (an ISR member) the partition's leader, bumping its leader epoch."""
        cluster = self._cluster()

        async def move() -> None:
            cluster.move_leader(topic, partition, node_id)

        self.call(move())

    def cluster_state(self) -> dict[str, Any]:
        """The cluster as GET /v1/state answers it: nodes, topics' partitions, groups."""
        cluster = self._cluster()

        async def state() -> dict[str, Any]:
            result: dict[str, Any] = cluster.state()
            return result

        result: dict[str, Any] = self.call(state())
        return result

    # -- fault rules (kbroker.control.faults): the control API's /v1/faults, in-process --

    def add_fault(self, rule: dict[str, Any]) -> int:
        """Add a fault rule (the fields of ``POST /v1/faults``); returns its id.  A rule
        that does not validate raises ``kbroker.control.faults.FaultRuleError``."""
        assert self.broker is not None, "broker not started"
        engine = self.broker.fault_engine

        async def add() -> int:
            return engine.add(rule).id

        result: int = self.call(add())
        return result

    def faults(self) -> list[dict[str, Any]]:
        """The rules with their counters: ``[{"id", "rule", "hits", "remaining"}]``, as GET."""
        assert self.broker is not None, "broker not started"
        engine = self.broker.fault_engine

        async def describe() -> list[dict[str, Any]]:
            return engine.describe()

        result: list[dict[str, Any]] = self.call(describe())
        return result

    def clear_faults(self, fault_id: int | None = None) -> None:
        """Delete one rule (KeyError for an unknown id) or, with None, all of them."""
        assert self.broker is not None, "broker not started"
        engine = self.broker.fault_engine

        async def clear() -> bool:
            return engine.clear(fault_id)

        if not self.call(clear()):
            raise KeyError(fault_id)

    @property
    def address(self) -> tuple[str, int]:
        assert self.broker is not None, "broker not started"
        return self.broker.listen_address

    @property
    def bootstrap(self) -> str:
        host, port = self.address
        return f"{host}:{port}"

    @property
    def cluster_bootstrap(self) -> str:
        """Every node's address, comma-separated (a virtual cluster); else :attr:`bootstrap`."""
        if self.broker is None or self.broker.cluster is None:
            return self.bootstrap
        return ",".join(f"{n['host']}:{n['port']}" for n in self.cluster_state()["nodes"])


@contextmanager
def running_broker(data_dir: Path, settings: Mapping[str, str] | None = None) -> Iterator[BrokerThread]:
    """A started broker for the duration of the ``with`` block."""
    bt = BrokerThread(data_dir, settings)
    try:
        bt.start()
        yield bt
    finally:
        bt.close()


class BrokerFactory:
    """Starts any number of brokers, each with its own data directory under ``base_dir``
    (``broker-1``, ``broker-2``, ...); :meth:`close` stops them all.

        with BrokerFactory(tmp_path) as make:
            a, b = make(), make({"num.partitions": "3"})
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.brokers: list[BrokerThread] = []

    def __call__(self, settings: Mapping[str, str] | None = None) -> BrokerThread:
        bt = BrokerThread(self.base_dir / f"broker-{len(self.brokers) + 1}", settings)
        self.brokers.append(bt)  # listed before start, so close() also ends its loop thread
        bt.start()
        return bt

    def close(self) -> None:
        """Stop every broker made; the first failure is raised once all were tried."""
        errors: list[BaseException] = []
        for bt in self.brokers:
            try:
                bt.close()
            except BaseException as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> BrokerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
