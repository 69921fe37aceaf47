"""KIP-848 consumer groups (``group.protocol=consumer``) with confluent-kafka 2.16.

Three member processes over six partitions: joins, a clean leave, a SIGKILLed member
(its partitions move after the broker's ``group.consumer.session.timeout.ms``), commits
with member epochs, and a broker restart that keeps the group's offsets.  A second test
runs a consumer-protocol group next to kafka-python and aiokafka classic groups on the
same broker and checks that ListGroups tells their types apart.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import ConsumerGroupType
from confluent_kafka.admin import AdminClient
from group_helpers import (
    CONSUMER_SESSION_MS,
    KIP848,
    KIP848_BROKER_SETTINGS,
    TOPIC_PARTITIONS,
    check_no_gaps,
    committed,
    consumed,
    ends_of,
    produce_even,
    topic_with_records,
    wait_assignment,
    wait_committed,
    wait_consumed,
    wait_consumed_and_committed,
)
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]


def test_consumer_protocol_join_leave_kill_commit_restart(broker_factory, members) -> None:
    broker = broker_factory(KIP848_BROKER_SETTINGS)
    if not broker.persistent:
        pytest.skip("needs a broker that keeps __consumer_offsets across restarts")
    boot = broker.bootstrap
    topic = topic_with_records(boot, "kip848", 5, "round1")
    group = unique_topic("g848")
    a = members.start("confluent", "a", boot, topic, group, **KIP848)
    owners = wait_assignment(members, [a], what="by the first member")
    b = members.start("confluent", "b", boot, topic, group, **KIP848)
    c = members.start("confluent", "c", boot, topic, group, remote_assignor="uniform", **KIP848)
    owners = wait_assignment(members, [a, b, c], what="by three consumer-protocol members", balanced=True)
    assert sorted(len(o) for o in owners.values()) == [2, 2, 2], owners
    # the members really speak KIP-848: the broker holds a "consumer" group of three
    admin = AdminClient({"bootstrap.servers": boot})
    described = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    assert described.type == ConsumerGroupType.CONSUMER
    assert sorted(m.client_id for m in described.members) == ["a", "b", "c"]
    wait_consumed_and_committed(members, [a, b, c], boot, group, topic, ends_of(5))

    killed_at = time.monotonic()
    b.kill()
    assert a.leave() == 0, members.diagnostics()
    produce_even(boot, topic, 5, "round2")
    wait_assignment(members, [c], what="by the last member")
    moved_after = time.monotonic() - killed_at
    assert moved_after < CONSUMER_SESSION_MS / 1000 + 20, f"took {moved_after:.1f} s"
    wait_consumed_and_committed(members, [a, b, c], boot, group, topic, ends_of(10))
    assert c.leave() == 0, members.diagnostics()

    broker.restart()
    assert committed(boot, group, topic) == ends_of(10)
    produce_even(boot, topic, 3, "round3")
    d = members.start("confluent", "d", boot, topic, group, **KIP848)
    wait_assignment(members, [d], what="by the member after the restart")
    wait_consumed(members, [a, b, c, d], ends_of(13))
    got = consumed([d])
    for p in range(TOPIC_PARTITIONS):
        assert sorted(set(got.get(p, []))) == [10, 11, 12], (
            f"partition {p}: after the restart the new member read {sorted(got.get(p, []))}"
        )
    wait_committed(boot, group, topic, ends_of(13))
    assert d.leave() == 0, members.diagnostics()


def test_classic_groups_beside_a_consumer_group_on_one_broker(broker_factory, members) -> None:
    broker = broker_factory(KIP848_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic = topic_with_records(boot, "mixed", 4, "mixed")
    new_group, kp_group, aio_group = (unique_topic(p) for p in ("g848", "gkp", "gaio"))
    x = members.start("confluent", "x", boot, topic, new_group, **KIP848)
    y = members.start("confluent", "y", boot, topic, new_group, **KIP848)
    kp = members.start("kafka-python", "kp", boot, topic, kp_group)
    aio = members.start("aiokafka", "aio", boot, topic, aio_group)
    wait_assignment(members, [x, y], what="by the consumer-protocol group")
    wait_assignment(members, [kp], what="by the kafka-python classic group")
    wait_assignment(members, [aio], what="by the aiokafka classic group")
    for group_members in ([x, y], [kp], [aio]):
        wait_consumed(members, group_members, ends_of(4))
        check_no_gaps(consumed(group_members), ends_of(4))
    for group in (new_group, kp_group, aio_group):
        wait_committed(boot, group, topic, ends_of(4))

    admin = AdminClient({"bootstrap.servers": boot})
    listed = admin.list_consumer_groups(request_timeout=10).result()
    types = {g.group_id: g.type for g in listed.valid}
    assert types[new_group] == ConsumerGroupType.CONSUMER, types
    assert types[kp_group] == ConsumerGroupType.CLASSIC, types
    assert types[aio_group] == ConsumerGroupType.CLASSIC, types
    described = admin.describe_consumer_groups([new_group], request_timeout=10)[new_group].result()
    assert described.type == ConsumerGroupType.CONSUMER
    assert len(described.members) == 2
    for m in (x, y, kp, aio):
        assert m.leave() == 0, members.diagnostics()
