"""``kbroker group ...`` against groups real clients made: list, describe (members,
assignments, lag), reset-offsets checked by a kafka-python consumer resuming at the new
offset, delete."""

from __future__ import annotations

import time
import uuid

import admin_cli as cli
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from helpers import unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

SETTINGS = {"group.initial.rebalance.delay.ms": "0", "group.min.session.timeout.ms": "1000"}
PARTITIONS = 2
PER_PARTITION = 10
WAIT_S = 30.0


def _fill(bootstrap: str, topic: str, base_ts: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    for p in range(PARTITIONS):
        for i in range(PER_PARTITION):
            producer.produce(topic, key=b"k", value=f"p{p}-{i}".encode(), partition=p, timestamp=base_ts + i * 1000)
    assert producer.flush(30) == 0


def _confluent_member(bootstrap: str, group: str, topic: str) -> Consumer:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "broker.address.family": "v4", "group.id": group,
        "auto.offset.reset": "earliest", "enable.auto.commit": False, "session.timeout.ms": 6000,
        "client.id": "cli-test-member",
    })
    consumer.subscribe([topic])
    return consumer


def _reported(bootstrap: str, topic: str, partitions: int, when_ms: int | None = None) -> dict[int, int]:
    """partition -> the high watermark (or the offset for ``when_ms``) as the broker reports it
    to confluent-kafka (ListOffsets): the oracle for what the CLI prints on any broker, Tansu 0.6
    included, whose ListOffsets answers a batch's base offset (+ 1 for "latest")."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "broker.address.family": "v4", "group.id": "cli-oracle"})
    try:
        if when_ms is None:
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)[1] for p in range(partitions)}
        found = consumer.offsets_for_times([TopicPartition(topic, p, when_ms) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def _consume(consumer: Consumer, want: int) -> int:
    got = 0
    deadline = time.monotonic() + WAIT_S
    while got < want and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got += 1
    return got


@pytest.mark.feature("group-admin", client="kbroker-cli")
def test_list_describe_reset_and_a_real_consumer_resumes(any_broker_factory) -> None:
    broker = any_broker_factory(SETTINGS)
    b = broker.bootstrap
    topic = unique_topic("cli-grp")
    cli.run(b, "topic", "create", topic, "-p", str(PARTITIONS))
    base_ts = 1_700_000_000_000
    _fill(b, topic, base_ts)
    group = f"cli-group-{uuid.uuid4().hex[:8]}"

    member = _confluent_member(b, group, topic)
    try:
        assert _consume(member, PARTITIONS * PER_PARTITION) == PARTITIONS * PER_PARTITION
        member.commit(asynchronous=False)
        # while the member is in: it shows with its assignment, and a reset is refused
        [live] = cli.as_json(b, "group", "describe", group)
        assert live["state"] == "Stable" and live["protocol_type"] == "consumer"
        [m] = live["members"]
        if broker.kind == "kbroker":  # Tansu 0.6 answers an empty client id for every member
            assert m["client_id"] == "cli-test-member"
        assigned = [(a["topic"], p) for a in m["assignment"] for p in a["partitions"]]
        if broker.kind == "kbroker":
            assert assigned == [(topic, p) for p in range(PARTITIONS)]
        else:
            # Tansu 0.6 answers DescribeGroups with empty member_metadata and member_assignment
            # bytes (and an empty client id) for a Stable group's member, so there is nothing to show
            assert assigned == []
        owner = m["member_id"] if assigned else None
        assert {(o["partition"], o["committed_offset"], o["lag"], o["member_id"]) for o in live["offsets"]} == {
            (p, PER_PARTITION, 0, owner) for p in range(PARTITIONS)
        }
        refused = cli.run(b, "group", "reset-offsets", group, "--topic", topic, "--to-earliest", check=False)
        assert "only while it has no members" in cli.one_line_error(refused)
    finally:
        member.close()

    listed = {g["group"]: g for g in cli.as_json(b, "group", "list")}
    # Tansu 0.6 lists a group whose members left as "Unknown" (Kafka: "Empty")
    assert listed[group]["state"] == ("Empty" if broker.kind == "kbroker" else "Unknown")
    assert listed[group]["protocol_type"] == "consumer"
    assert group in cli.text(b, "group", "list")

    # lag grows by what is produced after the commit
    producer = Producer({"bootstrap.servers": b, "broker.address.family": "v4"})
    for _ in range(3):
        producer.produce(topic, value=b"late", partition=0)
    assert producer.flush(30) == 0
    [after] = cli.as_json(b, "group", "describe", group)
    high = _reported(b, topic, PARTITIONS)
    lag = sum(max(h - PER_PARTITION, 0) for h in high.values())  # a lag is never negative
    assert after["total_lag"] == lag
    if broker.kind == "kbroker":
        assert lag == 3
    human = cli.text(b, "group", "describe", group)
    assert f"TOTAL-LAG      {lag}" in human

    # --dry-run shows, commits nothing
    dry = cli.as_json(b, "group", "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "4", "--dry-run")
    kept = min(4, high[1])  # --to-offset is kept inside [earliest, latest]
    assert dry["offsets"] == [{"topic": topic, "partition": 1, "old_offset": PER_PARTITION, "new_offset": kept}]
    [still] = cli.as_json(b, "group", "describe", group)
    assert {o["partition"]: o["committed_offset"] for o in still["offsets"]} == {0: PER_PARTITION, 1: PER_PARTITION}

    # executed: partition 0 to a time (the record stamped base+6 s is offset 6), partition 1 to offset 4
    when = "2023-11-14T22:13:26Z"  # base_ts + 6 s
    done = cli.as_json(b, "group", "reset-offsets", group, "--topic", f"{topic}:0", "--to-datetime", when)
    at_time = _reported(b, topic, PARTITIONS, base_ts + 6000)[0]
    assert done["offsets"] == [{"topic": topic, "partition": 0, "old_offset": PER_PARTITION, "new_offset": at_time}]
    done1 = cli.as_json(b, "group", "reset-offsets", group, "--topic", f"{topic}:1", "--to-offset", "4")
    want = {0: at_time, 1: kept}
    assert [(o["partition"], o["new_offset"]) for o in done1["offsets"]] == [(1, want[1])]
    if broker.kind == "kbroker":
        assert want == {0: 6, 1: 4}

    # a real consumer of the group (kafka-python) resumes at the new offsets
    from kafka import KafkaConsumer

    resumed = KafkaConsumer(
        topic, bootstrap_servers=b, group_id=group, enable_auto_commit=False, auto_offset_reset="latest",
        consumer_timeout_ms=int(WAIT_S * 1000),
    )
    first: dict[int, int] = {}
    try:
        for msg in resumed:
            first.setdefault(msg.partition, msg.offset)
            if len(first) == PARTITIONS:
                break
    finally:
        resumed.close()
    assert first == want

    # --to-latest over the whole topic, then delete the (empty) group
    latest = cli.as_json(b, "group", "reset-offsets", group, "--topic", topic, "--to-latest")
    assert {(o["partition"], o["new_offset"]) for o in latest["offsets"]} == set(high.items())
    if broker.kind == "kbroker":
        assert high == {0: PER_PARTITION + 3, 1: PER_PARTITION}
    assert cli.as_json(b, "group", "delete", group) == [{"group": group, "error": None}]
    assert group not in {g["group"] for g in cli.as_json(b, "group", "list")}
    again = cli.run(b, "group", "delete", group, check=False)
    if broker.kind == "kbroker":
        assert "GROUP_ID_NOT_FOUND" in cli.one_line_error(again)
    else:  # Tansu 0.6 answers NONE for a group that does not exist
        assert again.returncode == 0 and again.stderr == b"", again.stderr
