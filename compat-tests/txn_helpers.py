"""Transaction test tools: broker settings, isolation-aware readers, offsets, and
transactional producer processes the tests can SIGKILL by pid.

Readers return ``Rec`` (partition, offset, key, value) and stop at the partition's end as
the client sees it for its isolation level: the last stable offset (LSO) for
read_committed, the high watermark for read_uncommitted.  ``check_exactly`` then compares
the values with what was committed (or written), each exactly once.

Run as a script this module is a child process (only the client libraries imported):

    python txn_helpers.py '<json config>'

with ``mode`` one of

* ``open``: a confluent-kafka transactional producer that writes ``values`` in one
  transaction, flushes them to the broker, reports ``{"ev": "open"}`` and then does
  nothing until killed (or until stdin closes): an abandoned transaction;
* ``ctp`` (confluent-kafka), ``ctp-kafka-python``, ``ctp-aiokafka``: a consume-transform-produce loop (read_committed input, one
  transaction per poll batch, ``send_offsets_to_transaction``), reporting each commit;
  with ``pause_after`` it stops inside the transaction after that many commits, with the
  batch's output flushed and its offsets sent, and reports ``{"ev": "paused"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

PARTITIONS = 3
# The transaction timeout the abandoned-transaction tests give their producers: long
# enough that the checks made while the transaction is open finish first on a loaded CI
# machine, short enough to keep the tests quick.
TXN_TIMEOUT_MS = 5_000
# Broker settings: the timeout sweep every 500 ms instead of 10 s; small internal topics;
# groups that need no initial delay and accept short sessions.
TXN_BROKER_SETTINGS = {
    "num.partitions": str(PARTITIONS),
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
    "transaction.state.log.num.partitions": "5",
    "offsets.topic.num.partitions": "5",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
}
READ_TIMEOUT_S = 20.0
CLIENT_TIMEOUT_S = 15.0
CHILD_MAX_RUNTIME_S = 180


@dataclass(frozen=True, slots=True)
class Rec:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def values(tag: str, phase: str, count: int) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs; 9 distinct keys, so every partition of 3 gets some."""
    return [(f"k{i % 9}".encode(), f"{tag}|{phase}|{i:04d}".encode()) for i in range(count)]


def check_exactly(got: list[Rec], want: Iterable[bytes], what: str) -> dict[int, list[Rec]]:
    """``got`` holds each wanted value exactly once and nothing else; offsets increase."""
    want_c = Counter(want)
    have_c = Counter(r.value for r in got)
    missing = want_c - have_c
    extra = have_c - want_c
    assert not missing and not extra, (
        f"{what}: {sum(missing.values())} missing (e.g. {sorted(missing)[:3]}), "
        f"{sum(extra.values())} unexpected or duplicated (e.g. {sorted(extra)[:3]})"
    )
    by_p: dict[int, list[Rec]] = defaultdict(list)
    for r in got:
        by_p[r.partition].append(r)
    for p, recs in by_p.items():
        offs = [r.offset for r in recs]
        assert offs == sorted(set(offs)), f"{what}: partition {p} offsets not increasing: {offs}"
    return dict(by_p)


# -- confluent-kafka (librdkafka) ------------------------------------------------------------


def ck_common(bootstrap: str) -> dict[str, Any]:
    import logging

    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10_000,
        "broker.address.family": "v4",
        "logger": logging.getLogger("librdkafka"),
    }


def ck_txn_producer(bootstrap: str, txn_id: str, timeout_ms: int = 60_000) -> Any:
    from confluent_kafka import Producer

    p = Producer(
        {
            **ck_common(bootstrap),
            "transactional.id": txn_id,
            "transaction.timeout.ms": timeout_ms,
            # librdkafka requires socket.timeout.ms <= transaction.timeout.ms + 100
            "socket.timeout.ms": min(10_000, timeout_ms),
            "linger.ms": 5,
            "message.timeout.ms": min(timeout_ms, 30_000),
        }
    )
    p.init_transactions(CLIENT_TIMEOUT_S)
    return p


