"""Real clients over SASL_PLAINTEXT PLAIN, SASL_SSL SCRAM-SHA-256/512 and SSL with a client
certificate: produce, consume in a group; wrong password, unknown user and an unsupported
mechanism give each client's own authentication error."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from security_broker import SecureBroker

pytestmark = pytest.mark.compat

# How long one client may take to produce and consume a record (bounded loops).
CLIENT_TIMEOUT_S = 30.0

SCENARIOS = {
    "sasl_plain": ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
    "scram_sha256": ("SASL_SSL", "SCRAM-SHA-256", "alice", "alice-secret"),
    "scram_sha512": ("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret"),
    "ssl_client_cert": ("SSL", None, None, None),
}
FAILURES = {
    "wrong_password": ("SASL_SSL", "SCRAM-SHA-256", "alice", "not-it"),
    "unknown_user": ("SASL_PLAINTEXT", "PLAIN", "mallory", "x"),
    "unsupported_mechanism": ("SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "alice-secret"),
}


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    broker = SecureBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


def confluent_conf(broker: SecureBroker, listener: str, mechanism: str | None, user: str | None, password: str | None) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": broker.address(listener), "security.protocol": listener}
    if mechanism:
        conf.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    if listener in ("SSL", "SASL_SSL"):
        conf["ssl.ca.location"] = str(broker.pki.ca_cert)
    if listener == "SSL":
        cert, key = broker.pki.clients["alice"]
        conf.update({"ssl.certificate.location": str(cert), "ssl.key.location": str(key)})
    return conf


def kafka_python_conf(broker: SecureBroker, listener: str, mechanism: str | None, user: str | None, password: str | None) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap_servers": broker.address(listener), "security_protocol": listener}
    if mechanism:
        conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password})
    if listener in ("SSL", "SASL_SSL"):
        conf["ssl_cafile"] = str(broker.pki.ca_cert)
    if listener == "SSL":
        cert, key = broker.pki.clients["alice"]
        conf.update({"ssl_certfile": str(cert), "ssl_keyfile": str(key)})
    return conf


@pytest.mark.feature("security", client="confluent-kafka")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_confluent_produces_and_consumes(secure_broker: SecureBroker, scenario: str) -> None:
    from confluent_kafka import Consumer, Producer

    conf = confluent_conf(secure_broker, *SCENARIOS[scenario])
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", f"hello {scenario}".encode()
    producer = Producer(conf)
    producer.produce(topic, value)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = None
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while got is None and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            got = msg.value()
    consumer.close()
    assert got == value


@pytest.mark.feature("security", client="confluent-kafka")
@pytest.mark.parametrize("failure", list(FAILURES))
def test_confluent_authentication_errors(secure_broker: SecureBroker, failure: str) -> None:
    from confluent_kafka import KafkaError, Producer

    errors: list[Any] = []
    conf = {**confluent_conf(secure_broker, *FAILURES[failure]), "error_cb": errors.append}
    producer = Producer(conf)
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.2)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    expected = {
        "wrong_password": "Invalid user credentials",
        "unknown_user": "Invalid username or password",
        "unsupported_mechanism": "SCRAM-SHA-512",
    }[failure]
    assert expected in auth[0].str()


@pytest.mark.feature("security", client="kafka-python")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kafka_python_produces_and_consumes(secure_broker: SecureBroker, scenario: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    conf = kafka_python_conf(secure_broker, *SCENARIOS[scenario])
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", f"hello {scenario}".encode()
    producer = KafkaProducer(**conf)
    producer.send(topic, value).get(CLIENT_TIMEOUT_S)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000), **conf)
    got = next(iter(consumer)).value
    consumer.close()
    assert got == value


@pytest.mark.feature("security", client="kafka-python")
@pytest.mark.parametrize("failure", list(FAILURES))
def test_kafka_python_authentication_errors(secure_broker: SecureBroker, failure: str, caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python retries the bootstrap until its own timeout; the error it logs for each
    attempt is its own class for the broker's error code."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    conf = kafka_python_conf(secure_broker, *FAILURES[failure])
    expected = "UnsupportedSaslMechanismError" if failure == "unsupported_mechanism" else "SaslAuthenticationFailedError"
    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
        # (kafka-python retries the bootstrap for bootstrap_timeout_ms, 30 s by default)
        producer = KafkaProducer(**conf, max_block_ms=5000, bootstrap_timeout_ms=5000)
        try:
            producer.send("never", b"x").get(5)
        finally:
            producer.close(0)
    assert any(expected in record.getMessage() for record in caplog.records)


def aiokafka_conf(broker: SecureBroker, listener: str, mechanism: str | None, user: str | None, password: str | None) -> dict[str, Any]:
    import ssl

    conf: dict[str, Any] = {"bootstrap_servers": broker.address(listener), "security_protocol": listener}
    if mechanism:
        conf.update({"sasl_mechanism": mechanism, "sasl_plain_username": user, "sasl_plain_password": password})
    if listener in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=str(broker.pki.ca_cert))
        if listener == "SSL":
            cert, key = broker.pki.clients["alice"]
            context.load_cert_chain(str(cert), str(key))
        conf["ssl_context"] = context
    return conf


@pytest.mark.feature("security", client="aiokafka")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_aiokafka_produces_and_consumes(secure_broker: SecureBroker, scenario: str) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    conf = aiokafka_conf(secure_broker, *SCENARIOS[scenario])
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", f"hello {scenario}".encode()

    async def go() -> bytes:
        producer = AIOKafkaProducer(**conf)
        await producer.start()
        try:
            await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", **conf)
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), CLIENT_TIMEOUT_S)
        finally:
            await consumer.stop()
        return bytes(msg.value or b"")

    assert asyncio.run(go()) == value


@pytest.mark.feature("security", client="aiokafka")
@pytest.mark.parametrize("failure", list(FAILURES))
def test_aiokafka_authentication_errors(secure_broker: SecureBroker, failure: str, caplog: pytest.LogCaptureFixture) -> None:
    """aiokafka's start() fails with "Unable to bootstrap"; the error it logs is its own
    class for the broker's code, with the broker's message."""
    import asyncio

    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    conf = aiokafka_conf(secure_broker, *FAILURES[failure])
    expected = {
        "wrong_password": "[Error 58] SaslAuthenticationFailed: Authentication failed: Invalid user credentials",
        "unknown_user": "[Error 58] SaslAuthenticationFailed: Authentication failed: Invalid username or password",
        "unsupported_mechanism": "[Error 33] UnsupportedSaslMechanismError",
    }[failure]

    async def go() -> None:
        producer = AIOKafkaProducer(**conf)
        try:
            await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
        finally:
            await producer.stop()

    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        asyncio.run(go())
    assert any(expected in record.getMessage() for record in caplog.records)


def kcat_args(broker: SecureBroker, listener: str, mechanism: str | None, user: str | None, password: str | None) -> list[str]:
    args = ["-b", broker.address(listener), "-X", f"security.protocol={listener}"]
    if mechanism:
        args += ["-X", f"sasl.mechanism={mechanism}", "-X", f"sasl.username={user}", "-X", f"sasl.password={password}"]
    if listener in ("SSL", "SASL_SSL"):
        args += ["-X", f"ssl.ca.location={broker.pki.ca_cert}"]
    if listener == "SSL":
        cert, key = broker.pki.clients["alice"]
        args += ["-X", f"ssl.certificate.location={cert}", "-X", f"ssl.key.location={key}"]
    return args


@pytest.mark.feature("security", client="kcat")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kcat_produces_and_consumes(secure_broker: SecureBroker, scenario: str) -> None:
    """Debian's kcat (an older librdkafka): SCRAM works under the default nonce rule."""
    import subprocess

    from clients import kcat_path

    kcat = kcat_path()
    args = kcat_args(secure_broker, *SCENARIOS[scenario])
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", f"hello {scenario}"
    produced = subprocess.run([kcat, *args, "-P", "-t", topic], input=value + "\n", capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(
        [kcat, *args, "-C", "-t", topic, "-o", "beginning", "-c", "1", "-e", "-q"], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S
    )
    assert consumed.returncode == 0, consumed.stderr
    assert consumed.stdout.strip() == value


@pytest.mark.feature("security", client="kcat")
@pytest.mark.parametrize("failure", list(FAILURES))
def test_kcat_authentication_errors(secure_broker: SecureBroker, failure: str) -> None:
    import subprocess

    from clients import kcat_path

    args = kcat_args(secure_broker, *FAILURES[failure])
    proc = subprocess.run([kcat_path(), *args, "-L", "-m", "5"], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S)
    assert proc.returncode != 0
    expected = {
        "wrong_password": "Invalid user credentials",
        "unknown_user": "Invalid username or password",
        "unsupported_mechanism": "SCRAM-SHA-512",
    }[failure]
    assert expected in proc.stderr, proc.stderr


def kafkajs_request(broker: SecureBroker, listener: str, mechanism: str | None, user: str | None, password: str | None) -> dict[str, Any]:
    req: dict[str, Any] = {"bootstrap": broker.address(listener)}
    if mechanism:
        req["sasl"] = {"mechanism": mechanism.lower(), "username": user, "password": password}
    if listener in ("SSL", "SASL_SSL"):
        req["ssl"] = {"ca": str(broker.pki.ca_cert)}
    if listener == "SSL":
        cert, key = broker.pki.clients["alice"]
        req["ssl"].update({"cert": str(cert), "key": str(key)})
    return req


def run_kafkajs(command: str, request: dict[str, Any]) -> tuple[int, dict[str, Any], str]:
    import json
    import os
    import subprocess

    from clients import JS_DIR, kafkajs_node_modules

    kafkajs_node_modules()
    proc = subprocess.run(
        ["node", str(JS_DIR / "driver.js"), command], input=json.dumps(request), capture_output=True, text=True,
        timeout=CLIENT_TIMEOUT_S * 2, cwd=JS_DIR, env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )
    lines = proc.stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, proc.stderr


@pytest.mark.feature("security", client="kafkajs")
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_kafkajs_produces_and_consumes(secure_broker: SecureBroker, scenario: str) -> None:
    import base64

    req = kafkajs_request(secure_broker, *SCENARIOS[scenario])
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", f"hello {scenario}".encode()
    code, result, err = run_kafkajs("create", {**req, "topic": topic, "partitions": 1})
    assert code == 0 and "error" not in result, err[-2000:]
    message = {"key": None, "value": base64.b64encode(value).decode(), "headers": [], "timestamp": None}
    code, result, err = run_kafkajs("produce", {**req, "topic": topic, "messages": [message]})
    assert code == 0 and "error" not in result, err[-2000:]
    code, result, err = run_kafkajs("consume", {**req, "topic": topic, "group": f"g-{topic}", "want": 1, "timeoutMs": 20000})
    assert code == 0 and "error" not in result, err[-2000:]
    assert [base64.b64decode(r["value"]) for r in result["records"]] == [value]


@pytest.mark.feature("security", client="kafkajs")
@pytest.mark.parametrize("failure", list(FAILURES))
def test_kafkajs_authentication_errors(secure_broker: SecureBroker, failure: str) -> None:
    req = kafkajs_request(secure_broker, *FAILURES[failure])
    code, result, _err = run_kafkajs("list", req)
    expected = {
        "wrong_password": ("KafkaJSSASLAuthenticationError", "Invalid user credentials"),
        "unknown_user": ("KafkaJSSASLAuthenticationError", "Invalid username or password"),
        "unsupported_mechanism": ("KafkaJSProtocolError", "SASL mechanism"),
    }[failure]
    assert code != 0 or "error" in result
    assert result.get("type") == expected[0] and expected[1] in result.get("error", ""), result


def test_confluent_oauthbearer_unsecured_jwt(secure_broker: SecureBroker) -> None:
    """librdkafka's built-in unsecured JWT against Kafka's default (unsecured) validator."""
    from confluent_kafka import Consumer, Producer

    conf = {
        "bootstrap.servers": secure_broker.address("SASL_SSL"),
        "security.protocol": "SASL_SSL",
        "ssl.ca.location": str(secure_broker.pki.ca_cert),
        "sasl.mechanism": "OAUTHBEARER",
        "enable.sasl.oauthbearer.unsecure.jwt": True,
        "sasl.oauthbearer.config": "principal=alice",
    }
    topic, value = f"sec-{uuid.uuid4().hex[:8]}", b"hello oauthbearer"
    producer = Producer(conf)
    producer.produce(topic, value)
    assert producer.flush(CLIENT_TIMEOUT_S) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = None
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while got is None and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and msg.error() is None:
            got = msg.value()
    consumer.close()
    assert got == value
