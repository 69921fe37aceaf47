"""kafkajs 2.2.4 in a consumer group, administering groups, and producing in transactions,
against a real broker process (``js/driver.js`` under node, one command per process).

* two kafkajs members of one group: the second one's arrival rebalances the partitions
  between them, each commits what it processed, and the committed offsets end at the ends;
* kafkajs's admin lists, describes, moves the offsets of and deletes a group;
* a kafkajs transactional producer commits, aborts, commits: kafkajs's read_committed
  consumer and confluent-kafka's read exactly the committed records.
"""

from __future__ import annotations

import uuid
from collections import Counter

import pytest
from helpers import unique_topic
from process_clients import js, js_messages, js_records
from txn_helpers import TXN_BROKER_SETTINGS, Rec, check_exactly, ck_read

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

PARTITIONS = 3
PER_PHASE = 30
TIMEOUT_MS = 60_000


def _create(bootstrap: str, topic: str) -> None:
    created = js("create", {"bootstrap": bootstrap, "topic": topic, "partitions": PARTITIONS})
    assert created["partitions"] == list(range(PARTITIONS)), created


@pytest.mark.feature("groups", client="kafkajs")
def test_second_member_rebalances_and_both_commit(broker_factory) -> None:  # type: ignore[no-untyped-def]
    broker = broker_factory(TXN_BROKER_SETTINGS)
    topic, group = unique_topic("js-group"), f"js-group-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    result = js("group-pair", {
        "bootstrap": broker.bootstrap, "topic": topic, "group": group,
        "partitions": PARTITIONS, "perPhase": PER_PHASE, "timeoutMs": TIMEOUT_MS,
    })  # fmt: skip
    joins = result["joins"]
    everything = list(range(PARTITIONS))
    # Alone, member a got every partition; after b joined, they split them.
    assert joins["a"][0] == everything, joins
    last_a, last_b = set(joins["a"][-1]), set(joins["b"][-1])
    assert last_a and last_b and not last_a & last_b and last_a | last_b == set(everything), joins
    # Every record was read; the second phase by the member owning its partition then.
    values = Counter(r["value"] for r in result["records"])
    assert set(values) == set(range(2 * PER_PHASE)), sorted(set(range(2 * PER_PHASE)) - set(values))
    for r in result["records"]:
        if r["value"] >= PER_PHASE:
            owner = "a" if r["partition"] in last_a else "b"
            assert r["member"] == owner, r
    # Both members committed; the group's offsets are at each partition's end.
    assert {r["member"] for r in result["records"]} == {"a", "b"}
    per_partition = Counter(v % PARTITIONS for v in range(2 * PER_PHASE))
    assert {c["partition"]: c["offset"] for c in result["committed"]} == dict(per_partition)


@pytest.mark.feature("group-admin", client="kafkajs")
def test_admin_lists_describes_moves_and_deletes_a_group(broker_factory) -> None:  # type: ignore[no-untyped-def]
    broker = broker_factory(TXN_BROKER_SETTINGS)
    base = {"bootstrap": broker.bootstrap}
    topic, group = unique_topic("js-gadmin"), f"js-gadmin-{uuid.uuid4().hex[:8]}"
    _create(broker.bootstrap, topic)
    pairs: list[tuple[bytes | None, bytes | None]] = [(None, str(v).encode()) for v in range(24)]
    js("produce", {**base, "topic": topic, "messages": js_messages(pairs, [v % PARTITIONS for v in range(24)])})
    consumed = js("cluster-consume", {**base, "topic": topic, "group": group, "want": 24, "timeoutMs": TIMEOUT_MS})
    assert sorted(c["offset"] for c in consumed["committed"]) == [8, 8, 8], consumed["committed"]

    ops = [
        {"op": "listGroups"},
        {"op": "describeGroups", "groups": [group]},
        {"op": "fetchOffsets", "groupId": group, "topic": topic},
        {"op": "setOffsets", "groupId": group, "topic": topic, "partitions": [{"partition": 1, "offset": 3}]},
        {"op": "fetchOffsets", "groupId": group, "topic": topic},
        {"op": "resetOffsets", "groupId": group, "topic": topic, "earliest": True},
        {"op": "fetchOffsets", "groupId": group, "topic": topic},
        {"op": "deleteGroups", "groups": [group]},
        {"op": "listGroups"},
    ]
    results = js("admin-ops", {**base, "ops": ops})["results"]
    assert not [r for r in results if "error" in r], results
    listed, described, before, after_set, after_reset, deleted, listed_after = (results[i].get("ok") for i in (0, 1, 2, 4, 6, 7, 8))
    assert {"groupId": group, "protocolType": "consumer"} in listed, listed
    assert described == [{"groupId": group, "state": "Empty", "protocolType": "consumer", "errorCode": 0, "members": 0}]
    offsets = lambda rows: {r["partition"]: r["offset"] for r in rows}  # noqa: E731
    assert offsets(before) == {0: 8, 1: 8, 2: 8}
    assert offsets(after_set) == {0: 8, 1: 3, 2: 8}
    # kafkajs's resetOffsets commits the EARLIEST sentinel (-2) itself; a broker stores what
    # OffsetCommit carries, and kafkajs's consumer resolves it at its next start.
    assert offsets(after_reset) == {0: -2, 1: -2, 2: -2}
    assert [(d["groupId"], d["errorCode"]) for d in deleted] == [(group, 0)]
    assert group not in [g["groupId"] for g in listed_after]


@pytest.mark.feature("transactions", client="kafkajs")
def test_commit_abort_commit_read_committed(broker_factory) -> None:  # type: ignore[no-untyped-def]
    broker = broker_factory(TXN_BROKER_SETTINGS)
    base = {"bootstrap": broker.bootstrap}
    topic = unique_topic("js-txn")
    _create(broker.bootstrap, topic)
    phases = {p: [(f"k{i % 9}".encode(), f"js|{p}|{i:04d}".encode()) for i in range(27)] for p in ("c1", "a2", "c3")}
    steps = [
        {"action": "commit", "messages": js_messages(phases["c1"])},
        {"action": "abort", "messages": js_messages(phases["a2"])},
        {"action": "commit", "messages": js_messages(phases["c3"])},
    ]
    done = js("txn", {**base, "topic": topic, "transactionalId": f"js-txn-{uuid.uuid4().hex[:8]}", "steps": steps})
    assert [s["action"] for s in done["steps"]] == ["commit", "abort", "commit"]
    committed = [v for p in ("c1", "c3") for _, v in phases[p]]
    aborted = [v for _, v in phases["a2"]]

    read = js("consume", {**base, "topic": topic, "group": f"js-txn-r-{uuid.uuid4().hex[:8]}", "want": len(committed), "timeoutMs": TIMEOUT_MS})
    got = [Rec(p, o, k, v) for p, o, k, v in js_records(read) if v is not None]
    check_exactly(got, committed, "kafkajs read_committed")
    check_exactly(ck_read(broker.bootstrap, topic, "read_committed"), committed, "confluent-kafka read_committed")
    # The aborted records are in the log (read_uncommitted sees them), with their markers.
    check_exactly(ck_read(broker.bootstrap, topic, "read_uncommitted"), committed + aborted, "confluent-kafka read_uncommitted")
