"""The admin CLI over secured listeners of a live kbroker: SASL_SSL with SCRAM-SHA-256 and
-512, SASL_PLAINTEXT with PLAIN from a ``--command-config`` file in Kafka's client-properties
form (``sasl.jaas.config``), SSL with a client certificate; what the CLI produced there
confluent-kafka reads back over SASL_SSL; a wrong password or an untrusted broker is one
error line."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import admin_cli as cli
import pytest
from broker_process import TARGET
from confluent_kafka import Consumer
from helpers import unique_topic
from security_broker import SecureBroker

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(180),
    pytest.mark.skipif(TARGET != "kbroker", reason="needs kbroker's SASL and TLS listener settings"),
]


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


def _scram_args(broker: SecureBroker, mechanism: str, password: str = "alice-secret") -> list[str]:
    return [
        "--security-protocol", "SASL_SSL", "--sasl-mechanism", mechanism, "--sasl-username", "alice",
        "--sasl-password", password, "--ssl-cafile", str(broker.pki.ca_cert),
    ]


@pytest.mark.feature("security", client="kbroker-cli")
def test_cli_over_sasl_ssl_scram_plain_and_mtls(secure_broker: SecureBroker, tmp_path: Path) -> None:
    topic = unique_topic("cli-sec")
    sasl_ssl = secure_broker.address("SASL_SSL")
    created = cli.as_json(sasl_ssl, "topic", "create", topic, "-p", "1", *_scram_args(secure_broker, "SCRAM-SHA-256"))
    assert [(c["name"], c["error"]) for c in created] == [(topic, None)]
    sent = cli.as_json(sasl_ssl, "produce", topic, *_scram_args(secure_broker, "SCRAM-SHA-512"), stdin=b"one\ntwo\n")
    assert sent["records"] == 2

    # PLAIN over SASL_PLAINTEXT, settings from a Kafka client-properties file
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret";\n'
    )
    sasl_plain = secure_broker.address("SASL_PLAINTEXT")
    assert cli.text(sasl_plain, "consume", topic, "-b", "-e", "--command-config", str(props)).splitlines() == ["one", "two"]

    # SSL with a client certificate (the listener requires one)
    cert, key = secure_broker.pki.clients["alice"]
    ssl_args = ["--security-protocol", "SSL", "--ssl-cafile", str(secure_broker.pki.ca_cert),
                "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    listed = {t["name"] for t in cli.as_json(secure_broker.address("SSL"), "topic", "list", *ssl_args)}
    assert topic in listed

    # what the CLI produced, confluent-kafka reads over SASL_SSL
    consumer = Consumer({
        "bootstrap.servers": sasl_ssl, "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice", "sasl.password": "alice-secret", "ssl.ca.location": str(secure_broker.pki.ca_cert),
        "group.id": f"cli-sec-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    try:
        consumer.subscribe([topic])
        values = []
        for _ in range(60):
            m = consumer.poll(0.5)
            if m is not None and m.error() is None:
                values.append(m.value())
            if len(values) == 2:
                break
    finally:
        consumer.close()
    assert values == [b"one", b"two"]


@pytest.mark.feature("security", client="kbroker-cli")
def test_cli_security_errors_are_one_line(secure_broker: SecureBroker) -> None:
    sasl_ssl = secure_broker.address("SASL_SSL")
    wrong = cli.run(sasl_ssl, "topic", "list", *_scram_args(secure_broker, "SCRAM-SHA-256", "wrong"), check=False)
    assert "SASL_AUTHENTICATION_FAILED" in cli.one_line_error(wrong)
    untrusted = cli.run(sasl_ssl, "topic", "list", "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-256",
                        "--sasl-username", "alice", "--sasl-password", "alice-secret", check=False)
    assert "TLS handshake" in cli.one_line_error(untrusted)
    plain_offered = cli.run(secure_broker.address("SASL_PLAINTEXT"), "topic", "list", "--security-protocol", "SASL_PLAINTEXT",
                            "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "alice", "--sasl-password", "x", check=False)
    assert "does not offer SASL SCRAM-SHA-512 (it offers PLAIN)" in cli.one_line_error(plain_offered)
    no_password = cli.run(sasl_ssl, "topic", "list", "--security-protocol", "SASL_SSL", check=False)
    assert "needs a user name and password" in cli.one_line_error(no_password)
