"""The compacted-topic workload the compaction compat tests share (test_compaction.py and
test_compaction_clients.py): broker and topic settings, the keyed updates, a confluent-kafka
read of the whole partition, and the checks that a read is the latest value per key.

A module of its own, not imported from a test module: tests/broker has a test_compaction.py
too, and a test module's bare name is ambiguous once both directories are on sys.path.
"""

from __future__ import annotations

import time
import uuid

from txn_helpers import TXN_BROKER_SETTINGS, ck_common

UPDATES = 10_000
KEYS = 100
TOMBSTONE_EVERY = 13
# How long the cleaner may take to compact a topic (it runs every backoff; bounded).
CLEAN_TIMEOUT_S = 120.0
READ_TIMEOUT_S = 60.0
# With 100 live keys and small segments, a cleaned log keeps only the active segment's
# records plus about one per key; a log with this many or more was not cleaned.
CLEANED_BOUND = UPDATES // 4

BROKER_SETTINGS = {
    **TXN_BROKER_SETTINGS,
    "num.partitions": "1",
    "log.cleaner.backoff.ms": "200",
}
TOPIC_CONFIGS = {
    "cleanup.policy": "compact",
    "internal.segment.bytes": "16384",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "0",
}


def updates(tag: str) -> tuple[list[tuple[bytes, bytes | None]], dict[bytes, bytes | None]]:
    pairs: list[tuple[bytes, bytes | None]] = []
    latest: dict[bytes, bytes | None] = {}
    for i in range(UPDATES):
        key = b"key-%03d" % (i % KEYS)
        value = None if i % TOMBSTONE_EVERY == TOMBSTONE_EVERY - 1 else f"{tag}-{i}".encode()
        pairs.append((key, value))
        latest[key] = value
    return pairs, latest


def create_topic(bootstrap: str, topic: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient(ck_common(bootstrap))
    [f] = admin.create_topics([NewTopic(topic, 1, 1, config=TOPIC_CONFIGS)], operation_timeout=15).values()
    f.result(30)


def ck_read_all(bootstrap: str, topic: str, isolation: str = "read_uncommitted") -> list[tuple[int, bytes, bytes | None]]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer(
        {
            **ck_common(bootstrap),
            "group.id": f"compaction-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
        }
    )
    out: list[tuple[int, bytes, bytes | None]] = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + READ_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, f"{topic}: no end of partition within {READ_TIMEOUT_S} s"
            msgs = c.consume(num_messages=1000, timeout=0.5)
            eof = False
            for m in msgs:
                err = m.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, f"consume error: {err}"
                    eof = True
                    continue
                out.append((m.offset(), m.key(), m.value()))
            if eof:
                return out
    finally:
        c.close()


def wait_until_cleaned(bootstrap: str, topic: str) -> None:
    deadline = time.monotonic() + CLEAN_TIMEOUT_S
    count = UPDATES
    while time.monotonic() < deadline:
        count = len(ck_read_all(bootstrap, topic))
        if count < CLEANED_BOUND:
            return
        time.sleep(1.0)
    raise AssertionError(f"{topic} still holds {count} records after {CLEAN_TIMEOUT_S} s")


def check_latest(records: list[tuple[int, bytes, bytes | None]], latest: dict[bytes, bytes | None]) -> None:
    offsets = [o for o, _, _ in records]
    assert offsets == sorted(set(offsets)), "offsets must increase"
    assert len(records) < CLEANED_BOUND, f"{len(records)} records: not compacted"
    seen: dict[bytes, bytes | None] = {}
    for _, key, value in records:
        seen[key] = value
    for key, value in latest.items():
        if value is None:
            assert seen.get(key) is None, f"{key!r}: deleted, yet read {seen[key]!r}"
        else:
            assert seen.get(key) == value, f"{key!r}: want {value!r}, read {seen.get(key)!r}"

