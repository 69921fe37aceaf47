"""Idempotent producers of aiokafka, confluent-kafka, kafkajs and kcat against a broker that
stores a batch and then answers NOT_ENOUGH_REPLICAS_AFTER_APPEND (a retriable error; the
test setting ``kbroker.test.fail.produce.after.append.every`` injects it every 2nd
partition append).  The client retries the same batch with the same producer id, epoch
and sequence; the broker must recognise it as a duplicate.  A non-idempotent producer
would store those batches twice, so reading every record exactly once is the check
(kafka-python's producer has the same test in test_durability.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from helpers import unique_topic
from process_clients import js, js_messages, kcat
from test_durability import create_topic
from txn_helpers import CLIENT_TIMEOUT_S, ck_common, ck_read

pytestmark = [pytest.mark.compat, pytest.mark.timeout(180)]

FAIL_EVERY = "2"
RECORDS = 90


def _aiokafka(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5, retry_backoff_ms=50
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, key=b"k%d" % (i % 12), value=v) for i, v in enumerate(values)]
            done = await asyncio.wait_for(asyncio.gather(*futures), CLIENT_TIMEOUT_S * 2)
            assert all(md.offset >= 0 for md in done), done
        finally:
            await producer.stop()

    asyncio.run(run())


def _confluent(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({**ck_common(bootstrap), "enable.idempotence": True, "linger.ms": 5, "retry.backoff.ms": 50})
    errors: list[Any] = []
    for i, v in enumerate(values):
        producer.produce(topic, key=b"k%d" % (i % 12), value=v, on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(CLIENT_TIMEOUT_S * 2) == 0
    assert not errors, errors[:3]


def _kafkajs(bootstrap: str, topic: str, values: list[bytes]) -> None:
    pairs: list[tuple[bytes | None, bytes | None]] = [(b"k%d" % (i % 12), v) for i, v in enumerate(values)]
    result = js("produce", {"bootstrap": bootstrap, "topic": topic, "idempotent": True, "chunk": 15, "messages": js_messages(pairs)})
    assert all(r["errorCode"] == 0 for r in result["results"]), result


def _kcat(bootstrap: str, topic: str, values: list[bytes]) -> None:
    lines = b"".join(b"k%d:%s\n" % (i % 12, v) for i, v in enumerate(values))
    proc = kcat(bootstrap, ["-P", "-t", topic, "-K", ":", "-X", "enable.idempotence=true", "-X", "acks=all",
                            "-X", "linger.ms=5", "-X", "retry.backoff.ms=50"], stdin=lines)  # fmt: skip
    assert b"Delivery failed" not in proc.stderr, proc.stderr.decode()[-2000:]


PRODUCERS = {"aiokafka": _aiokafka, "confluent-kafka": _confluent, "kafkajs": _kafkajs, "kcat": _kcat}


@pytest.mark.parametrize("client", list(PRODUCERS))
@pytest.mark.feature("idempotence", client="{client}")
def test_idempotent_retry_after_append_stores_each_record_once(broker_factory, client: str) -> None:  # type: ignore[no-untyped-def]
    broker = broker_factory(settings={"kbroker.test.fail.produce.after.append.every": FAIL_EVERY})
    topic = unique_topic(f"idem-{client}")
    create_topic(broker.bootstrap, topic)
    values = [f"{client}-{uuid.uuid4().hex[:6]}-{i:03d}".encode() for i in range(RECORDS)]
    PRODUCERS[client](broker.bootstrap, topic, values)

    got = Counter(r.value for r in ck_read(broker.bootstrap, topic, "read_uncommitted"))
    duplicated = {v: n for v, n in got.items() if n > 1}
    assert not duplicated, f"{len(duplicated)} records stored more than once, e.g. {sorted(duplicated)[:3]}"
    assert set(got) == set(values), f"{len(set(values) - set(got))} records missing"
