"""Group admin with each client's admin API: list/describe/delete groups, list/alter/delete
committed offsets, against one active group (a live member) and one empty group (offsets
committed by a member that has gone)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from group_helpers import (
    GROUP_BROKER_SETTINGS,
    TOPIC_PARTITIONS,
    Member,
    Members,
    committed,
    ends_of,
    topic_with_records,
    wait_assignment,
    wait_committed,
    wait_consumed,
)
from helpers import unique_topic, wait_until

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

PER_PARTITION = 4
EMPTY_GROUP_OFFSET = 2


@dataclass
class Groups:
    bootstrap: str
    topic: str
    active: str  # one live kafka-python member (range), everything consumed and committed
    empty: str  # offsets committed, no members
    member: Member


@pytest.fixture
def groups(broker_factory, tmp_path: Path) -> Iterator[Groups]:
    broker = broker_factory(GROUP_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic = topic_with_records(boot, "gadmin", PER_PARTITION, "r")
    active, empty = unique_topic("active"), unique_topic("empty")
    members = Members(tmp_path)
    try:
        member = members.start("kafka-python", "admin-member", boot, topic, active)
        wait_assignment(members, [member])
        wait_consumed(members, [member], ends_of(PER_PARTITION))
        wait_committed(boot, active, topic, ends_of(PER_PARTITION))
        commit_without_members(boot, topic, empty, EMPTY_GROUP_OFFSET)
        yield Groups(boot, topic, active, empty, member)
    finally:
        members.cleanup()


def commit_without_members(bootstrap: str, topic: str, group: str, offset: int) -> None:
    """Commit by assignment (generation -1, no JoinGroup), like a tool resetting offsets."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(TOPIC_PARTITIONS)]
        consumer.assign(tps)
        consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp in tps})
    finally:
        consumer.close()


