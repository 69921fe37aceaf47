"""``kbroker produce`` / ``kbroker consume`` against a live broker, and with a real client on
the other side: what the CLI produces confluent-kafka reads exactly (keys, values, headers,
partitions as Kafka's default partitioner places keys), and what confluent-kafka produces the
CLI prints exactly."""

from __future__ import annotations

import uuid

import admin_cli as cli
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from helpers import consume_bounded, unique_topic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

PARTITIONS = 3


def _confluent_read(bootstrap: str, topic: str, want: int) -> list[tuple[int, int, bytes | None, bytes | None, list]]:
    consumer = Consumer({
        "bootstrap.servers": bootstrap, "broker.address.family": "v4",
        "group.id": f"cli-unused-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False, "fetch.wait.max.ms": 100,
    })
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])

        def poll() -> list[tuple[int, int, bytes | None, bytes | None, list]]:
            out = []
            for m in consumer.consume(num_messages=500, timeout=0.5):
                assert m.error() is None, m.error()
                out.append((m.partition(), m.offset(), m.key(), m.value(), list(m.headers() or [])))
            return out

        return sorted(consume_bounded(poll, want))
    finally:
        consumer.close()


@pytest.mark.feature("produce", client="kbroker-cli")
def test_cli_produce_read_by_confluent(any_broker) -> None:
    b = any_broker.bootstrap
    topic = unique_topic("cli-produce")
    cli.run(b, "topic", "create", topic, "-p", str(PARTITIONS))
    lines = [f"key-{i % 5}|value {i} with spaces|and a bar" for i in range(40)] + ["no separator here", "|empty key"]
    summary = cli.as_json(
        b, "produce", topic, "--key-separator", "|", "--header", "source=cli", "--header", "n=1",
        stdin=("\n".join(lines) + "\n").encode(),
    )
    assert summary["topic"] == topic and summary["records"] == len(lines)
    got = _confluent_read(b, topic, len(lines))
    assert len(got) == len(lines)
    want = sorted(
        ((line.partition("|")[0].encode(), line.partition("|")[2].encode()) if "|" in line else (None, line.encode()) for line in lines),
        key=repr,
    )
    assert sorted(((k, v) for _, _, k, v, _ in got), key=repr) == want
    assert all(h == [("source", b"cli"), ("n", b"1")] for *_, h in got)

    # Keys land where Kafka's default partitioner (murmur2) puts them: librdkafka's
    # murmur2_random producer agrees key by key.
    by_key = {k: p for p, _, k, _, _ in got if k}
    check = unique_topic("cli-partitioner")
    cli.run(b, "topic", "create", check, "-p", str(PARTITIONS))
    producer = Producer({"bootstrap.servers": b, "broker.address.family": "v4", "partitioner": "murmur2_random"})
    placed: dict[bytes, int] = {}
    for key in by_key:
        producer.produce(check, key=key, value=b"x", on_delivery=lambda err, m: placed.__setitem__(m.key(), m.partition()))
    assert producer.flush(30) == 0
    assert placed == by_key
    assert len(set(by_key.values())) > 1  # the keys did spread

    # --partition pins every record; the partition's offsets continue after the last record
    # confluent-kafka read there (not ListOffsets: Tansu 0.6 answers "latest" as the last
    # batch's base offset + 1)
    next_offset = max(o for p, o, *_ in got if p == 2) + 1
    pinned = cli.as_json(b, "produce", topic, "--partition", "2", stdin=b"p1\np2\n")
    assert pinned["partitions"] == [{"partition": 2, "records": 2, "first_offset": next_offset, "last_offset": next_offset + 1}]


@pytest.mark.feature("consume", client="kbroker-cli")
def test_confluent_produce_printed_by_cli(any_broker) -> None:
    b = any_broker.bootstrap
    topic = unique_topic("cli-consume")
    cli.run(b, "topic", "create", topic, "-p", str(PARTITIONS))
    producer = Producer({"bootstrap.servers": b, "broker.address.family": "v4", "linger.ms": 5})
    acked: list[tuple[int, int, bytes, bytes]] = []
    base_ts = 1_700_000_000_000
    for i in range(30):
        producer.produce(
            topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("h", f"{i}".encode()), ("null", None)],
            timestamp=base_ts + i, partition=i % PARTITIONS,
            on_delivery=lambda err, m: acked.append((m.partition(), m.offset(), m.key(), m.value())),
        )
    assert producer.flush(30) == 0 and len(acked) == 30

    records = cli.json_lines(b, "consume", topic, "--from-beginning", "-n", "30")
    assert len(records) == 30
    got = sorted((r["partition"], r["offset"], r["key"], r["value"], [(h["key"], h["value"]) for h in r["headers"]], r["timestamp"]) for r in records)
    want = sorted(  # what was sent, where the broker said it put it
        (p, o, k.decode(), v.decode(), [("h", k.decode()[1:]), ("null", None)], base_ts + int(k[1:])) for p, o, k, v in acked
    )
    assert got == want

    # kcat-style --format, and --exit stops at the end without -n
    fmt = cli.text(b, "consume", topic, "-b", "-e", "--partition", "1", "--format", "%t %p %o %k=%v %T [%h]\\n")
    first = fmt.splitlines()[0]
    assert first == f"{topic} 1 0 k1=v1 {base_ts + 1} [h=1,null=]"
    assert len(fmt.splitlines()) == 10

    # without --from-beginning it starts at the end (ListOffsets latest, as the broker reports
    # it: the high watermark on kbroker, so nothing old is printed; the last batch's base
    # offset + 1 on Tansu 0.6), and -e stops at the high watermark the first Fetch reports
    latest = {p["partition"]: p["high_watermark"] for p in cli.as_json(b, "topic", "describe", topic)[0]["partitions"]}
    tail = cli.text(b, "consume", topic, "-e", "--format", "%p %o\\n").splitlines()
    assert sorted(tail) == sorted(f"{p} {o}" for p, o, _, _ in acked if o >= latest[p])
    if any_broker.kind == "kbroker":
        assert tail == []


@pytest.mark.feature("consume", client="kbroker-cli")
def test_consume_with_a_group_resumes_where_it_stopped(any_broker) -> None:
    b = any_broker.bootstrap
    topic = unique_topic("cli-group-consume")
    cli.run(b, "topic", "create", topic, "-p", "1")
    cli.run(b, "produce", topic, stdin=b"".join(f"m{i}\n".encode() for i in range(10)))
    group = unique_topic("cli-g")
    assert cli.text(b, "consume", topic, "-b", "-g", group, "-n", "4").splitlines() == ["m0", "m1", "m2", "m3"]
    assert cli.text(b, "consume", topic, "-g", group, "-e").splitlines() == [f"m{i}" for i in range(4, 10)]
    [described] = cli.as_json(b, "group", "describe", group)
    assert [(o["topic"], o["committed_offset"], o["lag"]) for o in described["offsets"]] == [(topic, 10, 0)]
