"""Fault rules injected through the control API (``POST /v1/faults``) while real clients
run: retriable errors are retried until the record is stored exactly once, fatal errors
surface to the application, delays and dropped connections are ridden out.  Each test
also checks the rule's hit count, so the effect is known to come from the rule."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import uuid

import pytest
from admin_cli import one_line_error
from broker_process import BrokerProcess
from clients import JS_DIR, kafkajs_node_modules
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from control_client import ControlClient, free_port
from helpers import unique_topic
from kafka import KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAuthorizationFailedError
from process_clients import cli, cli_read_all, kcat, kcat_read_all
from test_kafka_python import admin_for, consumer_for

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

# How long a client may take to ride out the faults of one test.
DELIVERY_TIMEOUT_S = 30.0


@pytest.fixture
def controlled(broker_factory):  # type: ignore[no-untyped-def]
    """(broker, control client): a broker with the control API on."""
    control = ControlClient(free_port())
    broker = broker_factory(control.settings())
    if broker.kind != "kbroker":
        pytest.skip("the control API is kbroker's own")
    return broker, control


def _create(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = admin_for(bootstrap)
    try:
        admin.create_topics(
            [NewTopic(topic, num_partitions=partitions, replication_factor=1)], timeout_ms=10_000
        )
    finally:
        admin.close()


def _new_topic(
    controlled: tuple[BrokerProcess, ControlClient], prefix: str
) -> tuple[BrokerProcess, ControlClient, str]:
    """(broker, control client, a new one-partition topic named after ``prefix``)."""
    broker, control = controlled
    topic = unique_topic(prefix)
    _create(broker.bootstrap, topic)
    return broker, control, topic


def _fail_produce(control: ControlClient, topic: str, error: str, count: int | None = None) -> int:
    """A rule answering Produce to ``topic`` with ``error`` (``count`` times, else always)."""
    rule: dict[str, object] = {"api": "Produce", "error": error, "topic": topic}
    if count is not None:
        rule["count"] = count
    return control.add_fault(rule)


def _delay_fetches(control: ControlClient, topic: str) -> int:
    """A rule delaying every Fetch of ``topic`` by 300 ms."""
    return control.add_fault({"api": "Fetch", "delay_ms": 300, "topic": topic})


def _read_values(bootstrap: str, topic: str, want: int) -> list[bytes]:
    consumer = consumer_for(bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got: list[bytes] = []
        for _ in range(50):
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(r.value for r in records)
            if len(got) >= want:
                break
        return got
    finally:
        consumer.close()


def _confluent(bootstrap: str, **config: object) -> dict[str, object]:
    return {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "socket.timeout.ms": 10_000,
        **config,
    }


@pytest.mark.feature("fault injection", client="kafka-python")
def test_kafka_python_retries_not_leader_and_stores_once(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-nl")
    rule = _fail_produce(control, topic, "NOT_LEADER_OR_FOLLOWER", count=3)
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        retry_backoff_ms=50,
        request_timeout_ms=10_000,
    )
    try:
        meta = producer.send(topic, value=b"survivor", partition=0).get(timeout=DELIVERY_TIMEOUT_S)
    finally:
        producer.close()
    assert meta.offset == 0
    assert control.fault(rule)["hits"] == 3
    assert control.fault(rule)["remaining"] == 0
    assert _read_values(broker.bootstrap, topic, 1) == [b"survivor"]


@pytest.mark.feature("fault injection", client="kafka-python")
def test_kafka_python_sees_a_fatal_error(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-auth")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        request_timeout_ms=10_000,
        max_block_ms=10_000,
    )
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, value=b"refused", partition=0).get(timeout=DELIVERY_TIMEOUT_S)
    finally:
        producer.close()
    assert control.fault(rule)["hits"] >= 1
    control.clear_faults()
    assert _read_values(broker.bootstrap, topic, 0) == []


@pytest.mark.feature("fault injection", client="kafka-python")
def test_kafka_python_idempotent_producer_rides_out_closed_connections(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-close")
    rule = control.add_fault({"api": "Produce", "close_connection": True, "count": 2})
    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap,
        acks="all",
        enable_idempotence=True,
        retry_backoff_ms=50,
        request_timeout_ms=10_000,
    )
    try:
        futures = [producer.send(topic, value=b"m%d" % i, partition=0) for i in range(20)]
        offsets = [f.get(timeout=DELIVERY_TIMEOUT_S).offset for f in futures]
    finally:
        producer.close()
    assert control.fault(rule)["hits"] == 2
    values = _read_values(broker.bootstrap, topic, 20)
    assert values == [b"m%d" % i for i in range(20)]  # each once, in order
    assert offsets == list(range(20))


@pytest.mark.feature("fault injection", client="confluent-kafka")
def test_confluent_retries_not_leader_and_stores_once(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-nl-c")
    rule = _fail_produce(control, topic, "NOT_LEADER_OR_FOLLOWER", count=3)
    reports: list[tuple[KafkaError | None, int]] = []
    producer = Producer(
        _confluent(
            broker.bootstrap, **{"enable.idempotence": True, "retry.backoff.ms": 50, "linger.ms": 0}
        )
    )
    producer.produce(
        topic,
        value=b"survivor",
        partition=0,
        on_delivery=lambda err, msg: reports.append((err, msg.offset())),
    )
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0
    assert reports == [(None, 0)]
    assert control.fault(rule)["hits"] == 3
    assert _read_values(broker.bootstrap, topic, 1) == [b"survivor"]


@pytest.mark.feature("fault injection", client="confluent-kafka")
def test_confluent_sees_a_fatal_error(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-auth-c")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    reports: list[KafkaError | None] = []
    producer = Producer(
        _confluent(broker.bootstrap, **{"linger.ms": 0, "message.timeout.ms": 20_000})
    )
    producer.produce(
        topic, value=b"refused", partition=0, on_delivery=lambda err, msg: reports.append(err)
    )
    producer.flush(DELIVERY_TIMEOUT_S)
    assert len(reports) == 1 and reports[0] is not None
    assert reports[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert control.fault(rule)["hits"] >= 1


@pytest.mark.feature("fault injection", client="confluent-kafka")
def test_confluent_consumer_rides_out_delayed_fetches(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-delay")
    producer = Producer(_confluent(broker.bootstrap, **{"linger.ms": 0}))
    for i in range(10):
        producer.produce(topic, value=b"d%d" % i, partition=0)
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0
    rule = _delay_fetches(control, topic)
    consumer = Consumer(
        _confluent(
            broker.bootstrap,
            **{
                "group.id": f"fault-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 100,
            },
        )
    )
    try:
        consumer.assign([CTopicPartition(topic, 0, 0)])
        got: list[bytes] = []
        for _ in range(60):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
            if len(got) == 10:
                break
    finally:
        consumer.close()
    assert got == [b"d%d" % i for i in range(10)]
    assert control.fault(rule)["hits"] >= 1


async def _aiokafka_send(bootstrap: str, topic: str, value: bytes) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", retry_backoff_ms=50, request_timeout_ms=10_000
    )
    await producer.start()
    try:
        meta = await asyncio.wait_for(
            producer.send_and_wait(topic, value=value, partition=0), DELIVERY_TIMEOUT_S
        )
        return int(meta.offset)
    finally:
        await producer.stop()


@pytest.mark.feature("fault injection", client="aiokafka")
def test_aiokafka_retries_not_leader_and_stores_once(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-nl-a")
    rule = _fail_produce(control, topic, "NOT_LEADER_OR_FOLLOWER", count=3)
    assert asyncio.run(_aiokafka_send(broker.bootstrap, topic, b"survivor")) == 0
    assert control.fault(rule)["hits"] == 3
    assert _read_values(broker.bootstrap, topic, 1) == [b"survivor"]


@pytest.mark.feature("fault injection", client="aiokafka")
def test_aiokafka_sees_a_fatal_error(controlled) -> None:  # type: ignore[no-untyped-def]
    from aiokafka.errors import TopicAuthorizationFailedError as AioTopicAuthorizationFailed

    broker, control, topic = _new_topic(controlled, "fault-auth-a")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    with pytest.raises(AioTopicAuthorizationFailed):
        asyncio.run(_aiokafka_send(broker.bootstrap, topic, b"refused"))
    assert control.fault(rule)["hits"] >= 1


def _kafkajs_produce(bootstrap: str, topic: str, value: bytes) -> dict:  # type: ignore[type-arg]
    """One record through kafkajs (js/driver.js produce, retries 3); the driver's JSON
    answer, ``{"error", "type"}`` when the send failed."""
    message = {
        "key": None,
        "value": base64.b64encode(value).decode(),
        "headers": [],
        "timestamp": None,
    }
    proc = subprocess.run(
        ["node", str(JS_DIR / "driver.js"), "produce"],
        input=json.dumps({"bootstrap": bootstrap, "topic": topic, "messages": [message]}),
        capture_output=True, text=True, timeout=DELIVERY_TIMEOUT_S * 2, cwd=JS_DIR,
        env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"},
    )  # fmt: skip
    lines = proc.stdout.strip().splitlines()
    assert lines, f"kafkajs printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    result: dict = json.loads(lines[-1])  # type: ignore[type-arg]
    return result


@pytest.mark.feature("fault injection", client="kafkajs")
def test_kafkajs_retries_not_leader_and_stores_once(controlled) -> None:  # type: ignore[no-untyped-def]
    kafkajs_node_modules()
    broker, control, topic = _new_topic(controlled, "fault-nl-js")
    rule = _fail_produce(control, topic, "NOT_LEADER_OR_FOLLOWER", count=2)
    result = _kafkajs_produce(broker.bootstrap, topic, b"survivor")
    assert "error" not in result, result
    assert [(r["partition"], r["baseOffset"], r["errorCode"]) for r in result["results"]] == [
        (0, 0, 0)
    ]
    assert control.fault(rule)["hits"] == 2
    assert _read_values(broker.bootstrap, topic, 1) == [b"survivor"]


@pytest.mark.feature("fault injection", client="kafkajs")
def test_kafkajs_sees_a_fatal_error(controlled) -> None:  # type: ignore[no-untyped-def]
    kafkajs_node_modules()
    broker, control, topic = _new_topic(controlled, "fault-auth-js")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    result = _kafkajs_produce(broker.bootstrap, topic, b"refused")
    assert "error" in result and "authorized" in result["error"].lower(), result
    assert control.fault(rule)["hits"] >= 1


# -- kcat (librdkafka 2.0.2) and the kbroker CLI ------------------------------------------------


@pytest.mark.feature("fault injection", client="kcat")
def test_kcat_retries_not_leader_and_stores_once(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-nl-kcat")
    rule = _fail_produce(control, topic, "NOT_LEADER_OR_FOLLOWER", count=3)
    kcat(broker.bootstrap, ["-P", "-t", topic, "-p", "0", "-X", "enable.idempotence=true",
                            "-X", "retry.backoff.ms=50"], stdin=b"survivor\n")  # fmt: skip
    assert control.fault(rule)["hits"] == 3
    assert [v for _, _, _, v in kcat_read_all(broker.bootstrap, topic)] == [b"survivor"]


@pytest.mark.feature("fault injection", client="kcat")
def test_kcat_sees_a_fatal_error(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-auth-kcat")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    proc = kcat(broker.bootstrap, ["-P", "-t", topic, "-p", "0", "-X", "message.timeout.ms=20000"],
                stdin=b"refused\n", check=False)  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode != 0 and "Delivery failed" in err and "authorization failed" in err.lower(), err
    assert control.fault(rule)["hits"] >= 1
    control.clear_faults()
    assert kcat_read_all(broker.bootstrap, topic) == []


@pytest.mark.feature("fault injection", client="kcat")
def test_kcat_consumer_rides_out_delayed_fetches(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-delay-kcat")
    kcat(broker.bootstrap, ["-P", "-t", topic, "-p", "0"], stdin=b"".join(b"d%d\n" % i for i in range(10)))
    rule = _delay_fetches(control, topic)
    assert [v for _, _, _, v in kcat_read_all(broker.bootstrap, topic)] == [b"d%d" % i for i in range(10)]
    assert control.fault(rule)["hits"] >= 1


@pytest.mark.feature("fault injection", client="kbroker-cli")
def test_cli_reports_a_fatal_produce_error_in_one_line(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-auth-cli")
    rule = _fail_produce(control, topic, "TOPIC_AUTHORIZATION_FAILED")
    proc = cli(broker.bootstrap, "produce", topic, "--partition", "0", stdin=b"refused\n", check=False)
    line = one_line_error(proc)
    assert "TOPIC_AUTHORIZATION_FAILED" in line or "authoriz" in line.lower(), line
    assert control.fault(rule)["hits"] >= 1
    control.clear_faults()
    assert cli_read_all(broker.bootstrap, topic) == []


@pytest.mark.feature("fault injection", client="kbroker-cli")
def test_cli_consumer_rides_out_delayed_fetches(controlled) -> None:  # type: ignore[no-untyped-def]
    broker, control, topic = _new_topic(controlled, "fault-delay-cli")
    cli(broker.bootstrap, "produce", topic, "--partition", "0", stdin=b"".join(b"d%d\n" % i for i in range(10)))
    rule = _delay_fetches(control, topic)
    assert [v for _, _, _, v in cli_read_all(broker.bootstrap, topic)] == [b"d%d" % i for i in range(10)]
    assert control.fault(rule)["hits"] >= 1
