"""acks=all across a crash with aiokafka, kafkajs, kcat and the kbroker CLI producing.

Each client writes records with acks=all (all in-sync replicas); once every one of them is
acknowledged the broker gets SIGKILL (no shutdown path runs) and starts again on the same
data dir.  The high watermarks are what they were, every acknowledged record is read back
exactly once, and where the client reports offsets each record is at the offset its
acknowledgement named (kafka-python and confluent-kafka: test_durability.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import pytest
from helpers import PARTITIONS, unique_topic
from process_clients import cli, js, js_messages, kcat
from test_durability import create_topic, high_watermarks
from txn_helpers import CLIENT_TIMEOUT_S, ck_read

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

RECORDS = 150

# What a client's acknowledgements said: the values; value -> (partition, offset) where it
# names each record's offset; partition -> (first, last offset) where it names ranges.
Acked = tuple[list[bytes], dict[bytes, tuple[int, int]], dict[int, tuple[int, int]]]


def _aiokafka(bootstrap: str, topic: str, values: list[bytes]) -> Acked:
    from aiokafka import AIOKafkaProducer

    async def run() -> dict[bytes, tuple[int, int]]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=b"k%d" % (i % 24), value=v) for i, v in enumerate(values)]
            done = await asyncio.wait_for(asyncio.gather(*futures), CLIENT_TIMEOUT_S * 2)
            return {v: (md.partition, md.offset) for v, md in zip(values, done, strict=True)}
        finally:
            await producer.stop()

    return values, asyncio.run(run()), {}


def _kafkajs(bootstrap: str, topic: str, values: list[bytes]) -> Acked:
    chunk = 20  # the driver sends each chunk in one send(): one batch per partition
    partitions = [i % PARTITIONS for i in range(len(values))]
    result = js("produce", {"bootstrap": bootstrap, "topic": topic, "chunk": chunk,
                            "messages": js_messages([(None, v) for v in values], partitions)})  # fmt: skip
    assert all(r["errorCode"] == 0 for r in result["results"]), result
    # A message's offset: its send's base offset for its partition plus its place there.
    bases = iter(result["results"])
    acked: dict[bytes, tuple[int, int]] = {}
    for start in range(0, len(values), chunk):
        sent = list(zip(values[start : start + chunk], partitions[start : start + chunk], strict=True))
        base = {r["partition"]: r["baseOffset"] for r in (next(bases) for _ in {p for _, p in sent})}
        seen: Counter[int] = Counter()
        for v, p in sent:
            acked[v] = (p, base[p] + seen[p])
            seen[p] += 1
    return values, acked, {}


def _kcat(bootstrap: str, topic: str, values: list[bytes]) -> Acked:
    # kcat exits 0 only when every message was delivered (acknowledged); it names no offsets.
    proc = kcat(bootstrap, ["-P", "-t", topic, "-X", "acks=all", "-X", "linger.ms=5"], stdin=b"".join(v + b"\n" for v in values))
    assert b"Delivery failed" not in proc.stderr, proc.stderr.decode()[-2000:]
    return values, {}, {}


def _cli(bootstrap: str, topic: str, values: list[bytes]) -> Acked:
    # --acks -1 is the default; the summary names each partition's first and last offset.
    summary = json.loads(cli(bootstrap, "produce", topic, "--acks", "-1", "--key-separator", ":", "--json",
                             stdin=b"".join(b"k%d:%s\n" % (i % 24, v) for i, v in enumerate(values))).stdout)  # fmt: skip
    assert summary["records"] == len(values), summary
    ranges = {row["partition"]: (row["first_offset"], row["last_offset"], row["records"]) for row in summary["partitions"]}
    for first, last, n in ranges.values():
        assert last - first + 1 == n, summary
    return values, {}, {p: (first, last) for p, (first, last, _) in ranges.items()}


PRODUCERS = {"aiokafka": _aiokafka, "kafkajs": _kafkajs, "kcat": _kcat, "kbroker-cli": _cli}


@pytest.mark.parametrize("client", list(PRODUCERS))
@pytest.mark.feature("durability", client="{client}")
def test_sigkill_after_acks_all_loses_nothing(persistent_broker, client: str) -> None:  # type: ignore[no-untyped-def]
    broker = persistent_broker
    topic = unique_topic(f"sigkill-{client}")
    create_topic(broker.bootstrap, topic)
    values = [f"{client}-{uuid.uuid4().hex[:6]}-{i:04d}".encode() for i in range(RECORDS)]
    acked, offsets, ranges = PRODUCERS[client](broker.bootstrap, topic, values)
    before = high_watermarks(broker.bootstrap, topic)
    assert sum(before.values()) == RECORDS, before

    broker.kill()  # SIGKILL: no shutdown path runs
    broker.start()

    assert high_watermarks(broker.bootstrap, topic) == before
    records = ck_read(broker.bootstrap, topic, "read_uncommitted")
    got = Counter(r.value for r in records)
    assert got == Counter(acked), f"{len(set(acked) - set(got))} missing, {sum((got - Counter(acked)).values())} extra"
    where = {r.value: (r.partition, r.offset) for r in records}
    for value, at in offsets.items():
        assert where[value] == at, (value, where[value], at)
    for p, (first, last) in ranges.items():
        assert sorted(o for part, o in where.values() if part == p) == list(range(first, last + 1)), (p, first, last)
