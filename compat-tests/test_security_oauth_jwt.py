"""OAUTHBEARER with signed JWTs (sasl.oauthbearer.jwks.endpoint.url, a file: JWKS) over
SASL_PLAINTEXT and SASL_SSL: each client presents a token through its own token hook
(confluent-kafka's oauth_cb, kafka-python's and aiokafka's sasl_oauth_token_provider,
kafkajs's oauthBearerProvider), produces, consumes in a group, and meets its own error
for an expired token."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from security_broker import JwtBroker
from test_security_clients import CLIENT_TIMEOUT_S, run_kafkajs

pytestmark = pytest.mark.compat

LISTENERS = ("SASL_PLAINTEXT", "SASL_SSL")
EXPIRED_S = -600  # ten minutes past its exp: beyond the default 30 s of clock skew


@pytest.fixture(scope="module")
def jwt_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JwtBroker]:
    broker = JwtBroker(tmp_path_factory.mktemp("jwt"))
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


def confluent_conf(broker: JwtBroker, listener: str, lifetime_s: int, subject: str = "alice") -> dict[str, Any]:
    def oauth_cb(_config: str) -> tuple[str, float, str]:
        token, _expires = broker.token(subject, lifetime_s)
        # The lifetime librdkafka is told is only when to refresh (it refuses one in the
        # past before sending anything): the broker judges the token's own exp claim.
        return token, time.time() + 3600, subject

    conf: dict[str, Any] = {
        "bootstrap.servers": broker.address(listener),
        "security.protocol": listener,
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": oauth_cb,
    }
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = str(broker.pki.ca_cert)
    return conf


@pytest.mark.parametrize("listener", LISTENERS)
def test_confluent_oauth_cb(jwt_broker: JwtBroker, listener: str) -> None:
    from confluent_kafka import Consumer, Producer

    conf = confluent_conf(jwt_broker, listener, 3600)
    topic, value = f"jwt-{uuid.uuid4().hex[:8]}", f"hello {listener}".encode()
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


@pytest.mark.parametrize("listener", LISTENERS)
def test_confluent_expired_token(jwt_broker: JwtBroker, listener: str) -> None:
    from confluent_kafka import KafkaError, Producer

    errors: list[Any] = []
    producer = Producer({**confluent_conf(jwt_broker, listener, EXPIRED_S), "error_cb": errors.append})
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.2)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, errors
    assert "the token has expired" in auth[0].str()


def _kafka_python_provider(broker: JwtBroker, lifetime_s: int) -> Any:
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        def token(self) -> str:
            return broker.token("alice", lifetime_s)[0]

    return Provider()


def kafka_python_conf(broker: JwtBroker, listener: str, lifetime_s: int) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap_servers": broker.address(listener),
        "security_protocol": listener,
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": _kafka_python_provider(broker, lifetime_s),
    }
    if listener == "SASL_SSL":
        conf["ssl_cafile"] = str(broker.pki.ca_cert)
    return conf


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafka_python_token_provider(jwt_broker: JwtBroker, listener: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    conf = kafka_python_conf(jwt_broker, listener, 3600)
    topic, value = f"jwt-{uuid.uuid4().hex[:8]}", f"hello {listener}".encode()
    producer = KafkaProducer(**conf)
    producer.send(topic, value).get(CLIENT_TIMEOUT_S)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", consumer_timeout_ms=int(CLIENT_TIMEOUT_S * 1000), **conf)
    got = next(iter(consumer)).value
    consumer.close()
    assert got == value


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafka_python_expired_token(jwt_broker: JwtBroker, listener: str, caplog: pytest.LogCaptureFixture) -> None:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    conf = kafka_python_conf(jwt_broker, listener, EXPIRED_S)
    with caplog.at_level(logging.WARNING, logger="kafka"), pytest.raises(KafkaTimeoutError):
        # (kafka-python retries the bootstrap for bootstrap_timeout_ms, 30 s by default)
        producer = KafkaProducer(**conf, max_block_ms=5000, bootstrap_timeout_ms=5000)
        try:
            producer.send("never", b"x").get(5)
        finally:
            producer.close(0)
    messages = [record.getMessage() for record in caplog.records]
    assert any("SaslAuthenticationFailedError" in m and "the token has expired" in m for m in messages), messages


def aiokafka_conf(broker: JwtBroker, listener: str, lifetime_s: int) -> dict[str, Any]:
    import ssl

    from aiokafka.abc import AbstractTokenProvider

    class Provider(AbstractTokenProvider):
        async def token(self) -> str:
            return broker.token("alice", lifetime_s)[0]

    conf: dict[str, Any] = {
        "bootstrap_servers": broker.address(listener),
        "security_protocol": listener,
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_provider": Provider(),
    }
    if listener == "SASL_SSL":
        conf["ssl_context"] = ssl.create_default_context(cafile=str(broker.pki.ca_cert))
    return conf


@pytest.mark.parametrize("listener", LISTENERS)
def test_aiokafka_token_provider(jwt_broker: JwtBroker, listener: str) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic, value = f"jwt-{uuid.uuid4().hex[:8]}", f"hello {listener}".encode()

    async def go() -> bytes:
        producer = AIOKafkaProducer(**aiokafka_conf(jwt_broker, listener, 3600))
        await producer.start()
        try:
            await producer.send_and_wait(topic, value)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", **aiokafka_conf(jwt_broker, listener, 3600))
        await consumer.start()
        try:
            msg = await asyncio.wait_for(consumer.getone(), CLIENT_TIMEOUT_S)
        finally:
            await consumer.stop()
        return bytes(msg.value or b"")

    assert asyncio.run(go()) == value


@pytest.mark.parametrize("listener", LISTENERS)
def test_aiokafka_expired_token(jwt_broker: JwtBroker, listener: str) -> None:
    """aiokafka takes the broker's error challenge for success (it never sends the %x01
    that would bring SASL_AUTHENTICATION_FAILED), so its own error is the failed bootstrap
    once the broker closes the connection; the reason is in the broker's log."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaConnectionError

    async def go() -> None:
        producer = AIOKafkaProducer(**aiokafka_conf(jwt_broker, listener, EXPIRED_S))
        try:
            await asyncio.wait_for(producer.start(), CLIENT_TIMEOUT_S)
        finally:
            await producer.stop()

    refused_before = broker_log_refusals(jwt_broker)
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        asyncio.run(go())
    assert logged_refusal_after(jwt_broker, refused_before)


