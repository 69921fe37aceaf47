"""kafka-python's KafkaAdminClient against a real broker process with two log directories
(issue 12): describe_log_dirs reports each directory, alter_replica_log_dirs moves a
partition under produce + consume load from real clients without losing, duplicating or
reordering a record, and a SIGKILL around a move then a restart keeps that promise.

(confluent-kafka and aiokafka have no log-directory admin calls; their admin clients list
neither describe_log_dirs nor alter_replica_log_dirs.)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import unique_topic
from kafka import (
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    TopicPartition,
    TopicPartitionReplica,
)
from kafka.admin import NewTopic
from kafka.errors import KafkaError, NoError

pytestmark = [pytest.mark.compat, pytest.mark.timeout(240)]

NODE_ID = 1
# Bounded load: records produced while the partition moves back and forth.
RECORDS = 6_000
MOVES = 6
MOVE_PAUSE_S = 0.1
# The producer waits for its acknowledgements every FLUSH_EVERY records, which paces the
# load over several round trips (so the moves land while it runs).
FLUSH_EVERY = 100
CONSUME_DEADLINE_S = 90


def two_dir_broker(broker_factory, tmp_path: Path):
    dirs = [str((tmp_path / "logs-a").absolute()), str((tmp_path / "logs-b").absolute())]
    return broker_factory({"log.dirs": ",".join(dirs)}), dirs


@contextlib.contextmanager
def admin_on(bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-kp-logdirs", request_timeout_ms=30_000)
    try:
        yield admin
    finally:
        admin.close()


def new_topic(admin: KafkaAdminClient, prefix: str, partitions: int) -> str:
    topic = unique_topic(prefix)
    admin.create_topics([NewTopic(topic, partitions, 1)])
    return topic


def other_dir(dirs: list[str], here: str) -> str:
    return dirs[1] if here == dirs[0] else dirs[0]


def placement(admin: KafkaAdminClient, topic: str) -> dict[int, str]:
    [answer] = admin.describe_log_dirs({topic: [0]})
    out = {}
    for d in answer["log_dirs"]:
        assert d["error_code"] == 0
        for t in d["topics"]:
            for p in t["partitions"]:
                assert not p["is_future_key"]
                out[p["partition_index"]] = d["log_dir"]
    return out


def produce_acked(bootstrap: str, topic: str, count: int, acked: list[int], stop: threading.Event) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2, max_block_ms=30_000
    )
    try:
        futures = []
        for i in range(count):
            if stop.is_set():
                break
            futures.append((i, producer.send(topic, value=b"%08d" % i, partition=0)))
            if i % FLUSH_EVERY == FLUSH_EVERY - 1:
                producer.flush(30)
        producer.flush(30)
        for i, f in futures:
            try:
                f.get(timeout=30)
                acked.append(i)
            except Exception:  # noqa: BLE001 - unacknowledged: may or may not be stored
                pass
    finally:
        producer.close(5)


def consume_all(bootstrap: str, topic: str, count: int) -> list[int]:
    """The values of partition 0 from the beginning, until ``count`` have come (or
    CONSUME_DEADLINE_S passed: a shortfall then fails the caller's comparison)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=1000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got: list[int] = []
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    try:
        while time.monotonic() < deadline and len(got) < count:
            for batch in consumer.poll(timeout_ms=500).values():
                got += [int(r.value) for r in batch]
    finally:
        consumer.close()
    return got


@pytest.mark.feature("admin", client="kafka-python")
def test_describe_log_dirs_lists_both_directories(broker_factory, tmp_path: Path) -> None:
    broker, dirs = two_dir_broker(broker_factory, tmp_path)
    with admin_on(broker.bootstrap) as admin:
        topic = new_topic(admin, "kp-ld2", 4)
        [answer] = admin.describe_log_dirs()
        assert answer["broker"] == NODE_ID
        assert sorted(d["log_dir"] for d in answer["log_dirs"]) == sorted(dirs)
        per_dir = {
            d["log_dir"]: sorted(p["partition_index"] for t in d["topics"] if t["name"] == topic for p in t["partitions"])
            for d in answer["log_dirs"]
        }
        assert sorted(len(v) for v in per_dir.values()) == [2, 2]  # least-loaded placement
        for d in answer["log_dirs"]:
            assert d["total_bytes"] >= d["usable_bytes"] > 0


@pytest.mark.feature("admin", client="kafka-python")
def test_move_under_load_loses_duplicates_and_reorders_nothing(broker_factory, tmp_path: Path) -> None:
    broker, dirs = two_dir_broker(broker_factory, tmp_path)
    with admin_on(broker.bootstrap) as admin:
        topic = new_topic(admin, "kp-ldmove", 1)
        acked: list[int] = []
        stop = threading.Event()
        producer = threading.Thread(target=produce_acked, args=(broker.bootstrap, topic, RECORDS, acked, stop))
        consumed: list[int] = []
        consumer = threading.Thread(target=lambda: consumed.extend(consume_all(broker.bootstrap, topic, RECORDS)))
        producer.start()
        consumer.start()
        moves_under_load = 0
        for _ in range(MOVES):
            time.sleep(MOVE_PAUSE_S)
            loaded = producer.is_alive()
            here = placement(admin, topic)[0]
            there = other_dir(dirs, here)
            result = admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, NODE_ID): there})
            assert list(result.values()) == [NoError]
            assert placement(admin, topic)[0] == there
            moves_under_load += loaded and producer.is_alive()
        producer.join(120)
        consumer.join(CONSUME_DEADLINE_S + 10)
        assert not producer.is_alive() and not consumer.is_alive()
        print(f"moves while the producer was running: {moves_under_load} of {MOVES}")
        assert moves_under_load >= 2, "the load ended before the moves: raise RECORDS"
        assert acked == list(range(RECORDS))  # every record acknowledged
        assert consumed == acked  # each exactly once, in order
        # And a fresh read after all the moves sees the same.
        assert consume_all(broker.bootstrap, topic, RECORDS) == acked