@pytest.mark.feature("group-admin", client="kafka-python")
def test_kafka_python_admin_groups(groups: Groups) -> None:
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.errors import (
        GroupIdNotFoundError,
        GroupSubscribedToTopicError,
        NoError,
        UnknownMemberIdError,
    )
    from kafka.structs import OffsetAndMetadata

    g = groups
    tp = [TopicPartition(g.topic, p) for p in range(TOPIC_PARTITIONS)]
    admin = KafkaAdminClient(bootstrap_servers=g.bootstrap, request_timeout_ms=10_000)
    try:
        listed = {x["group_id"]: x for x in admin.list_groups()}
        assert listed[g.active]["group_state"] == "Stable", listed
        assert listed[g.active]["protocol_type"] == "consumer", listed
        assert listed[g.empty]["group_state"] == "Empty", listed
        # Kafka: a group that only ever had offset commits has no protocol type.
        assert listed[g.empty]["protocol_type"] == "", listed
        # ListGroups v4+ states filter.
        stable = {x["group_id"] for x in admin.list_groups(states_filter=["Stable"])}
        assert g.active in stable and g.empty not in stable, stable

        described = admin.describe_groups([g.active, g.empty])
        act = described[g.active]
        assert act["error"] is None, act
        assert act["group_state"] == "Stable" and act["protocol_type"] == "consumer", act
        assert act["protocol_data"] == "range", act
        (m,) = act["members"]
        assert m["client_id"] == "admin-member" and m["member_id"], m
        (assigned,) = m["member_assignment"]["assigned_partitions"]
        assert assigned["topic"] == g.topic
        assert sorted(assigned["partitions"]) == list(range(TOPIC_PARTITIONS)), m
        assert m["member_metadata"]["topics"] == [g.topic], m
        emp = described[g.empty]
        assert emp["group_state"] == "Empty" and emp["members"] == [], emp
        missing = admin.describe_groups([unique_topic("nope")])
        (nope,) = missing.values()
        assert nope["group_state"] == "Dead" and "GroupIdNotFound" in str(nope["error"]), nope

        offsets = admin.list_group_offsets({g.active: None, g.empty: None})
        assert {t.partition: o.offset for t, o in offsets[g.active].items()} == ends_of(
            PER_PARTITION
        )
        assert {t.partition: o.offset for t, o in offsets[g.empty].items()} == ends_of(
            EMPTY_GROUP_OFFSET
        )
        # Only some partitions.
        some = admin.list_group_offsets({g.active: [tp[1], tp[4]]})[g.active]
        assert {t.partition: o.offset for t, o in some.items()} == {
            1: PER_PARTITION,
            4: PER_PARTITION,
        }

        # Alter: fine for the empty group; a group with live members refuses.
        res = admin.alter_group_offsets(g.empty, {tp[0]: OffsetAndMetadata(1, "reset", -1)})
        assert res == {tp[0]: NoError}, res
        after = admin.list_group_offsets({g.empty: [tp[0]]})[g.empty][tp[0]]
        assert (after.offset, after.metadata) == (1, "reset"), after
        res = admin.alter_group_offsets(g.active, {tp[0]: OffsetAndMetadata(0, "", -1)})
        assert res == {tp[0]: UnknownMemberIdError}, res
        assert committed(g.bootstrap, g.active, g.topic) == ends_of(PER_PARTITION)

        # OffsetDelete: fine for the empty group; refused where a member consumes the topic.
        res = admin.delete_group_offsets(g.empty, [tp[1]])
        assert res == {tp[1]: NoError}, res
        left = admin.list_group_offsets({g.empty: None})[g.empty]
        assert tp[1] not in left and len(left) == TOPIC_PARTITIONS - 1, left
        res = admin.delete_group_offsets(g.active, [tp[0]])
        assert res == {tp[0]: GroupSubscribedToTopicError}, res

        # DeleteGroups: per-group errors.
        nope_id = unique_topic("nope")
        res = admin.delete_groups([g.active, g.empty, nope_id])
        assert res == {
            g.active: "NonEmptyGroupError",
            g.empty: "OK",
            nope_id: GroupIdNotFoundError.__name__,
        }, res
        listed = {x["group_id"] for x in admin.list_groups()}
        assert g.empty not in listed and g.active in listed, listed
        assert committed(g.bootstrap, g.empty, g.topic) == {}

        # Once its member has left, the active group can be deleted too.
        assert g.member.leave() == 0
        wait_until(
            lambda: admin.describe_groups([g.active])[g.active]["group_state"] == "Empty",
            10,
            "the group to be empty after its member left",
        )
        assert admin.delete_groups([g.active]) == {g.active: "OK"}
        assert committed(g.bootstrap, g.active, g.topic) == {}
    finally:
        admin.close()


