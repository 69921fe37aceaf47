"""One consumer-group member in its own process, driven by the group compat tests.

    python group_member.py '<json config>'

The config names the client (``kafka-python``, ``aiokafka`` or ``confluent``), the
bootstrap address, topic, group and the group settings.  The member subscribes, and
after every poll that returned records commits synchronously.  It reports what happens
as JSON lines on stdout (flushed at once, so a SIGKILL loses nothing already said):

    {"ev": "started"}
    {"ev": "assigned", "tps": [0, 3], "now": [0, 3]}   # callback partitions, then the full set
    {"ev": "revoked",  "tps": [3],    "now": [0]}
    {"ev": "lost",     "tps": [...],  "now": []}
    {"ev": "records",  "recs": [[partition, offset, value], ...]}
    {"ev": "committed"} / {"ev": "commit_failed", "error": "..."}
    {"ev": "closed"}

A line ``leave`` on stdin makes it close cleanly (LeaveGroup unless static) and exit 0;
the test ends it abruptly with SIGKILL by pid.  Only the client libraries are imported.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any


def emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def watch_stdin(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "leave":
            break
    stop.set()  # "leave", or stdin closed: the test is gone


class Owned:
    """The member's current assignment, as the rebalance callbacks describe it."""

    def __init__(self) -> None:
        self.now: set[int] = set()

    def assigned(self, parts: list[int], incremental: bool) -> None:
        self.now = self.now | set(parts) if incremental else set(parts)
        emit(ev="assigned", tps=sorted(parts), now=sorted(self.now))

    def revoked(self, parts: list[int], kind: str = "revoked") -> None:
        self.now -= set(parts)
        emit(ev=kind, tps=sorted(parts), now=sorted(self.now))


# How long a kafka-python member may take to learn its topic's partitions before joining.
METADATA_WAIT_S = 30.0
# kafka-python 3.0.12 drives a join from inside poll() and stops waiting for it when poll's
# timer ends; a join whose answer lands before the next poll looks at it is thrown away
# and the member rejoins (one extra rebalance), see FINDINGS.md.  A poll longer than a
# join (about a second here; a session timeout, 3 s, when the broker waits for a dead
# member) rarely ends in the middle of one.  poll returns as soon as records come, so the
# only cost is that an idle member notices "leave" up to this late.
KAFKA_PYTHON_POLL_MS = 5_000


def know_partitions_before_joining(consumer: Any, topic: str) -> None:
    """Block until a kafka-python 3.0.12 consumer's metadata has ``topic``'s partitions.

    Call after ``subscribe`` and before the first ``poll``.  kafka-python 3.0.12 races its
    first JoinGroup against its first metadata fetch (its coordinator handles that race,
    KAFKA-3949, for pattern subscriptions only).  A leader that assigns before the
    metadata has arrived hands out nothing, then rejoins when the metadata changes; if a
    ``poll(timeout_ms)`` then expires while that rejoin's SyncGroup is in flight, the
    answer is never applied and the member goes silent for good (compat-tests/FINDINGS.md,
    "Group members that go silent").  Knowing the partitions first means the first
    assignment is the right one and no metadata-triggered rejoin happens.
    """
    deadline = time.monotonic() + METADATA_WAIT_S
    while not consumer.partitions_for_topic(topic):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partitions for {topic} after {METADATA_WAIT_S} s")
        time.sleep(0.1)


def run_kafka_python(cfg: dict[str, Any], stop: threading.Event) -> None:
    from kafka import ConsumerRebalanceListener, KafkaConsumer
    from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignors = {
        "range": RangePartitionAssignor,
        "roundrobin": RoundRobinPartitionAssignor,
        "cooperative-sticky": CooperativeStickyAssignor,
    }
    owned = Owned()
    cooperative = cfg["assignor"] == "cooperative-sticky"

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
            owned.revoked([tp.partition for tp in revoked])

        def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
            owned.assigned([tp.partition for tp in assigned], incremental=cooperative)

        def on_partitions_lost(self, lost):  # type: ignore[no-untyped-def]
            owned.revoked([tp.partition for tp in lost], kind="lost")

    consumer = KafkaConsumer(
        bootstrap_servers=cfg["bootstrap"],
        group_id=cfg["group"],
        group_instance_id=cfg.get("instance_id"),
        client_id=cfg["name"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=cfg["session_ms"],
        heartbeat_interval_ms=cfg["heartbeat_ms"],
        max_poll_interval_ms=cfg["max_poll_ms"],
        partition_assignment_strategy=[assignors[cfg["assignor"]]],
        fetch_max_wait_ms=100,
        request_timeout_ms=30_000,
    )
    consumer.subscribe([cfg["topic"]], listener=Listener())
    if not cfg.get("join_before_metadata"):
        know_partitions_before_joining(consumer, cfg["topic"])
    emit(ev="started")
    try:
        while not stop.is_set():
            batches = consumer.poll(timeout_ms=cfg.get("poll_ms", KAFKA_PYTHON_POLL_MS))
            recs = [
                [r.partition, r.offset, r.value.decode()] for rs in batches.values() for r in rs
            ]
            if recs:
                emit(ev="records", recs=recs)
                try:
                    consumer.commit()
                    emit(ev="committed")
                except Exception as e:  # a rebalance in between: the records come again
                    emit(ev="commit_failed", error=repr(e))
    finally:
        consumer.close()
        emit(ev="closed")


def run_aiokafka(cfg: dict[str, Any], stop: threading.Event) -> None:
    import asyncio

    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.coordinator.assignors.range import RangePartitionAssignor
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor}
    owned = Owned()

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):  # type: ignore[no-untyped-def]
            owned.revoked([tp.partition for tp in revoked])

        def on_partitions_assigned(self, assigned):  # type: ignore[no-untyped-def]
            owned.assigned([tp.partition for tp in assigned], incremental=False)

    async def main() -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg["bootstrap"],
            group_id=cfg["group"],
            group_instance_id=cfg.get("instance_id"),
            client_id=cfg["name"],
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=cfg["session_ms"],
            heartbeat_interval_ms=cfg["heartbeat_ms"],
            max_poll_interval_ms=cfg["max_poll_ms"],
            rebalance_timeout_ms=cfg["max_poll_ms"],
            partition_assignment_strategy=(assignors[cfg["assignor"]],),
            fetch_max_wait_ms=100,
            request_timeout_ms=30_000,
        )
        consumer.subscribe([cfg["topic"]], listener=Listener())
        await consumer.start()
        emit(ev="started")
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=200)
                recs = [
                    [r.partition, r.offset, r.value.decode()] for rs in batches.values() for r in rs
                ]
                if recs:
                    emit(ev="records", recs=recs)
                    try:
                        await consumer.commit()
                        emit(ev="committed")
                    except Exception as e:
                        emit(ev="commit_failed", error=repr(e))
        finally:
            await consumer.stop()
            emit(ev="closed")

    asyncio.run(main())