def ck_send(producer: Any, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    """Produce and wait until every record is acknowledged (so an abort cannot purge it)."""
    errors: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(f"{msg.value()!r}: {err}")

    for k, v in pairs:
        producer.produce(topic, key=k, value=v, on_delivery=on_delivery)
    left = producer.flush(CLIENT_TIMEOUT_S)
    assert left == 0, f"{left} records not delivered within {CLIENT_TIMEOUT_S} s"
    assert not errors, f"delivery failed: {errors[:3]}"


def ck_commit(bootstrap: str, txn_id: str, topic: str, pairs: list[tuple[bytes, bytes]]) -> None:
    """One committed transaction from a fresh producer with ``txn_id``."""
    p = ck_txn_producer(bootstrap, txn_id)
    p.begin_transaction()
    ck_send(p, topic, pairs)
    p.commit_transaction(CLIENT_TIMEOUT_S)


def ck_read(
    bootstrap: str,
    topic: str,
    isolation: str,
    partitions: int = PARTITIONS,
    timeout: float = READ_TIMEOUT_S,
) -> list[Rec]:
    """Everything up to the partition end librdkafka reports (LSO or high watermark)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer(
        {
            **ck_common(bootstrap),
            "group.id": f"txn-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
        }
    )
    out: list[Rec] = []
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        at_end: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(at_end) < partitions:
            assert time.monotonic() < deadline, (
                f"{isolation} reader of {topic}: only partitions {sorted(at_end)} reached "
                f"their end within {timeout} s ({len(out)} records)"
            )
            for m in c.consume(num_messages=500, timeout=0.5):
                err = m.error()
                if err is not None:
                    assert err.code() == KafkaError._PARTITION_EOF, f"consume error: {err}"
                    at_end.add(m.partition())
                    continue
                out.append(Rec(m.partition(), m.offset(), m.key(), m.value()))
    finally:
        c.close()
    return out


def list_offsets(
    bootstrap: str, topic: str, isolation: str, partitions: int = PARTITIONS
) -> list[int]:
    """ListOffsets latest per partition: the LSO for read_committed, else the high watermark."""
    from confluent_kafka import IsolationLevel, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec

    level = {
        "read_committed": IsolationLevel.READ_COMMITTED,
        "read_uncommitted": IsolationLevel.READ_UNCOMMITTED,
    }[isolation]
    admin = AdminClient(ck_common(bootstrap))
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    res = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in tps},
        isolation_level=level,
        request_timeout=CLIENT_TIMEOUT_S,
    )
    return [res[tp].result(CLIENT_TIMEOUT_S).offset for tp in tps]


def lso_and_hwm(bootstrap: str, topic: str) -> tuple[list[int], list[int]]:
    return list_offsets(bootstrap, topic, "read_committed"), list_offsets(
        bootstrap, topic, "read_uncommitted"
    )


def group_offsets(
    bootstrap: str, group: str, topic: str, partitions: int = PARTITIONS
) -> list[int]:
    """The group's committed offset per partition (-1001 when none)."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(ck_common(bootstrap))
    req = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(partitions)])
    res = admin.list_consumer_group_offsets([req], request_timeout=CLIENT_TIMEOUT_S)
    got = res[group].result(CLIENT_TIMEOUT_S)
    by_p = {tp.partition: tp.offset for tp in got.topic_partitions}
    return [by_p.get(p, -1001) for p in range(partitions)]


# -- child processes --------------------------------------------------------------------------