@pytest.mark.feature("group-admin", client="confluent-kafka")
def test_confluent_admin_groups(groups: Groups) -> None:
    from confluent_kafka import (
        ConsumerGroupState,
        ConsumerGroupTopicPartitions,
        KafkaError,
        KafkaException,
        TopicPartition,
    )
    from confluent_kafka.admin import AdminClient

    g = groups
    admin = AdminClient(
        {"bootstrap.servers": g.bootstrap, "logger": logging.getLogger("librdkafka.admin")}
    )
    t = 15

    listed = admin.list_consumer_groups(request_timeout=t).result(t)
    assert not listed.errors, listed.errors
    by_id = {x.group_id: x for x in listed.valid}
    assert by_id[g.active].state == ConsumerGroupState.STABLE, by_id[g.active]
    assert not by_id[g.active].is_simple_consumer_group
    assert by_id[g.empty].state == ConsumerGroupState.EMPTY
    assert by_id[g.empty].is_simple_consumer_group  # empty protocol type
    stable = admin.list_consumer_groups(
        request_timeout=t, states={ConsumerGroupState.STABLE}
    ).result(t)
    assert {x.group_id for x in stable.valid} >= {g.active}
    assert g.empty not in {x.group_id for x in stable.valid}

    futures = admin.describe_consumer_groups([g.active, g.empty], request_timeout=t)
    act = futures[g.active].result(t)
    assert act.state == ConsumerGroupState.STABLE and act.partition_assignor == "range", act
    assert not act.is_simple_consumer_group
    (m,) = act.members
    assert m.client_id == "admin-member" and m.member_id, m
    assert sorted(
        tp.partition for tp in m.assignment.topic_partitions if tp.topic == g.topic
    ) == list(range(TOPIC_PARTITIONS))
    emp = futures[g.empty].result(t)
    assert emp.state == ConsumerGroupState.EMPTY and emp.members == [], emp

    def offsets(group: str) -> dict[int, int]:
        f = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group)], request_timeout=t
        )[group]
        res = f.result(t)
        assert all(tp.error is None for tp in res.topic_partitions), res.topic_partitions
        return {tp.partition: tp.offset for tp in res.topic_partitions if tp.topic == g.topic}

    assert offsets(g.active) == ends_of(PER_PARTITION)
    assert offsets(g.empty) == ends_of(EMPTY_GROUP_OFFSET)

    req = ConsumerGroupTopicPartitions(g.empty, [TopicPartition(g.topic, 3, 1)])
    res = admin.alter_consumer_group_offsets([req], request_timeout=t)[g.empty].result(t)
    assert [(tp.partition, tp.offset, tp.error) for tp in res.topic_partitions] == [(3, 1, None)]
    assert offsets(g.empty) == {**ends_of(EMPTY_GROUP_OFFSET), 3: 1}

    # The legacy API: ListGroups v0 and then DescribeGroups v0 for every group.
    with pytest.warns(DeprecationWarning):
        legacy = {x.id: x for x in admin.list_groups(timeout=t)}
    la = legacy[g.active]
    assert (la.state, la.protocol_type, la.protocol) == ("Stable", "consumer", "range"), la
    assert [mm.client_id for mm in la.members] == ["admin-member"], la.members
    assert la.members[0].assignment, "the member's assignment bytes are missing"
    assert la.error is None
    assert legacy[g.empty].state == "Empty" and legacy[g.empty].members == []
    with pytest.warns(DeprecationWarning):
        (one,) = admin.list_groups(group=g.empty, timeout=t)
    assert one.id == g.empty and one.state == "Empty"

    res = admin.delete_consumer_groups([g.empty], request_timeout=t)
    assert res[g.empty].result(t) is None
    res = admin.delete_consumer_groups([g.active], request_timeout=t)
    with pytest.raises(KafkaException) as err:
        res[g.active].result(t)
    assert err.value.args[0].code() == KafkaError.NON_EMPTY_GROUP, err.value
    after = admin.list_consumer_groups(request_timeout=t).result(t)
    ids = {x.group_id for x in after.valid}
    assert g.empty not in ids and g.active in ids, ids


@pytest.mark.feature("group-admin", client="aiokafka")
def test_aiokafka_admin_groups(groups: Groups) -> None:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.structs import TopicPartition

    g = groups

    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=g.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            listed = dict(await admin.list_consumer_groups())
            assert listed[g.active] == "consumer", listed
            assert listed[g.empty] == "", listed
            # One group per call: aiokafka 0.14 sends DescribeGroups v3 but decodes the
            # answer as v2, so a second group in one response is read out of step.
            (resp,) = await admin.describe_consumer_groups([g.active])
            (act,) = resp.groups
            error_code, group_id, state, protocol_type, protocol, members = act[:6]
            assert (error_code, group_id, state) == (0, g.active, "Stable"), act
            assert (protocol_type, protocol) == ("consumer", "range"), act
            assert [mm[1] for mm in members] == ["admin-member"], members  # client_id
            (resp,) = await admin.describe_consumer_groups([g.empty])
            (emp,) = resp.groups
            assert emp[2] == "Empty" and list(emp[5]) == [], emp

            offs = await admin.list_consumer_group_offsets(g.active)
            assert {tp.partition: o.offset for tp, o in offs.items()} == ends_of(PER_PARTITION)
            offs = await admin.list_consumer_group_offsets(
                g.empty, partitions=[TopicPartition(g.topic, 5)]
            )
            assert {tp.partition: o.offset for tp, o in offs.items()} == {5: EMPTY_GROUP_OFFSET}
        finally:
            await admin.close()

    asyncio.run(run())
