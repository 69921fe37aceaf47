"""``kbroker.testcontainers.KBrokerContainer`` end to end: a real container engine (podman
with runc, serving the Docker API; see container_engine.py), kbroker's image built from
docker/Dockerfile on a locally made base, and a real client (confluent-kafka) on the host
using ``get_bootstrap_server()``.

Locally a missing podman/runc/slirp4netns skips; with CI=true it fails (clients.py), and
.ci/run installs them.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from container_engine import Engine, podman_engine, tools
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(900)]

CLIENT_TIMEOUT_S = 15.0
RECORDS = 5


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    tools()  # skip (or fail in CI) before any work when the engine is not there
    with podman_engine(tmp_path_factory.mktemp("engine")) as eng:
        yield eng, eng.build_image()


@pytest.fixture
def testcontainers_env(engine: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """Point testcontainers at our engine: its socket; no Ryuk reaper (its image would have
    to be pulled; the container is removed by the ``with`` block); and the engine's host is
    this machine (testcontainers guesses "inside a container" from /.dockerenv, which this
    sandbox has although the engine is local)."""
    from testcontainers.core.config import ConnectionMode, testcontainers_config

    eng, image = engine
    monkeypatch.setenv("DOCKER_HOST", eng.docker_host)
    monkeypatch.setattr(testcontainers_config, "ryuk_disabled", True)
    monkeypatch.setattr(testcontainers_config, "connection_mode_override", ConnectionMode.docker_host)
    return image


def test_a_host_client_produces_and_consumes_through_the_container(testcontainers_env: str, tmp_path: Path) -> None:
    from kbroker.testcontainers import HTTP_PORT, KAFKA_PORT, KBrokerContainer

    topic = unique_topic("tc")
    with KBrokerContainer(testcontainers_env, config={"num.partitions": "2"}) as kb:
        bootstrap = kb.get_bootstrap_server()
        host, port = bootstrap.rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        # published on loopback only, at the port the engine chose
        bindings = kb.get_wrapped_container().attrs["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for k in (f"{KAFKA_PORT}/tcp", f"{HTTP_PORT}/tcp") for b in bindings[k]} == {"127.0.0.1"}

        # the broker advertises exactly the address the host uses
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=CLIENT_TIMEOUT_S)
        assert [f"{b.host}:{b.port}" for b in metadata.brokers.values()] == [bootstrap]

        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(RECORDS):
            producer.produce(topic, key=b"k", value=f"from-the-host-{i}".encode())
        assert producer.flush(CLIENT_TIMEOUT_S) == 0

        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "tc-check", "enable.auto.commit": False})
        try:
            partition = next(p for p in range(2) if consumer.get_watermark_offsets(TopicPartition(topic, p), CLIENT_TIMEOUT_S)[1] > 0)
            consumer.assign([TopicPartition(topic, partition, 0)])
            got = [m.value() for m in consumer.consume(RECORDS, CLIENT_TIMEOUT_S) if m.error() is None]
        finally:
            consumer.close()
        assert got == [f"from-the-host-{i}".encode() for i in range(RECORDS)]

        # the HTTP listener: ready, metrics counting what was sent, the console listing the topic
        base = kb.get_http_url()
        with urllib.request.urlopen(base + "/readyz", timeout=CLIENT_TIMEOUT_S) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(base + "/metrics", timeout=CLIENT_TIMEOUT_S) as resp:
            metrics = resp.read().decode()
        assert f'kafka_server_brokertopicmetrics_messagesin_total{{topic="{topic}"}} {RECORDS}.0' in metrics
        with urllib.request.urlopen(base + "/topics", timeout=CLIENT_TIMEOUT_S) as resp:
            assert f">{topic}</a>" in resp.read().decode()
        (tmp_path / "container.log").write_bytes(b"".join(kb.get_logs()))
