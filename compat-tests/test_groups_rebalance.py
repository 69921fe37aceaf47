"""Rebalance behaviour seen by real clients: static membership, cooperative-sticky, and a
group mixing kafka-python, aiokafka and confluent-kafka members on a common assignor."""

from __future__ import annotations

import time

import pytest
from group_helpers import (
    GROUP_BROKER_SETTINGS,
    Member,
    Members,
    check_no_gaps,
    consumed,
    describe,
    ends_of,
    produce_even,
    topic_with_records,
    wait_assignment,
    wait_consumed,
    wait_consumed_and_committed,
)
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

# Long enough that a restarted process is back well before the broker would expire it.
STATIC_SESSION_MS = 15_000


def rebalance_events(m: Member, since: int = 0) -> list[dict]:
    return [e for e in m.snapshot()[since:] if e["ev"] in ("assigned", "revoked", "lost")]


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka", "confluent", "kcat"])
@pytest.mark.feature("groups", client="{client}")
def test_static_member_restart_within_session_timeout_no_rebalance(
    broker_factory, members: Members, client: str
) -> None:
    broker = broker_factory(GROUP_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic = topic_with_records(boot, f"static-{client}", 3, "before")
    group = unique_topic(f"gs-{client}")

    def start(name: str) -> Member:
        return members.start(
            client,
            name,
            boot,
            topic,
            group,
            instance_id=f"inst-{name}",
            session_ms=STATIC_SESSION_MS,
        )

    s1, s2, s3 = start("s1"), start("s2"), start("s3")
    owners = wait_assignment(members, [s1, s2, s3], what="by three static members")
    wait_consumed(members, [s1, s2, s3], ends_of(3))
    time.sleep(2)  # let any trailing rebalance (e.g. a late metadata refresh) finish
    owners = wait_assignment(members, [s1, s2, s3], what="still")
    before = describe(boot, group)
    assert before["group_state"] == "Stable", before
    ids_before = {m["group_instance_id"]: m["member_id"] for m in before["members"]}
    assert set(ids_before) == {"inst-s1", "inst-s2", "inst-s3"}, before
    marks = {m.name: len(m.snapshot()) for m in (s2, s3)}

    # The process of s1 dies and comes back with the same group.instance.id, well within
    # its session timeout: the broker hands it its old assignment, nobody else rebalances.
    s1.kill()
    s1b = start("s1")
    wait_assignment(members, [s1b, s2, s3], what="after the static restart")
    assert s1b.owned() == owners["s1"], (s1b.owned(), owners)
    produce_even(boot, topic, 3, "after")
    wait_consumed(members, [s1, s1b, s2, s3], ends_of(6))
    time.sleep(2)  # several heartbeat intervals: a pending rebalance would show by now
    for m in (s2, s3):
        assert rebalance_events(m, marks[m.name]) == [], (
            f"{m.name} saw a rebalance when the static member s1 restarted\n"
            + members.diagnostics()
        )
        assert m.owned() == owners[m.name]
    after = describe(boot, group)
    assert after["group_state"] == "Stable", after
    ids_after = {m["group_instance_id"]: m["member_id"] for m in after["members"]}
    assert set(ids_after) == set(ids_before), after
    # The other members kept their member ids; s1 got a new one (the old is fenced).
    assert ids_after["inst-s2"] == ids_before["inst-s2"]
    assert ids_after["inst-s3"] == ids_before["inst-s3"]
    assert ids_after["inst-s1"] != ids_before["inst-s1"]
    check_no_gaps(consumed([s1, s1b, s2, s3]), ends_of(6))


# kcat 1.7.1 assigns with rd_kafka_assign() in its rebalance callback, which the
# cooperative protocol forbids; aiokafka 0.14 has no cooperative assignor.
@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
@pytest.mark.feature("groups", client="{client}")
def test_cooperative_sticky_rebalances_incrementally(
    broker_factory, members: Members, client: str
) -> None:
    broker = broker_factory(GROUP_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic = topic_with_records(boot, f"coop-{client}", 3, "r1")
    group = unique_topic(f"gc-{client}")

    def start(name: str) -> Member:
        return members.start(client, name, boot, topic, group, assignor="cooperative-sticky")

    m1, m2 = start("m1"), start("m2")
    two = wait_assignment(members, [m1, m2], what="by two members")
    assert sorted(len(o) for o in two.values()) == [3, 3], two
    wait_consumed(members, [m1, m2], ends_of(3))
    assert describe(boot, group)["protocol_data"] == "cooperative-sticky"
    marks = {m.name: len(m.snapshot()) for m in (m1, m2)}

    # A third member joins: each old member gives up exactly one partition and nothing else.
    m3 = start("m3")
    three = wait_assignment(members, [m1, m2, m3], what="by three members")
    assert sorted(len(o) for o in three.values()) == [2, 2, 2], three
    for m in (m1, m2):
        kept = three[m.name]
        assert kept <= two[m.name], f"{m.name}: sticky assignment moved {two[m.name]} -> {kept}"
        evs = rebalance_events(m, marks[m.name])
        revoked = {p for e in evs if e["ev"] in ("revoked", "lost") for p in e["tps"]}
        assert revoked == two[m.name] - kept, (
            f"{m.name} kept {sorted(kept)} but was revoked {sorted(revoked)}: not incremental\n"
            f"{evs}"
        )
        assert not [e for e in evs if e["ev"] == "lost"], evs
    produce_even(boot, topic, 3, "r2")
    wait_consumed(members, [m1, m2, m3], ends_of(6))

    # The third member leaves: the others only gain partitions, none is revoked.
    marks = {m.name: len(m.snapshot()) for m in (m1, m2)}
    assert m3.leave() == 0, members.diagnostics()
    back = wait_assignment(members, [m1, m2], what="after the third member left")
    for m in (m1, m2):
        assert three[m.name] <= back[m.name], (three, back)
        evs = rebalance_events(m, marks[m.name])
        assert not [e for e in evs if e["ev"] != "assigned" and e["tps"]], (
            f"{m.name} lost partitions when another member left: {evs}"
        )
    produce_even(boot, topic, 3, "r3")
    wait_consumed_and_committed(members, [m1, m2, m3], boot, group, topic, ends_of(9))


def test_mixed_clients_roundrobin_group(broker_factory, members: Members) -> None:
    """kafka-python, aiokafka and confluent-kafka in one group: all name "roundrobin"."""
    broker = broker_factory(GROUP_BROKER_SETTINGS)
    boot = broker.bootstrap
    topic = topic_with_records(boot, "mixed", 4, "r1")
    group = unique_topic("gm")

    kp = members.start("kafka-python", "kp", boot, topic, group, assignor="roundrobin")
    aio = members.start("aiokafka", "aio", boot, topic, group, assignor="roundrobin")
    ck = members.start("confluent", "ck", boot, topic, group, assignor="roundrobin")
    owners = wait_assignment(members, [kp, aio, ck], what="by three different clients")
    assert sorted(len(o) for o in owners.values()) == [2, 2, 2], owners
    d = describe(boot, group)
    assert d["group_state"] == "Stable" and d["protocol_type"] == "consumer", d
    assert d["protocol_data"] == "roundrobin", d
    assert sorted(m["client_id"] for m in d["members"]) == ["aio", "ck", "kp"], d
    # The assignment the leader computed is what each member reports owning.
    for m in d["members"]:
        (tps,) = m["member_assignment"]["assigned_partitions"]
        assert tps["topic"] == topic
        assert set(tps["partitions"]) == owners[m["client_id"]], (m, owners)
    wait_consumed(members, [kp, aio, ck], ends_of(4))

    # confluent-kafka leaves cleanly, aiokafka is killed: kafka-python ends up with all.
    assert ck.leave() == 0, members.diagnostics()
    two = wait_assignment(members, [kp, aio], what="after confluent-kafka left")
    assert sorted(len(o) for o in two.values()) == [3, 3], two
    produce_even(boot, topic, 4, "r2")
    wait_consumed(members, [kp, aio, ck], ends_of(8))
    aio.kill()
    wait_assignment(members, [kp], what="after aiokafka was killed")
    produce_even(boot, topic, 4, "r3")
    wait_consumed_and_committed(members, [kp, aio, ck], boot, group, topic, ends_of(12))
