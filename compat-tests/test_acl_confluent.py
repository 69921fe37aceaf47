"""ACLs with confluent-kafka 2.16.1 (librdkafka 2.16.0): its AdminClient manages the ACLs
(CreateAcls/DescribeAcls/DeleteAcls), its producer and consumer meet them with librdkafka's
own errors.  The broker runs Kafka's StandardAuthorizer; see acl_helpers.py for the setup.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from acl_helpers import PRINCIPAL, secured_broker
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

T = 10.0
LOG = logging.getLogger("librdkafka")
# How many produce attempts a test makes while waiting for a new ACL to be seen (each is
# bounded by message.timeout.ms); librdkafka refreshes metadata on its own schedule.
ATTEMPTS = 10
RETRY_PAUSE_S = 0.5


def common(bootstrap: str) -> dict[str, object]:
    return {"bootstrap.servers": bootstrap, "socket.timeout.ms": 10_000, "broker.address.family": "v4", "logger": LOG}


def binding(rtype: ResourceType, name: str, op: AclOperation, pattern=ResourcePatternType.LITERAL, perm=AclPermissionType.ALLOW) -> AclBinding:  # type: ignore[no-untyped-def]
    return AclBinding(rtype, name, pattern, PRINCIPAL, "*", op, perm)


def create(admin: AdminClient, *bindings: AclBinding) -> None:
    for f in admin.create_acls(list(bindings), request_timeout=T).values():
        assert f.result(T) is None


def delete(admin: AdminClient, rtype: ResourceType, name: str, op: AclOperation) -> list[AclBinding]:
    flt = AclBindingFilter(rtype, name, ResourcePatternType.ANY, PRINCIPAL, None, op, AclPermissionType.ANY)
    [f] = admin.delete_acls([flt], request_timeout=T).values()
    return list(f.result(T))


def seed(bootstrap: str) -> None:
    create(AdminClient(common(bootstrap)), binding(ResourceType.BROKER, "kafka-cluster", AclOperation.ALTER))


@pytest.fixture
def secured(broker_factory):  # type: ignore[no-untyped-def]
    return secured_broker(broker_factory, seed)


def deliver(producer: Producer, topic: str) -> KafkaError | None:
    """Produce one message and wait for its delivery report; its error (None = stored)."""
    out: list[KafkaError | None] = []
    try:
        producer.produce(topic, value=b"v", on_delivery=lambda err, msg: out.append(err))
    except KafkaException as exc:  # librdkafka refuses at once a topic it knows is denied
        return exc.args[0]  # type: ignore[no-any-return]
    producer.flush(T)
    assert out, "no delivery report"
    return out[0]


def test_admin_acl_round_trip_and_filters(secured) -> None:  # type: ignore[no-untyped-def]
    admin = AdminClient(common(secured.bootstrap))
    create(
        admin,
        binding(ResourceType.TOPIC, "orders", AclOperation.READ),
        binding(ResourceType.TOPIC, "pay-", AclOperation.WRITE, ResourcePatternType.PREFIXED),
        binding(ResourceType.GROUP, "app-", AclOperation.READ, ResourcePatternType.PREFIXED, AclPermissionType.DENY),
    )
    match = AclBindingFilter(ResourceType.TOPIC, "pay-eu", ResourcePatternType.MATCH, None, None, AclOperation.ANY, AclPermissionType.ANY)
    found = admin.describe_acls(match, request_timeout=T).result(T)
    assert [(b.name, b.resource_pattern_type, b.operation) for b in found] == [("pay-", ResourcePatternType.PREFIXED, AclOperation.WRITE)]
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert len(admin.describe_acls(everything, request_timeout=T).result(T)) == 4  # with the seed
    assert [b.name for b in delete(admin, ResourceType.GROUP, "app-", AclOperation.ANY)] == ["app-"]
    assert len(admin.describe_acls(everything, request_timeout=T).result(T)) == 3


def test_producer_denied_then_allowed_then_denied_again(secured) -> None:  # type: ignore[no-untyped-def]
    admin = AdminClient(common(secured.bootstrap))
    topic = unique_topic("acl")
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    with pytest.raises(KafkaException) as info:
        f.result(T)
    assert info.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create(admin, binding(ResourceType.TOPIC, topic, AclOperation.CREATE))
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    assert f.result(T) is None

    producer = Producer({**common(secured.bootstrap), "linger.ms": 0, "message.timeout.ms": 3000, "topic.metadata.refresh.interval.ms": 500})
    err = deliver(producer, topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    create(admin, binding(ResourceType.TOPIC, topic, AclOperation.WRITE))
    results = []
    for _ in range(ATTEMPTS):  # the same producer, once its metadata shows the topic again
        results.append(deliver(producer, topic))
        if results[-1] is None:
            break
        time.sleep(RETRY_PAUSE_S)
    assert results[-1] is None, results
    assert delete(admin, ResourceType.TOPIC, topic, AclOperation.WRITE)
    results = []
    for _ in range(ATTEMPTS):
        results.append(deliver(producer, topic))
        if results[-1] is not None:
            break
        time.sleep(RETRY_PAUSE_S)
    assert results[-1] is not None and results[-1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results


def test_deny_beats_allow_for_a_consumer(secured) -> None:  # type: ignore[no-untyped-def]
    admin = AdminClient(common(secured.bootstrap))
    topic = unique_topic("secret")
    group = f"g-{uuid.uuid4().hex[:8]}"
    create(
        admin,
        binding(ResourceType.TOPIC, "*", AclOperation.ALL),
        binding(ResourceType.GROUP, group, AclOperation.READ),
        binding(ResourceType.TOPIC, "secret-", AclOperation.READ, ResourcePatternType.PREFIXED, AclPermissionType.DENY),
    )
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    assert f.result(T) is None
    producer = Producer({**common(secured.bootstrap), "linger.ms": 0, "message.timeout.ms": 5000})
    assert deliver(producer, topic) is None  # WRITE is allowed: the DENY is for READ
    consumer = Consumer({**common(secured.bootstrap), "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    errors: list[int] = []
    deadline = time.monotonic() + 20
    try:
        while not errors and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None:
                assert msg.error() is not None, "a record was read despite the DENY"
                errors.append(msg.error().code())
    finally:
        consumer.close()
    assert errors == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_transactional_id_acls(secured) -> None:  # type: ignore[no-untyped-def]
    admin = AdminClient(common(secured.bootstrap))
    topic = unique_topic("txn")
    create(admin, binding(ResourceType.TOPIC, topic, AclOperation.ALL))
    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    assert f.result(T) is None
    config = {**common(secured.bootstrap), "transactional.id": f"tx-{uuid.uuid4().hex[:8]}", "transaction.timeout.ms": 10000}
    denied = Producer(config)
    with pytest.raises(KafkaException) as info:
        denied.init_transactions(T)
    assert info.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    create(admin, binding(ResourceType.TRANSACTIONAL_ID, "tx-", AclOperation.WRITE, ResourcePatternType.PREFIXED))
    producer = Producer(config)  # librdkafka makes an authorization failure fatal for its producer
    producer.init_transactions(T)
    producer.begin_transaction()
    producer.produce(topic, value=b"in-txn")
    producer.commit_transaction(T)