def broker_log_refusals(broker: JwtBroker) -> int:
    return broker.log_path.read_text(errors="replace").count("OAUTHBEARER token refused (error challenge sent): the token has expired")


def logged_refusal_after(broker: JwtBroker, count: int) -> bool:
    """Whether the broker's log (copied by a thread) gains a refusal, waited for boundedly."""
    deadline = time.monotonic() + 10
    while broker_log_refusals(broker) <= count and time.monotonic() < deadline:
        time.sleep(0.1)
    return broker_log_refusals(broker) > count


def kafkajs_request(broker: JwtBroker, listener: str, lifetime_s: int) -> dict[str, Any]:
    req: dict[str, Any] = {"bootstrap": broker.address(listener), "sasl": {"mechanism": "oauthbearer", "token": broker.token("alice", lifetime_s)[0]}}
    if listener == "SASL_SSL":
        req["ssl"] = {"ca": str(broker.pki.ca_cert)}
    return req


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafkajs_oauth_bearer_provider(jwt_broker: JwtBroker, listener: str) -> None:
    req = kafkajs_request(jwt_broker, listener, 3600)
    topic, value = f"jwt-{uuid.uuid4().hex[:8]}", f"hello {listener}".encode()
    code, result, err = run_kafkajs("create", {**req, "topic": topic, "partitions": 1})
    assert code == 0 and "error" not in result, err[-2000:]
    message = {"key": None, "value": base64.b64encode(value).decode(), "headers": [], "timestamp": None}
    code, result, err = run_kafkajs("produce", {**req, "topic": topic, "messages": [message]})
    assert code == 0 and "error" not in result, err[-2000:]
    code, result, err = run_kafkajs("consume", {**req, "topic": topic, "group": f"g-{topic}", "want": 1, "timeoutMs": 20000})
    assert code == 0 and "error" not in result, err[-2000:]
    assert [base64.b64decode(r["value"]) for r in result["records"]] == [value]


@pytest.mark.parametrize("listener", LISTENERS)
def test_kafkajs_expired_token(jwt_broker: JwtBroker, listener: str) -> None:
    """kafkajs, like aiokafka, ignores the error challenge: its own error is the closed
    connection of its next request; the reason is in the broker's log."""
    refused_before = broker_log_refusals(jwt_broker)
    code, result, _err = run_kafkajs("list", kafkajs_request(jwt_broker, listener, EXPIRED_S))
    assert code != 0 or "error" in result
    assert result.get("type") == "KafkaJSConnectionClosedError", result
    assert logged_refusal_after(jwt_broker, refused_before)