class Child:
    """A ``python txn_helpers.py`` process; its JSON-line reports are collected by a thread."""

    def __init__(self, cfg: dict[str, Any], log_dir: Path, name: str) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.stderr_path = log_dir / f"{name}.stderr"
        self._stderr = self.stderr_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "txn_helpers.py"), json.dumps(cfg)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._pump, name=f"txn-{name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with self._lock:
                    self.events.append(json.loads(line))

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def count(self, ev: str) -> int:
        return sum(1 for e in self.snapshot() if e["ev"] == ev)

    def crashed(self) -> str | None:
        for e in self.snapshot():
            if e["ev"] == "crashed":
                return str(e["error"])
        if self.proc.poll() is not None and self.proc.returncode not in (0, -signal.SIGKILL):
            return f"exited with {self.proc.returncode}: {self.stderr_tail()}"
        return None

    def wait_for(self, ev: str, n: int = 1, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(ev) < n:
            problem = self.crashed()
            assert problem is None, f"{self.name} failed before {ev!r} x{n}: {problem}"
            assert self.proc.poll() is None, f"{self.name} exited before {ev!r} x{n}"
            assert time.monotonic() < deadline, (
                f"{self.name}: no {ev!r} x{n} within {timeout} s; events "
                f"{self.snapshot()[-5:]}\n{self.stderr_tail()}"
            )
            time.sleep(0.05)

    def stderr_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def kill(self) -> None:
        """SIGKILL by pid: nothing is flushed, committed or aborted."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._reader.join(5)

    def stop(self, timeout: float = 30.0) -> int:
        """Close stdin: the child finishes cleanly and exits."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.close()
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def cleanup(self) -> None:
        self.kill()
        self._stderr.close()


def wait_lso_at_end(bootstrap: str, topic: str, timeout: float, what: str) -> list[int]:
    """Poll ListOffsets until the LSO equals the high watermark on every partition."""
    last: list[tuple[list[int], list[int]]] = []

    def ok() -> bool:
        lso, hwm = lso_and_hwm(bootstrap, topic)
        last[:] = [(lso, hwm)]
        return lso == hwm

    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, (
            f"{what}: LSO {last[0][0]} never reached the high watermark {last[0][1]} "
            f"within {timeout} s"
        )
        time.sleep(0.2)
    return last[0][1]


# -- child process mains -------------------------------------------------------------------


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _stdin_closed() -> threading.Event:
    done = threading.Event()

    def watch() -> None:
        for _ in sys.stdin:
            pass
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


def _main_open(cfg: dict[str, Any], done: threading.Event) -> None:
    p = ck_txn_producer(cfg["bootstrap"], cfg["txn_id"], cfg["timeout_ms"])
    p.begin_transaction()
    ck_send(p, cfg["topic"], [(k.encode(), v.encode()) for k, v in cfg["pairs"]])
    _emit(ev="open")
    done.wait(CHILD_MAX_RUNTIME_S)


def _main_ctp(cfg: dict[str, Any], done: threading.Event) -> None:
    from confluent_kafka import Consumer

    bootstrap = cfg["bootstrap"]
    producer = ck_txn_producer(bootstrap, cfg["txn_id"])
    _emit(ev="initialised")
    consumer = Consumer(
        {
            **ck_common(bootstrap),
            "group.id": cfg["group"],
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 3_000,
            "heartbeat.interval.ms": 500,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.subscribe([cfg["input"]])
    commits = 0
    try:
        while not done.is_set():
            batch = [m for m in consumer.consume(num_messages=cfg["batch"], timeout=0.3)]
            for m in batch:
                assert m.error() is None, f"consume error: {m.error()}"
            if not batch:
                continue
            producer.begin_transaction()
            ck_send(producer, cfg["output"], [(m.key(), b"T(" + m.value() + b")") for m in batch])
            producer.send_offsets_to_transaction(
                consumer.position(consumer.assignment()),
                consumer.consumer_group_metadata(),
                CLIENT_TIMEOUT_S,
            )
            if cfg.get("pause_after") is not None and commits == cfg["pause_after"]:
                _emit(ev="paused", n=len(batch))
                done.wait(CHILD_MAX_RUNTIME_S)
                return
            producer.commit_transaction(CLIENT_TIMEOUT_S)
            commits += 1
            _emit(ev="committed", n=len(batch))
    finally:
        if cfg.get("pause_after") is None:
            consumer.close()


def _main_ctp_kafka_python(cfg: dict[str, Any], done: threading.Event) -> None:
    from group_member import KAFKA_PYTHON_POLL_MS, know_partitions_before_joining
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import OffsetAndMetadata

    producer = KafkaProducer(
        bootstrap_servers=cfg["bootstrap"],
        transactional_id=cfg["txn_id"],
        request_timeout_ms=10_000,
    )
    producer.init_transactions()
    _emit(ev="initialised")
    consumer = KafkaConsumer(
        cfg["input"],
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=3_000,
        heartbeat_interval_ms=500,
        fetch_max_wait_ms=100,
        request_timeout_ms=10_000,
    )
    # the group member stall's trigger, avoided as the group tests do (FINDINGS.md)
    know_partitions_before_joining(consumer, cfg["input"])
    commits = 0
    while not done.is_set():
        polled = consumer.poll(timeout_ms=KAFKA_PYTHON_POLL_MS, max_records=cfg["batch"])
        batch = [r for recs in polled.values() for r in recs]
        if not batch:
            continue
        producer.begin_transaction()
        futures = [
            producer.send(cfg["output"], key=r.key, value=b"T(" + r.value + b")") for r in batch
        ]
        producer.flush(CLIENT_TIMEOUT_S)
        for f in futures:
            f.get(CLIENT_TIMEOUT_S)
        offsets = {
            tp: OffsetAndMetadata(consumer.position(tp), "", -1) for tp in consumer.assignment()
        }
        producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
        if cfg.get("pause_after") is not None and commits == cfg["pause_after"]:
            _emit(ev="paused", n=len(batch))
            done.wait(CHILD_MAX_RUNTIME_S)
            return
        producer.commit_transaction()
        commits += 1
        _emit(ev="committed", n=len(batch))
    consumer.close()
    producer.close(timeout=5)


def _main_ctp_aiokafka(cfg: dict[str, Any], done: threading.Event) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg["bootstrap"],
            transactional_id=cfg["txn_id"],
            enable_idempotence=True,
            request_timeout_ms=10_000,
        )
        await producer.start()
        _emit(ev="initialised")
        consumer = AIOKafkaConsumer(
            cfg["input"],
            bootstrap_servers=cfg["bootstrap"],
            group_id=cfg["group"],
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=3_000,
            heartbeat_interval_ms=500,
            fetch_max_wait_ms=100,
            request_timeout_ms=10_000,
        )
        await consumer.start()
        commits = 0
        while not done.is_set():
            polled = await consumer.getmany(timeout_ms=300, max_records=cfg["batch"])
            batch = [r for recs in polled.values() for r in recs]
            if not batch:
                continue
            await producer.begin_transaction()
            futures = [
                await producer.send(cfg["output"], key=r.key, value=b"T(" + r.value + b")")
                for r in batch
            ]
            await asyncio.gather(*futures)
            offsets = {tp: await consumer.position(tp) for tp in consumer.assignment()}
            await producer.send_offsets_to_transaction(offsets, cfg["group"])
            if cfg.get("pause_after") is not None and commits == cfg["pause_after"]:
                _emit(ev="paused", n=len(batch))
                await asyncio.get_running_loop().run_in_executor(
                    None, done.wait, CHILD_MAX_RUNTIME_S
                )
                return
            await producer.commit_transaction()
            commits += 1
            _emit(ev="committed", n=len(batch))
        await consumer.stop()
        await producer.stop()

    asyncio.run(run())


MAINS: dict[str, Callable[[dict[str, Any], threading.Event], None]] = {
    "open": _main_open,
    "ctp": _main_ctp,
    "ctp-kafka-python": _main_ctp_kafka_python,
    "ctp-aiokafka": _main_ctp_aiokafka,
}


def main() -> None:
    cfg = json.loads(sys.argv[1])
    done = _stdin_closed()
    # Never outlive the test by much, even if it forgets us.
    threading.Timer(CHILD_MAX_RUNTIME_S, lambda: os._exit(3)).start()
    try:
        MAINS[cfg["mode"]](cfg, done)
    except BaseException as e:  # report and exit non-zero
        _emit(ev="crashed", error=f"{type(e).__name__}: {e}")
        sys.stdout.flush()
        os._exit(2)
    os._exit(0)


if __name__ == "__main__":
    main()
