"""Online migration between a classic group and a KIP-848 consumer group
(``group.consumer.migration.policy``, default bidirectional), with real clients.

confluent-kafka 2.16 classic members consume a 6-partition topic; members with
``group.protocol=consumer`` join (the group is upgraded in place), then the classic
members leave one by one: every record is consumed, commits are kept.  Then classic
members join the consumer group and the consumer-protocol members leave: the group is
downgraded back to a classic group.  A second test upgrades a group whose classic
members are kafka-python, aiokafka and kcat (librdkafka classic): they keep consuming.
A third restarts the broker while the group is mixed (classic + consumer members).
"""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupType
from confluent_kafka.admin import AdminClient
from group_helpers import (
    KIP848,
    KIP848_BROKER_SETTINGS,
    ends_of,
    produce_even,
    topic_with_records,
    wait_assignment,
    wait_committed,
    wait_consumed,
    wait_consumed_and_committed,
)
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]


def group_type(boot: str, group: str) -> ConsumerGroupType:
    admin = AdminClient({"bootstrap.servers": boot})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    return {g.group_id: g.type for g in listed.valid}[group]


@pytest.mark.feature("groups", client="confluent-kafka")
def test_confluent_classic_group_upgraded_then_downgraded(broker_factory, members) -> None:
    broker = broker_factory(KIP848_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic, group = topic_with_records(boot, "mig", 4, "classic"), unique_topic("gmig")
    a = members.start("confluent", "a", boot, topic, group)
    b = members.start("confluent", "b", boot, topic, group)
    wait_assignment(members, [a, b], what="by the classic members")
    wait_consumed(members, [a, b], ends_of(4))
    wait_committed(boot, group, topic, ends_of(4))
    assert group_type(boot, group) == ConsumerGroupType.CLASSIC

    c = members.start("confluent", "c", boot, topic, group, **KIP848)
    d = members.start("confluent", "d", boot, topic, group, **KIP848)
    wait_assignment(members, [a, b, c, d], what="by classic and consumer members together")
    assert group_type(boot, group) == ConsumerGroupType.CONSUMER
    produce_even(boot, topic, 3, "mixed")
    wait_consumed(members, [a, b, c, d], ends_of(7))
    for classic in (a, b):
        assert classic.leave() == 0, members.diagnostics()
        wait_assignment(members, [m for m in (a, b, c, d) if m.alive],
                        what="after a classic member left")
    produce_even(boot, topic, 3, "consumer")
    wait_consumed_and_committed(members, [a, b, c, d], boot, group, topic, ends_of(10))
    assert group_type(boot, group) == ConsumerGroupType.CONSUMER

    # the way back: classic members join, the consumer-protocol members leave
    e = members.start("confluent", "e", boot, topic, group)
    f = members.start("confluent", "f", boot, topic, group)
    wait_assignment(members, [c, d, e, f], what="by consumer and classic members together")
    for new in (c, d):
        assert new.leave() == 0, members.diagnostics()
    wait_assignment(members, [e, f], what="by the classic members after the downgrade")
    assert group_type(boot, group) == ConsumerGroupType.CLASSIC
    produce_even(boot, topic, 3, "downgraded")
    wait_consumed_and_committed(members, [a, b, c, d, e, f], boot, group, topic, ends_of(13))
    for m in (e, f):
        assert m.leave() == 0, members.diagnostics()


@pytest.mark.feature("groups", client="kafka-python")
@pytest.mark.feature("groups", client="aiokafka")
@pytest.mark.feature("groups", client="kcat")
def test_kafka_python_and_aiokafka_members_keep_consuming_after_upgrade(broker_factory, members) -> None:
    broker = broker_factory(KIP848_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic, group = topic_with_records(boot, "migpy", 3, "before"), unique_topic("gmigpy")
    kp = members.start("kafka-python", "kp", boot, topic, group)
    aio = members.start("aiokafka", "aio", boot, topic, group)
    kc = members.start("kcat", "kc", boot, topic, group)
    wait_assignment(members, [kp, aio, kc], what="by the classic members")
    wait_consumed(members, [kp, aio, kc], ends_of(3))
    x = members.start("confluent", "x", boot, topic, group, **KIP848)
    wait_assignment(members, [kp, aio, kc, x], what="after the upgrade")
    assert group_type(boot, group) == ConsumerGroupType.CONSUMER
    produce_even(boot, topic, 3, "after")
    wait_consumed_and_committed(members, [kp, aio, kc, x], boot, group, topic, ends_of(6))
    for m in (x, kp, aio, kc):
        assert m.leave() == 0, members.diagnostics()


@pytest.mark.feature("groups", client="confluent-kafka")
def test_broker_restart_mid_migration_keeps_the_mixed_group(broker_factory, members) -> None:
    broker = broker_factory(KIP848_BROKER_SETTINGS)
    if not broker.persistent:
        pytest.skip("needs a broker that keeps __consumer_offsets across restarts")
    boot = broker.bootstrap
    topic, group = topic_with_records(boot, "migr", 3, "before"), unique_topic("gmigr")
    a = members.start("confluent", "a", boot, topic, group)
    b = members.start("confluent", "b", boot, topic, group)
    wait_assignment(members, [a, b], what="by the classic members")
    c = members.start("confluent", "c", boot, topic, group, **KIP848)
    wait_assignment(members, [a, b, c], what="by the mixed group")
    wait_consumed(members, [a, b, c], ends_of(3))
    wait_committed(boot, group, topic, ends_of(3))

    broker.restart()
    assert group_type(boot, group) == ConsumerGroupType.CONSUMER  # replayed mid-migration
    produce_even(boot, topic, 3, "after")
    wait_consumed_and_committed(members, [a, b, c], boot, group, topic, ends_of(6))
    wait_assignment(members, [a, b, c], what="by the mixed group after the restart")
    for m in (c, a, b):
        assert m.leave() == 0, members.diagnostics()
