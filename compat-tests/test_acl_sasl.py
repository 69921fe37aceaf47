"""ACLs for SASL principals: User:alice authenticates with SCRAM-SHA-256 on a SASL_PLAINTEXT
listener and meets Kafka's StandardAuthorizer; User:admin (super.users) manages the ACLs
over the wire with the same client library.  confluent-kafka and kafka-python: denied before
the ACL, allowed after CreateAcls on the same connection, denied again after DeleteAcls;
PREFIXED group ACLs; DENY beating ALLOW; transactional id ACLs.  kcat and kafkajs: denied,
then allowed.  See security_broker.AclSaslBroker."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from helpers import unique_topic
from security_broker import AclSaslBroker
from test_security_clients import run_kafkajs

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

T = 10.0
ALICE = "User:alice"
# How many attempts a test makes while waiting for an ACL change to be seen (each bounded),
# and the pause between them; clients refresh their metadata on their own schedule.
ATTEMPTS = 10
RETRY_PAUSE_S = 0.5
CONSUME_TIMEOUT_S = 20.0
LOG = logging.getLogger("librdkafka")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AclSaslBroker]:
    b = AclSaslBroker(tmp_path_factory.mktemp("acl-sasl"))
    b.start()
    try:
        yield b
    finally:
        b.cleanup()


# -- confluent-kafka --------------------------------------------------------------------------


def ck_conf(broker: AclSaslBroker, user: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.sasl_bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": user,
        "sasl.password": AclSaslBroker.USERS[user],
        "socket.timeout.ms": 10_000,
        "broker.address.family": "v4",
        "logger": LOG,
    }


def ck_binding(rtype: Any, name: str, op: Any, pattern: Any = None, perm: Any = None) -> Any:
    from confluent_kafka.admin import AclBinding, AclPermissionType, ResourcePatternType

    return AclBinding(rtype, name, pattern or ResourcePatternType.LITERAL, ALICE, "*", op, perm or AclPermissionType.ALLOW)


def ck_create(admin: Any, *bindings: Any) -> None:
    for f in admin.create_acls(list(bindings), request_timeout=T).values():
        assert f.result(T) is None


def ck_delete(admin: Any, rtype: Any, name: str, op: Any) -> list[Any]:
    from confluent_kafka.admin import AclBindingFilter, AclPermissionType, ResourcePatternType

    flt = AclBindingFilter(rtype, name, ResourcePatternType.ANY, ALICE, None, op, AclPermissionType.ANY)
    [f] = admin.delete_acls([flt], request_timeout=T).values()
    return list(f.result(T))


def ck_topic(admin: Any, topic: str) -> None:
    from confluent_kafka.admin import NewTopic

    [f] = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=T).values()
    assert f.result(T) is None


def ck_deliver(producer: Any, topic: str) -> Any:
    """Produce one message, wait for its report; its error (None = stored)."""
    from confluent_kafka import KafkaException

    out: list[Any] = []
    try:
        producer.produce(topic, value=b"v", on_delivery=lambda err, msg: out.append(err))
    except KafkaException as exc:  # librdkafka refuses at once a topic it knows is denied
        return exc.args[0]
    producer.flush(T)
    assert out, "no delivery report"
    return out[0]


def ck_until(producer: Any, topic: str, stored: bool) -> list[Any]:
    results: list[Any] = []
    for _ in range(ATTEMPTS):
        results.append(ck_deliver(producer, topic))
        if (results[-1] is None) == stored:
            break
        time.sleep(RETRY_PAUSE_S)
    return results


def test_confluent_alice_denied_allowed_denied_on_one_connection(broker: AclSaslBroker) -> None:
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import AclOperation, AdminClient, ResourceType

    admin = AdminClient(ck_conf(broker, "admin"))
    topic = unique_topic("sasl-acl")
    ck_topic(admin, topic)
    producer = Producer({**ck_conf(broker, "alice"), "linger.ms": 0, "message.timeout.ms": 3000, "topic.metadata.refresh.interval.ms": 500})
    err = ck_deliver(producer, topic)
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    ck_create(admin, ck_binding(ResourceType.TOPIC, topic, AclOperation.WRITE))
    results = ck_until(producer, topic, stored=True)  # the same producer: no new login
    assert results[-1] is None, results
    assert ck_delete(admin, ResourceType.TOPIC, topic, AclOperation.WRITE)
    results = ck_until(producer, topic, stored=False)
    assert results[-1] is not None and results[-1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, results


def ck_consume(broker: AclSaslBroker, topic: str, group: str) -> str:
    """'records', or the name of the first error the group consumer meets."""
    from confluent_kafka import Consumer, KafkaError

    consumer = Consumer({**ck_conf(broker, "alice"), "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is None:
                return "records"
            code = msg.error().code()
            if code in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
                return str(msg.error().name())
        return "nothing"
    finally:
        consumer.close()


def test_confluent_prefixed_group_acl_and_deny_beating_allow(broker: AclSaslBroker) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import (
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient(ck_conf(broker, "admin"))
    tag = uuid.uuid4().hex[:8]
    topic, secret = f"open-{tag}", f"secret-{tag}"
    ck_create(
        admin,
        ck_binding(ResourceType.TOPIC, f"open-{tag}", AclOperation.ALL, ResourcePatternType.PREFIXED),
        ck_binding(ResourceType.TOPIC, f"secret-{tag}", AclOperation.ALL),
        ck_binding(ResourceType.TOPIC, "secret-", AclOperation.READ, ResourcePatternType.PREFIXED, AclPermissionType.DENY),
        ck_binding(ResourceType.GROUP, f"team-{tag}-", AclOperation.READ, ResourcePatternType.PREFIXED),
    )
    for name in (topic, secret):
        ck_topic(admin, name)
    producer = Producer({**ck_conf(broker, "alice"), "linger.ms": 0, "message.timeout.ms": 5000})
    assert ck_deliver(producer, topic) is None
    assert ck_deliver(producer, secret) is None  # WRITE is allowed: the DENY is for READ
    assert ck_consume(broker, topic, f"team-{tag}-a") == "records"
    assert ck_consume(broker, topic, f"other-{tag}") == "GROUP_AUTHORIZATION_FAILED"
    assert ck_consume(broker, secret, f"team-{tag}-b") == "TOPIC_AUTHORIZATION_FAILED"


def test_confluent_transactional_id_acl(broker: AclSaslBroker) -> None:
    from confluent_kafka import KafkaError, KafkaException, Producer
    from confluent_kafka.admin import AclOperation, AdminClient, ResourcePatternType, ResourceType

    admin = AdminClient(ck_conf(broker, "admin"))
    topic = unique_topic("sasl-txn")
    tag = uuid.uuid4().hex[:8]
    ck_create(admin, ck_binding(ResourceType.TOPIC, topic, AclOperation.ALL))
    ck_topic(admin, topic)
    config = {**ck_conf(broker, "alice"), "transactional.id": f"tx-{tag}-1", "transaction.timeout.ms": 10000}
    with pytest.raises(KafkaException) as info:
        Producer(config).init_transactions(T)
    assert info.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    ck_create(admin, ck_binding(ResourceType.TRANSACTIONAL_ID, f"tx-{tag}-", AclOperation.WRITE, ResourcePatternType.PREFIXED))
    producer = Producer(config)  # librdkafka makes an authorization failure fatal for its producer
    producer.init_transactions(T)
    producer.begin_transaction()
    producer.produce(topic, value=b"in-txn")
    producer.commit_transaction(T)


# -- kafka-python -----------------------------------------------------------------------------


def kp_conf(broker: AclSaslBroker, user: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": broker.sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": user,
        "sasl_plain_password": AclSaslBroker.USERS[user],
    }


def kp_acl(rtype: Any, name: str, op: Any, pattern: Any = None, perm: Any = None) -> Any:
    from kafka.admin import ACL, ACLPermissionType, ACLResourcePatternType, ResourcePattern

    return ACL(
        principal=ALICE, host="*", operation=op, permission_type=perm or ACLPermissionType.ALLOW,
        resource_pattern=ResourcePattern(rtype, name, pattern or ACLResourcePatternType.LITERAL),
    )


@pytest.fixture
def kp_admin(broker: AclSaslBroker) -> Iterator[Any]:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(request_timeout_ms=10_000, **kp_conf(broker, "admin"))
    try:
        yield admin
    finally:
        admin.close()


def kp_create(admin: Any, *acls: Any) -> None:
    result = admin.create_acls(list(acls))
    assert not result["failed"], result
    assert len(result["succeeded"]) == len(acls)


def kp_topic(admin: Any, topic: str) -> None:
    from kafka.admin import NewTopic

    admin.create_topics([NewTopic(topic, 1, 1)])


def test_kafka_python_alice_denied_allowed_denied_on_one_connection(broker: AclSaslBroker, kp_admin: Any) -> None:
    from kafka import KafkaProducer
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )
    from kafka.errors import TopicAuthorizationFailedError

    topic = unique_topic("kp-sasl-acl")
    kp_topic(kp_admin, topic)
    producer = KafkaProducer(max_block_ms=5000, request_timeout_ms=5000, retries=0, **kp_conf(broker, "alice"))

    def send() -> str:
        try:
            producer.send(topic, b"v").get(T)
            return "stored"
        except TopicAuthorizationFailedError:
            return "denied"

    def until(wanted: str) -> list[str]:
        outcomes = [send()]
        while outcomes[-1] != wanted and len(outcomes) < ATTEMPTS:
            time.sleep(RETRY_PAUSE_S)
            outcomes.append(send())
        return outcomes

    try:
        assert send() == "denied"
        kp_create(kp_admin, kp_acl(ResourceType.TOPIC, topic, ACLOperation.WRITE))
        assert until("stored")[-1] == "stored"
        flt = ACLFilter(
            principal=ALICE, host="*", operation=ACLOperation.WRITE, permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL),
        )
        [(_, removed, error)] = kp_admin.delete_acls([flt])
        assert error.errno == 0 and len(removed) == 1
        assert until("denied")[-1] == "denied"
    finally:
        producer.close(0)


def kp_consume(broker: AclSaslBroker, topic: str, group: str) -> str:
    from kafka import KafkaConsumer
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    consumer = KafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=1000, **kp_conf(broker, "alice"))
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            try:
                if consumer.poll(timeout_ms=500):
                    return "records"
            except (GroupAuthorizationFailedError, TopicAuthorizationFailedError) as exc:
                return type(exc).__name__
        return "nothing"
    finally:
        consumer.close()


def test_kafka_python_prefixed_group_acl_and_deny_beating_allow(broker: AclSaslBroker, kp_admin: Any) -> None:
    from kafka import KafkaProducer
    from kafka.admin import ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourceType

    tag = uuid.uuid4().hex[:8]
    topic, secret = f"kopen-{tag}", f"ksecret-{tag}"
    kp_create(
        kp_admin,
        kp_acl(ResourceType.TOPIC, topic, ACLOperation.ALL),
        kp_acl(ResourceType.TOPIC, secret, ACLOperation.ALL),
        kp_acl(ResourceType.TOPIC, "ksecret-", ACLOperation.READ, ACLResourcePatternType.PREFIXED, ACLPermissionType.DENY),
        kp_acl(ResourceType.GROUP, f"kteam-{tag}-", ACLOperation.READ, ACLResourcePatternType.PREFIXED),
    )
    for name in (topic, secret):
        kp_topic(kp_admin, name)
    producer = KafkaProducer(**kp_conf(broker, "alice"))
    producer.send(topic, b"v").get(T)
    producer.send(secret, b"v").get(T)  # WRITE is allowed: the DENY is for READ
    producer.close()
    assert kp_consume(broker, topic, f"kteam-{tag}-a") == "records"
    assert kp_consume(broker, topic, f"kother-{tag}") == "GroupAuthorizationFailedError"
    assert kp_consume(broker, secret, f"kteam-{tag}-b") == "TopicAuthorizationFailedError"


def test_kafka_python_transactional_id_acl(broker: AclSaslBroker, kp_admin: Any) -> None:
    from kafka import KafkaProducer
    from kafka.admin import ACLOperation, ACLResourcePatternType, ResourceType
    from kafka.errors import TransactionalIdAuthorizationFailedError

    topic = unique_topic("kp-sasl-txn")
    tag = uuid.uuid4().hex[:8]
    kp_create(kp_admin, kp_acl(ResourceType.TOPIC, topic, ACLOperation.ALL))
    kp_topic(kp_admin, topic)
    config = {**kp_conf(broker, "alice"), "transactional_id": f"ktx-{tag}-1", "max_block_ms": 10_000}
    denied = KafkaProducer(**config)
    try:
        with pytest.raises(TransactionalIdAuthorizationFailedError):
            denied.init_transactions()
    finally:
        denied.close(0)
    kp_create(kp_admin, kp_acl(ResourceType.TRANSACTIONAL_ID, f"ktx-{tag}-", ACLOperation.WRITE, ACLResourcePatternType.PREFIXED))
    producer = KafkaProducer(**config)
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(topic, b"in-txn")
        producer.commit_transaction()
    finally:
        producer.close()


# -- kcat and kafkajs: denied, then allowed ---------------------------------------------------


def test_kcat_denied_then_allowed(broker: AclSaslBroker, kp_admin: Any) -> None:
    from clients import kcat_path
    from kafka.admin import ACLOperation, ResourceType

    topic = unique_topic("kcat-sasl-acl")
    kp_topic(kp_admin, topic)
    args = [
        kcat_path(), "-b", broker.sasl_bootstrap, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanism=SCRAM-SHA-256",
        "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret", "-X", "message.timeout.ms=5000", "-P", "-t", topic,
    ]
    denied = subprocess.run(args, input="v\n", capture_output=True, text=True, timeout=60)
    assert "Topic authorization failed" in denied.stderr, denied.stderr
    kp_create(kp_admin, kp_acl(ResourceType.TOPIC, topic, ACLOperation.WRITE))
    allowed = subprocess.run(args, input="v\n", capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0 and "authorization" not in allowed.stderr.lower(), allowed.stderr


def test_kafkajs_denied_then_allowed(broker: AclSaslBroker, kp_admin: Any) -> None:
    from kafka.admin import ACLOperation, ResourceType

    topic = unique_topic("kjs-sasl-acl")
    kp_topic(kp_admin, topic)
    req = {"bootstrap": broker.sasl_bootstrap, "sasl": {"mechanism": "scram-sha-256", "username": "alice", "password": "alice-secret"}}
    message = {"key": None, "value": base64.b64encode(b"v").decode(), "headers": [], "timestamp": None}
    code, result, err = run_kafkajs("produce", {**req, "topic": topic, "messages": [message]})
    assert "error" in result, (result, err[-2000:])
    assert result == {"error": "Not authorized to access topics: [Topic authorization failed]", "type": "KafkaJSNonRetriableError"}, json.dumps(result)
    kp_create(kp_admin, kp_acl(ResourceType.TOPIC, topic, ACLOperation.WRITE), kp_acl(ResourceType.TOPIC, topic, ACLOperation.DESCRIBE))
    code, result, err = run_kafkajs("produce", {**req, "topic": topic, "messages": [message]})
    assert code == 0 and "error" not in result, (result, err[-2000:])
