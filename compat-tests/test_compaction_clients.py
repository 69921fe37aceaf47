"""Compacted topics with kafkajs, kcat and the kbroker CLI writing and reading (kafka-python,
aiokafka and confluent-kafka: test_compaction.py, whose topic, broker settings and checks
these share).

The client writes keyed updates (kafkajs and kcat every 13th a tombstone; the CLI writes
no nulls: a line's value is never null) to a compacted topic with 16 KiB segments; once
the cleaner has run, a fresh read by the same client from the beginning returns the latest
value of every key, over the gaps the cleaner left in the offsets, and far fewer records
than were written.
"""

from __future__ import annotations

import uuid

import pytest
from compaction_helpers import (
    BROKER_SETTINGS,
    KEYS,
    UPDATES,
    check_latest,
    create_topic,
    updates,
    wait_until_cleaned,
)
from helpers import unique_topic
from process_clients import cli, cli_read_all, js, js_messages, js_records, kcat, kcat_read_all

pytestmark = [pytest.mark.compat, pytest.mark.timeout(300)]

Pairs = list[tuple[bytes, bytes | None]]
# Updates per kafkajs send() and per CLI run: one batch of them (about 30 bytes a record)
# must fit a 16 KiB segment, as in Kafka.
KAFKAJS_CHUNK = 200
CLI_CHUNK = 400
READ_TIMEOUT_MS = 60_000


def _kafkajs(bootstrap: str, topic: str, pairs: Pairs) -> list[tuple[int, bytes, bytes | None]]:
    result = js("produce", {"bootstrap": bootstrap, "topic": topic, "chunk": KAFKAJS_CHUNK, "messages": js_messages(list(pairs))})
    assert all(r["errorCode"] == 0 for r in result["results"]), result
    wait_until_cleaned(bootstrap, topic)
    read = js("consume-to-end", {"bootstrap": bootstrap, "topic": topic, "group": f"js-compacted-{uuid.uuid4().hex[:8]}", "timeoutMs": READ_TIMEOUT_MS})
    return [(o, k, v) for _, o, k, v in js_records(read) if k is not None]


def _kcat(bootstrap: str, topic: str, pairs: Pairs) -> list[tuple[int, bytes, bytes | None]]:
    # -K: key delimiter; -Z: an empty value is sent as NULL (a tombstone)
    lines = b"".join(k + b":" + (v or b"") + b"\n" for k, v in pairs)
    proc = kcat(bootstrap, ["-P", "-t", topic, "-K", ":", "-Z", "-X", "acks=all", "-X", "linger.ms=5", "-X", "batch.size=8192"], stdin=lines)
    assert b"Delivery failed" not in proc.stderr, proc.stderr.decode()[-2000:]
    wait_until_cleaned(bootstrap, topic)
    return [(o, k, v) for _, o, k, v in kcat_read_all(bootstrap, topic) if k is not None]


def _cli(bootstrap: str, topic: str, pairs: Pairs) -> list[tuple[int, bytes, bytes | None]]:
    for start in range(0, len(pairs), CLI_CHUNK):
        lines = b"".join(k + b"|" + (v or b"") + b"\n" for k, v in pairs[start : start + CLI_CHUNK])
        cli(bootstrap, "produce", topic, "--key-separator", "|", stdin=lines)
    wait_until_cleaned(bootstrap, topic)
    return [(o, k, v) for _, o, k, v in cli_read_all(bootstrap, topic) if k is not None]


ROUNDTRIPS = {"kafkajs": _kafkajs, "kcat": _kcat, "kbroker-cli": _cli}


@pytest.mark.parametrize("client", list(ROUNDTRIPS))
@pytest.mark.feature("compaction", client="{client}")
def test_fresh_read_returns_the_latest_value_per_key(broker_factory, client: str) -> None:  # type: ignore[no-untyped-def]
    broker = broker_factory(BROKER_SETTINGS)
    topic = unique_topic(f"compacted-{client}")
    create_topic(broker.bootstrap, topic)
    pairs, latest = updates(client)
    if client == "kbroker-cli":  # no tombstones: the CLI's values are never null
        pairs = [(k, v if v is not None else b"gone-%d" % i) for i, (k, v) in enumerate(pairs)]
        latest = dict(pairs)
    records = ROUNDTRIPS[client](broker.bootstrap, topic, pairs)
    assert len({k for _, k, _ in records}) <= KEYS < UPDATES
    check_latest(records, latest)