def move_ignoring_disconnect(admin: KafkaAdminClient, topic: str, there: str) -> None:
    with contextlib.suppress(KafkaError):  # the broker is killed under the request
        admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, NODE_ID): there})


@pytest.mark.feature("admin", client="kafka-python")
@pytest.mark.parametrize("delay_s", [0.0, 0.01, 0.05])
def test_sigkill_around_a_move_then_restart_keeps_every_acked_record(
    broker_factory, tmp_path: Path, delay_s: float
) -> None:
    broker, dirs = two_dir_broker(broker_factory, tmp_path)
    with admin_on(broker.bootstrap) as admin:
        topic = new_topic(admin, "kp-ldkill", 1)
        acked: list[int] = []
        produce_acked(broker.bootstrap, topic, RECORDS, acked, threading.Event())
        assert acked == list(range(RECORDS))
        here = placement(admin, topic)[0]
        there = other_dir(dirs, here)
        # Fire the move and kill the broker while it is answering it (the phase reached
        # varies with the delay; tests/log/test_log_dirs.py kills at each phase in turn).
        mover = threading.Thread(target=move_ignoring_disconnect, args=(admin, topic, there), daemon=True)
        mover.start()
        time.sleep(delay_s)
        broker.kill()
        mover.join(40)
    broker.start()
    with admin_on(broker.bootstrap) as admin:
        assert placement(admin, topic)[0] in dirs  # exactly one copy is live
        assert consume_all(broker.bootstrap, topic, RECORDS) == acked
        # The partition still takes appends and can still move.
        more: list[int] = []
        produce_acked(broker.bootstrap, topic, 10, more, threading.Event())
        assert more == list(range(10))
        now = placement(admin, topic)[0]
        other = other_dir(dirs, now)
        assert list(admin.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, NODE_ID): other}).values()) == [NoError]
        assert consume_all(broker.bootstrap, topic, RECORDS + 10) == [*acked, *more]