def run_confluent(cfg: dict[str, Any], stop: threading.Event) -> None:
    import logging

    from confluent_kafka import Consumer, KafkaException

    owned = Owned()
    # group_protocol "consumer" (KIP-848): the broker assigns (remote_assignor, optional)
    # and owns the session/heartbeat timing, so the classic settings are not allowed.
    kip848 = cfg.get("group_protocol") == "consumer"
    cooperative = kip848 or cfg["assignor"] == "cooperative-sticky"
    conf: dict[str, Any] = {
        "bootstrap.servers": cfg["bootstrap"],
        "group.id": cfg["group"],
        "client.id": cfg["name"],
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "max.poll.interval.ms": cfg["max_poll_ms"],
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 1000,
        "logger": logging.getLogger("librdkafka"),
    }
    if kip848:
        conf["group.protocol"] = "consumer"
        if cfg.get("remote_assignor"):
            conf["group.remote.assignor"] = cfg["remote_assignor"]
    else:
        conf["session.timeout.ms"] = cfg["session_ms"]
        conf["heartbeat.interval.ms"] = cfg["heartbeat_ms"]
        conf["partition.assignment.strategy"] = cfg["assignor"]
    if cfg.get("instance_id"):
        conf["group.instance.id"] = cfg["instance_id"]
    consumer = Consumer(conf)

    def on_assign(c, parts):  # type: ignore[no-untyped-def]
        owned.assigned([tp.partition for tp in parts], incremental=cooperative)

    def on_revoke(c, parts):  # type: ignore[no-untyped-def]
        owned.revoked([tp.partition for tp in parts])

    def on_lost(c, parts):  # type: ignore[no-untyped-def]
        owned.revoked([tp.partition for tp in parts], kind="lost")

    consumer.subscribe([cfg["topic"]], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    emit(ev="started")
    try:
        while not stop.is_set():
            msgs = consumer.consume(num_messages=100, timeout=0.2)
            recs = []
            for m in msgs:
                if m.error():
                    emit(ev="error", error=str(m.error()))
                    continue
                recs.append([m.partition(), m.offset(), m.value().decode()])
            if recs:
                emit(ev="records", recs=recs)
                try:
                    consumer.commit(asynchronous=False)
                    emit(ev="committed")
                except KafkaException as e:
                    emit(ev="commit_failed", error=str(e))
    finally:
        consumer.close()
        emit(ev="closed")


RUNNERS = {"kafka-python": run_kafka_python, "aiokafka": run_aiokafka, "confluent": run_confluent}


def main() -> None:
    import logging

    cfg = json.loads(sys.argv[1])
    # Client logs go to stderr (kept in a file per member by the tests).
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, cfg.get("log_level", "INFO")),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name, level in cfg.get("logger_levels", {}).items():  # e.g. one client logger at DEBUG
        logging.getLogger(name).setLevel(getattr(logging, level))
    stop = threading.Event()
    threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    if cfg.get("max_runtime_s"):  # never outlive a test that forgot us
        timer = threading.Timer(cfg["max_runtime_s"], stop.set)
        timer.daemon = True
        timer.start()
    started = time.monotonic()
    try:
        RUNNERS[cfg["client"]](cfg, stop)
    except Exception as e:
        emit(ev="crashed", error=repr(e), after_s=round(time.monotonic() - started, 1))
        raise


if __name__ == "__main__":
    main()
