"""ACLs with kafka-python 3.0.12 (its admin client manages them; its consumer meets PREFIXED
group ACLs) and aiokafka 0.14.0 (no ACL admin API: its producer and admin meet the ACLs
kafka-python creates).  The broker runs Kafka's StandardAuthorizer; see acl_helpers.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from acl_helpers import PRINCIPAL, secured_broker
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError as AioTopicAuthorizationFailed
from helpers import unique_topic
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    NewTopic,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

T = 10.0
# Bounds of the waits for a consumer to get its records / its error.
CONSUME_TIMEOUT_S = 20.0
ATTEMPTS = 10
RETRY_PAUSE_S = 0.5


def acl(rtype: ResourceType, name: str, op: ACLOperation, pattern=ACLResourcePatternType.LITERAL, perm=ACLPermissionType.ALLOW) -> ACL:  # type: ignore[no-untyped-def]
    return ACL(principal=PRINCIPAL, host="*", operation=op, permission_type=perm, resource_pattern=ResourcePattern(rtype, name, pattern))


def admin_for(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)


def create(admin: KafkaAdminClient, *acls: ACL) -> None:
    result = admin.create_acls(list(acls))
    assert not result["failed"], result
    assert len(result["succeeded"]) == len(acls)


def seed(bootstrap: str) -> None:
    admin = admin_for(bootstrap)
    try:
        create(admin, acl(ResourceType.CLUSTER, "kafka-cluster", ACLOperation.ALTER))
    finally:
        admin.close()


@pytest.fixture
def secured(broker_factory):  # type: ignore[no-untyped-def]
    return secured_broker(broker_factory, seed)


def everything() -> ACLFilter:
    return ACLFilter(
        principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
    )


def test_admin_acl_round_trip(secured) -> None:  # type: ignore[no-untyped-def]
    admin = admin_for(secured.bootstrap)
    try:
        create(admin, acl(ResourceType.TOPIC, "t-", ACLOperation.WRITE, ACLResourcePatternType.PREFIXED),
               acl(ResourceType.TRANSACTIONAL_ID, "tx", ACLOperation.WRITE, perm=ACLPermissionType.DENY))
        acls, error = admin.describe_acls(everything())
        assert error.errno == 0
        assert {(a.resource_pattern.resource_type, a.resource_pattern.resource_name) for a in acls} == {
            (ResourceType.CLUSTER, "kafka-cluster"), (ResourceType.TOPIC, "t-"), (ResourceType.TRANSACTIONAL_ID, "tx"),
        }
        flt = ACLFilter(
            principal=PRINCIPAL, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(ResourceType.TOPIC, "t-abc", ACLResourcePatternType.MATCH),
        )
        [(_, removed, error)] = admin.delete_acls([flt])
        assert error.errno == 0
        assert [a.resource_pattern.resource_name for a in removed] == ["t-"]
        acls, _ = admin.describe_acls(everything())
        assert len(acls) == 2
    finally:
        admin.close()


def _consume_or_error(bootstrap: str, topic: str, group: str) -> str:
    """'records' once the group consumer gets the record, else the error class's name."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=1000)
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


def test_prefixed_group_acl(secured) -> None:  # type: ignore[no-untyped-def]
    admin = admin_for(secured.bootstrap)
    topic = unique_topic("grp")
    suffix = uuid.uuid4().hex[:8]
    try:
        create(admin, acl(ResourceType.TOPIC, topic, ACLOperation.ALL), acl(ResourceType.GROUP, "app-", ACLOperation.READ, ACLResourcePatternType.PREFIXED))
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=secured.bootstrap)
    producer.send(topic, b"v").get(T)
    producer.close()
    assert _consume_or_error(secured.bootstrap, topic, f"app-{suffix}") == "records"
    assert _consume_or_error(secured.bootstrap, topic, f"web-{suffix}") == "GroupAuthorizationFailedError"


def test_aiokafka_producer_denied_then_allowed(secured) -> None:  # type: ignore[no-untyped-def]
    admin = admin_for(secured.bootstrap)
    topic = unique_topic("aio")
    try:
        create(admin, acl(ResourceType.TOPIC, topic, ACLOperation.CREATE), acl(ResourceType.TOPIC, topic, ACLOperation.DESCRIBE))
        admin.create_topics([NewTopic(topic, 1, 1)])

        async def scenario() -> list[str]:
            producer = AIOKafkaProducer(bootstrap_servers=secured.bootstrap, request_timeout_ms=5000)
            await producer.start()
            outcomes: list[str] = []
            try:
                try:
                    await producer.send_and_wait(topic, b"denied")
                    outcomes.append("stored")
                except AioTopicAuthorizationFailed:
                    outcomes.append("denied")
                create(admin, acl(ResourceType.TOPIC, topic, ACLOperation.WRITE))
                for _ in range(ATTEMPTS):  # the same producer and connection
                    try:
                        await producer.send_and_wait(topic, b"allowed")
                        outcomes.append("stored")
                        break
                    except AioTopicAuthorizationFailed:
                        await asyncio.sleep(RETRY_PAUSE_S)
            finally:
                await producer.stop()
            return outcomes

        assert asyncio.run(asyncio.wait_for(scenario(), 60)) == ["denied", "stored"]
    finally:
        admin.close()
