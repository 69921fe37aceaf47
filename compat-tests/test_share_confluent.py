"""KIP-932 share groups with confluent-kafka 2.16's ``ShareConsumer`` (librdkafka's share
consumer, "Preview" in 2.16), over real TCP against a kbroker process.

One share group on a one-partition topic:

1. three implicit-acknowledgement consumers share the partition: every record is
   delivered exactly once, to several of them, and the group's start offset
   (DescribeShareGroupOffsets) reaches the end once they have acknowledged;
2. an explicit-acknowledgement consumer RELEASEs records: they come back with delivery
   count 2; it then holds them without acknowledging: when their lock expires another
   consumer gets them (delivery count 3);
3. a consumer ACCEPTs part of a new run, the broker restarts, and a new consumer gets
   exactly the records that were not accepted, each once.

A second group (lock 60 s) checks that records a closing consumer held come back at once.

confluent-kafka's AdminClient has no share-group calls in 2.16, so ListGroups,
ShareGroupDescribe and DescribeShareGroupOffsets go through kbroker's own client (the
wire codec over TCP).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from helpers import unique_topic
from kbroker.wire.messages.describe_share_group_offsets_request import (
    DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsRequestGroup,
)
from kbroker.wire.messages.list_groups_request import ListGroupsRequest
from kbroker.wire.messages.share_group_describe_request import ShareGroupDescribeRequest

from kbroker.client import Client

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

LOCK_MS = 3_000
SHARE_BROKER_SETTINGS = {
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.record.lock.duration.ms": str(LOCK_MS),
    "offsets.topic.num.partitions": "1",
    "share.coordinator.state.topic.num.partitions": "1",
}
PHASE_TIMEOUT_S = 40.0
POLL_S = 0.3


def _consumer(boot: str, group: str, name: str, **extra: Any) -> ShareConsumer:
    config = {
        "bootstrap.servers": boot,
        "group.id": group,
        "client.id": name,
        "max.poll.records": 4,
    }
    config.update({k.replace("_", "."): v for k, v in extra.items()})
    consumer = ShareConsumer(config)
    return consumer


def _produce(boot: str, topic: str, values: Iterable[str]) -> None:
    producer = Producer({"bootstrap.servers": boot})
    for v in values:
        producer.produce(topic, value=v.encode())
    assert producer.flush(10) == 0


def _poll(consumer: ShareConsumer) -> list[Any]:
    return [m for m in consumer.poll(POLL_S) or [] if m.error() is None]


def _start_offset(boot: str, group: str) -> int:
    with Client(boot) as client:
        conn = client.coordinator(group)
        resp = conn.request(
            DescribeShareGroupOffsetsRequest(
                groups=[DescribeShareGroupOffsetsRequestGroup(group_id=group, topics=None)]
            ),
            1,
        )
    g = resp.groups[0]
    assert g.error_code == 0, g
    starts = [p.start_offset for t in g.topics for p in t.partitions]
    assert len(starts) == 1, g
    return int(starts[0])


def _wait_start_offset(boot: str, group: str, expected: int, pump: list[ShareConsumer]) -> None:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while (found := _start_offset(boot, group)) != expected:
        assert time.monotonic() < deadline, f"start offset stuck at {found}, expected {expected}"
        for c in pump:  # implicit mode: a poll sends the previous batch's acknowledgements
            assert not _poll(c), "no record was left to deliver"


@pytest.mark.feature("share-groups", client="confluent")
def test_share_group_of_three_release_lock_expiry_and_restart(broker_factory) -> None:
    broker = broker_factory(SHARE_BROKER_SETTINGS)
    if not broker.persistent:
        pytest.skip("needs a broker that keeps share-group state across restarts")
    boot = broker.bootstrap
    topic, group = unique_topic("share"), unique_topic("sg")
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    # the group reads from the start of the log (Kafka's default is latest)
    resource = ConfigResource(
        ResourceType.GROUP,
        group,
        incremental_configs=[
            ConfigEntry(
                "share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET
            )
        ],
    )
    admin.incremental_alter_configs([resource])[resource].result(10)
    _produce(boot, topic, (f"one-{i}" for i in range(30)))

    # -- 1. three consumers, each record once ------------------------------------------------
    trio = {name: _consumer(boot, group, name) for name in ("a", "b", "c")}
    for c in trio.values():
        c.subscribe([topic])
    seen: dict[int, list[tuple[str, int]]] = {}
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while len(seen) < 30:
        assert time.monotonic() < deadline, f"only {sorted(seen)} delivered"
        for name, c in trio.items():
            for m in _poll(c):
                seen.setdefault(m.offset(), []).append((name, m.delivery_count()))
    assert sorted(seen) == list(range(30))
    assert all(len(v) == 1 and v[0][1] == 1 for v in seen.values()), seen
    assert len({v[0][0] for v in seen.values()}) >= 2, "one consumer got every record"
    with Client(boot) as client:
        listed = client.coordinator(group).request(ListGroupsRequest(types_filter=["share"]), 5)
        assert [(g.group_id, g.group_type) for g in listed.groups if g.group_id == group] == [
            (group, "share")
        ]
        described = client.coordinator(group).request(
            ShareGroupDescribeRequest(group_ids=[group]), 1
        )
        assert sorted(m.client_id for m in described.groups[0].members) == ["a", "b", "c"]
    _wait_start_offset(boot, group, 30, list(trio.values()))
    for c in trio.values():
        c.close()  # a clean leave

    # -- 2. RELEASE comes back at once; an expired lock comes back later ------------------------
    _produce(boot, topic, ("two-0", "two-1", "two-2"))
    d = _consumer(boot, group, "d", share_acknowledgement_mode="explicit")
    d.subscribe([topic])
    first = _wait_records(d, 3)
    assert [(m.offset(), m.delivery_count()) for m in first] == [(30, 1), (31, 1), (32, 1)]
    for m in first:
        d.acknowledge(m, AcknowledgeType.RELEASE)
    d.commit_sync(10)
    again = _wait_records(d, 3)
    assert [(m.offset(), m.delivery_count()) for m in again] == [(30, 2), (31, 2), (32, 2)]
    # d stays in the group (its heartbeats go on) but never acknowledges these
    e = _consumer(boot, group, "e", share_acknowledgement_mode="explicit")
    e.subscribe([topic])
    held_since = time.monotonic()
    third = _wait_records(e, 3)
    assert time.monotonic() - held_since >= LOCK_MS / 1000 / 2, (
        "redelivered long before the lock expired"
    )
    assert [(m.offset(), m.delivery_count()) for m in third] == [(30, 3), (31, 3), (32, 3)]
    for m in third:
        e.acknowledge(m, AcknowledgeType.ACCEPT)
    e.commit_sync(10)
    d.close()
    e.close()
    assert _start_offset(boot, group) == 33

    # -- 3. a broker restart keeps what was accepted ------------------------------------------
    _produce(boot, topic, (f"three-{i}" for i in range(10)))
    f = _consumer(boot, group, "f", share_acknowledgement_mode="explicit")
    f.subscribe([topic])
    got = _wait_records(f, 1)
    accepted = {m.offset() for m in got}
    for m in got:
        f.acknowledge(m, AcknowledgeType.ACCEPT)
    f.commit_sync(10)
    f.close()
    assert accepted and accepted <= set(range(33, 43))
    broker.restart()
    g = _consumer(boot, group, "g")
    g.subscribe([topic])
    after: dict[int, list[int]] = {}
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    remaining = set(range(33, 43)) - accepted
    while set(after) != remaining:
        assert time.monotonic() < deadline, (
            f"after the restart got {sorted(after)}, expected {sorted(remaining)}"
        )
        for m in _poll(g):
            after.setdefault(m.offset(), []).append(m.delivery_count())
            assert m.offset() in remaining, f"offset {m.offset()} came back after it was accepted"
    assert all(len(v) == 1 for v in after.values()), after
    _wait_start_offset(boot, group, 43, [g])
    g.close()


@pytest.mark.feature("share-groups", client="confluent")
def test_records_of_a_consumer_that_closes_come_back_at_once(broker_factory) -> None:
    """The group's lock is 60 s (GROUP config share.record.lock.duration.ms): records that a
    closing consumer held reach the next one well before any lock could expire."""
    broker = broker_factory(SHARE_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic, group = unique_topic("share"), unique_topic("sg")
    admin = AdminClient({"bootstrap.servers": boot})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(10)
    entries = [
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.record.lock.duration.ms", "60000", incremental_operation=AlterConfigOpType.SET),
    ]
    resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(10)
    _produce(boot, topic, (f"held-{i}" for i in range(4)))
    holder = _consumer(boot, group, "holder", share_acknowledgement_mode="explicit")
    holder.subscribe([topic])
    held = _wait_records(holder, 4)
    assert [(m.offset(), m.delivery_count()) for m in held] == [(0, 1), (1, 1), (2, 1), (3, 1)]
    closed_at = time.monotonic()
    holder.close()  # leaves without acknowledging
    taker = _consumer(boot, group, "taker")
    taker.subscribe([topic])
    again = _wait_records(taker, 4)
    assert time.monotonic() - closed_at < 60, "came back only when the lock expired"
    assert [(m.offset(), m.delivery_count()) for m in again] == [(0, 2), (1, 2), (2, 2), (3, 2)]
    taker.close()


def _wait_records(consumer: ShareConsumer, at_least: int) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while len(got) < at_least:
        assert time.monotonic() < deadline, (
            f"{consumer} got {len(got)} records, expected {at_least}"
        )
        got.extend(_poll(consumer))
    return got
