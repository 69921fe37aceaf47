"""``KBrokerContainer``: kbroker in a container for tests, in the manner of testcontainers'
``KafkaContainer`` (needs the optional extra: ``pip install 'kbroker[testcontainers]'``).

Usage::

    from kbroker.testcontainers import KBrokerContainer

    with KBrokerContainer("kbroker:latest", config={"num.partitions": "3"}) as broker:
        producer = Producer({"bootstrap.servers": broker.get_bootstrap_server()})

The image is the one ``docker/Dockerfile`` builds (``docker build -f docker/Dockerfile -t
kbroker .``).  How the advertised address reaches the broker: the host port of the Kafka
listener is known only once the engine has started the container, so the container's command
is ``python -m kbroker.container_start FILE ...``, which waits for ``FILE``; :meth:`start`
starts the container, reads the mapped port, copies ``HOST:PORT`` into ``FILE`` (the broker
then starts advertising exactly what the host's clients use), and waits until ``/readyz`` on
the HTTP listener answers 200 (logs recovered, Kafka listener accepting).

Ports are published on ``bind_host`` (loopback by default, so a test broker is not reachable
from other machines; ``None`` publishes on every interface as testcontainers does by default).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy

DEFAULT_IMAGE = "kbroker:latest"
KAFKA_PORT = 9092
HTTP_PORT = 9644
# Where the container's launcher waits for the advertised address (kbroker.container_start).
ADVERTISED_ADDRESS_FILE = "/tmp/kbroker-advertised"
# How long start() waits for /readyz after the address is handed over.
STARTUP_TIMEOUT_S = 60
READY_POLL_S = 0.2
# Between checks that the container is still running while waiting for /readyz.
READY_ROUND_S = 2
LOOPBACK = "127.0.0.1"


def container_command(config: Mapping[str, str], *, dev: bool) -> list[str]:
    """The container's command line: the launcher, then kbroker's own arguments (listeners
    on every interface inside the container, the HTTP listener on :data:`HTTP_PORT`)."""
    command = [
        "python", "-m", "kbroker.container_start", ADVERTISED_ADDRESS_FILE,
        "--listen", f"0.0.0.0:{KAFKA_PORT}",
        "--set", f"kbroker.http.listen=0.0.0.0:{HTTP_PORT}",
    ]  # fmt: skip
    if dev:
        command.append("--dev")
    for key, value in config.items():
        command += ["--set", f"{key}={value}"]
    return command


def advertised_host(container_host: str, bind_host: str | None) -> str:
    """The host clients are told: the engine's host address, except that ``localhost`` is
    pinned to the loopback address the ports are published on (``localhost`` may resolve
    to ``::1`` first, where nothing listens)."""
    if container_host == "localhost" and bind_host == LOOPBACK:
        return LOOPBACK
    return container_host


class KBrokerContainer(DockerContainer):
    """kbroker in a container; see the module docstring."""

    def __init__(
        self,
        image: str = DEFAULT_IMAGE,
        *,
        config: Mapping[str, str] | None = None,
        dev: bool = True,
        bind_host: str | None = LOOPBACK,
        startup_timeout_s: int = STARTUP_TIMEOUT_S,
        **kwargs: Any,
    ) -> None:
        super().__init__(image, **kwargs)
        self.config = dict(config or {})
        self.dev = dev
        self.bind_host = bind_host
        self.startup_timeout_s = startup_timeout_s
        for port in (KAFKA_PORT, HTTP_PORT):
            # docker-py takes (host ip, None) for "a free port on that address"
            self.ports[f"{port}/tcp"] = (bind_host, None) if bind_host else None  # type: ignore[assignment]

    def with_config(self, key: str, value: str) -> KBrokerContainer:
        self.config[key] = value
        return self

    def start(self) -> KBrokerContainer:
        self.with_command(container_command(self.config, dev=self.dev))
        super().start()
        address = self.get_bootstrap_server().encode()
        self.copy_into_container(address, ADVERTISED_ADDRESS_FILE)
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        """``/readyz`` answers 200, or the container has exited (fail at once), or the
        startup timeout passes."""
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            round_s = max(1, min(READY_ROUND_S, int(deadline - time.monotonic())))
            ready = HttpWaitStrategy(HTTP_PORT, "/readyz").for_status_code(200).with_poll_interval(READY_POLL_S)
            try:
                ready.with_startup_timeout(round_s).wait_until_ready(self)
                return
            except TimeoutError:
                pass
            wrapped = self.get_wrapped_container()
            wrapped.reload()
            if wrapped.status not in ("created", "running"):
                raise RuntimeError(f"the kbroker container is {wrapped.status}:\n{self._output()}")
            if time.monotonic() >= deadline:
                raise TimeoutError(f"/readyz did not answer 200 within {self.startup_timeout_s} s:\n{self._output()}")

    def _output(self) -> str:
        stdout, stderr = self.get_logs()
        return (stdout + stderr).decode(errors="replace")[-4000:]

    def get_bootstrap_server(self) -> str:
        """``HOST:PORT`` of the Kafka listener as seen from the host (also what it advertises)."""
        host = advertised_host(self.get_container_host_ip(), self.bind_host)
        return f"{host}:{self.get_exposed_port(KAFKA_PORT)}"

    def get_http_url(self) -> str:
        """Base URL of the HTTP listener (/readyz, /metrics, the web console)."""
        host = advertised_host(self.get_container_host_ip(), self.bind_host)
        return f"http://{host}:{self.get_exposed_port(HTTP_PORT)}"
