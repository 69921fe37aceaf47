"""A full disk and failing I/O under real clients and a real broker process.

* ENOSPC on a real (small) filesystem: the broker's data dir lives on a tmpfs this test
  mounts; once it is full a kafka-python producer without retries gets
  KAFKA_STORAGE_ERROR (retriable), Fetch of stored data goes on, a confluent-kafka
  idempotent producer keeps retrying, and once space returns every acknowledged record
  is there exactly once -- also after a SIGKILL and the recovery that follows.
* EIO through the test-only fault layer (``KBROKER_TEST_FAULTS``): a failed write is
  refused for that topic only; a failed fsync with flush.messages=1 takes the partition
  offline (reads served) until a restart, and nothing acknowledged is lost.
"""

from __future__ import annotations

import errno
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_process import TARGET, BrokerProcess
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer
from kafka.errors import KafkaStorageError

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(240),
    pytest.mark.skipif(TARGET != "kbroker", reason="kbroker's own storage behaviour"),
]

DISK_SIZE = "8m"
FAULTS_ENV = "KBROKER_TEST_FAULTS"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)], check=True
    )
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def start_broker(tmp_path: Path) -> Iterator:
    started: list[BrokerProcess] = []

    def start(data_dir: Path, settings: dict[str, str] | None = None) -> BrokerProcess:
        broker = BrokerProcess(data_dir, tmp_path / "broker.log", settings or {})
        started.append(broker)
        broker.start()
        return broker

    yield start
    for broker in started:
        broker.cleanup()


def create_topic(bootstrap: str, topic: str, config: dict[str, str] | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1, config=config or {})])
    futures[topic].result(30)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(b"\0" * 65536)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    with open(filler, "ab", buffering=0) as f:  # the last few bytes too
        while True:
            try:
                f.write(b"\0" * 512)
            except OSError:
                return filler


def idempotent_producer(bootstrap: str) -> Producer:
    return Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 120_000,
            "linger.ms": 5,
        }
    )


def produce(producer: Producer, topic: str, values: list[str], wait_s: float) -> list[str]:
    """Produce ``values``; returns those acknowledged within ``wait_s`` (others stay queued)."""
    acked: list[str] = []

    def on_delivery(err: object, msg: object) -> None:
        if err is None:
            acked.append(msg.value().decode())  # type: ignore[attr-defined]

    for v in values:
        producer.produce(topic, value=v.encode(), on_delivery=on_delivery)
    producer.flush(wait_s)
    return acked


def read_all(bootstrap: str, topic: str) -> list[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"read-{uuid.uuid4().hex}",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise AssertionError(f"fetch failed: {msg.error()}")
            out.append(msg.value().decode())
    finally:
        consumer.close()
    raise AssertionError(f"did not reach the end of {topic}")


def storage_error_without_retries(
    bootstrap: str, topic: str, prefix: str, limit: int = 200
) -> tuple[list[str], BaseException]:
    """Send records one by one (no retries) until one fails; returns the values
    acknowledged before that (a full disk still has room in a file's last page) and
    the error."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", retries=0, enable_idempotence=False
    )
    acked: list[str] = []
    try:
        for i in range(limit):
            value = f"{prefix}-{i}"
            future = producer.send(topic, value=value.encode())
            producer.flush(30)
            assert future.is_done
            if future.failed():
                return acked, future.exception
            acked.append(value)
        raise AssertionError(f"{limit} produces succeeded on a full disk")
    finally:
        producer.close(5)


def exactly_once(records: list[str], acked: list[str]) -> None:
    counts = Counter(records)
    assert [v for v in acked if counts[v] != 1] == []
    assert [v for v, n in counts.items() if n > 1] == []


def test_enospc_on_a_small_filesystem(small_disk, start_broker) -> None:
    broker = start_broker(small_disk / "data")
    topic = "full-disk"
    create_topic(broker.bootstrap, topic)
    producer = idempotent_producer(broker.bootstrap)
    before = [f"before-{i}" for i in range(200)]
    acked = produce(producer, topic, before, 30)
    assert sorted(acked) == sorted(before)

    filler = fill(small_disk)
    slack, exc = storage_error_without_retries(broker.bootstrap, topic, "refused")
    assert isinstance(exc, KafkaStorageError) and exc.retriable
    before += slack
    acked += slack
    assert read_all(broker.bootstrap, topic) == before  # Fetch goes on while full
    during = [f"during-{i}" for i in range(300)]
    acked += produce(producer, topic, during, 3)  # retried by the client while full
    os.unlink(filler)  # space returns
    producer.flush(90)
    acked += [v for v in during if v not in acked] if len(producer) == 0 else []
    assert len(producer) == 0, "records still queued after space returned"

    records = read_all(broker.bootstrap, topic)
    assert f"refused-{len(slack)}" not in records  # nothing of a failed append is visible
    exactly_once(records, before + during)
    broker.kill()  # and nothing partial surfaces after recovery
    broker.start()
    records_after = read_all(broker.bootstrap, topic)
    assert records_after == records


def test_eio_on_write_refuses_that_topic_only(tmp_path, start_broker, monkeypatch) -> None:
    control = tmp_path / "faults"
    monkeypatch.setenv(FAULTS_ENV, str(control))
    broker = start_broker(tmp_path / "data")
    create_topic(broker.bootstrap, "eio")
    create_topic(broker.bootstrap, "healthy")
    producer = idempotent_producer(broker.bootstrap)
    first = [f"a-{i}" for i in range(50)]
    assert len(produce(producer, "eio", first, 30)) == 50

    control.write_text("write EIO eio-0\n")
    slack, exc = storage_error_without_retries(broker.bootstrap, "eio", "refused")
    assert slack == [] and isinstance(exc, KafkaStorageError)
    assert produce(producer, "healthy", ["fine"], 30) == ["fine"]  # other partitions go on
    assert read_all(broker.bootstrap, "eio") == first
    second = [f"b-{i}" for i in range(50)]
    produce(producer, "eio", second, 2)
    control.unlink()
    producer.flush(90)
    assert len(producer) == 0
    records = read_all(broker.bootstrap, "eio")
    assert "refused-0" not in records
    exactly_once(records, first + second)


def test_fsync_failure_takes_the_partition_offline_until_restart(
    tmp_path, start_broker, monkeypatch
) -> None:
    control = tmp_path / "faults"
    monkeypatch.setenv(FAULTS_ENV, str(control))
    broker = start_broker(tmp_path / "data")
    create_topic(broker.bootstrap, "synced", {"flush.messages": "1"})
    producer = idempotent_producer(broker.bootstrap)
    first = [f"a-{i}" for i in range(50)]
    assert len(produce(producer, "synced", first, 30)) == 50

    control.write_text("fsync EIO synced-0\n")
    slack, exc = storage_error_without_retries(broker.bootstrap, "synced", "refused")
    assert slack == [] and isinstance(exc, KafkaStorageError)
    control.unlink()
    slack, exc = storage_error_without_retries(broker.bootstrap, "synced", "still-refused")
    assert slack == [] and isinstance(exc, KafkaStorageError)  # offline until a restart
    assert read_all(broker.bootstrap, "synced") == first  # reads are served
    broker.stop()  # a clean stop: no clean-shutdown marker for an offline log
    broker.start()
    second = [f"b-{i}" for i in range(50)]
    assert sorted(produce(idempotent_producer(broker.bootstrap), "synced", second, 60)) == sorted(
        second
    )
    records = read_all(broker.bootstrap, "synced")
    assert records == first + second
