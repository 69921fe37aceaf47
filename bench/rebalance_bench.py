"""Rebalance time: N members joining a KIP-848 consumer group vs a classic group.

    python -m bench.rebalance_bench [--members 100] [--partitions 100] [--timeout-s 120]

Starts one kbroker (``python -m kbroker``, temp data dir, 127.0.0.1), creates a topic,
then for each protocol in turn starts ``--members`` confluent-kafka consumers in this
process (``group.protocol=consumer`` with the broker's ``uniform`` assignor; classic with
``cooperative-sticky``), subscribes them all at once and polls them round-robin until every
partition is assigned exactly once and every member owns at least one (or the timeout).
The figure is the wall time from the first ``subscribe`` to that point.  Bounded: each
run stops at ``--timeout-s``; consumers are closed and the broker stopped by pid.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from typing import Any

READY = re.compile(r"serving on 127\.0\.0\.1:(\d+)")
START_TIMEOUT_S = 20.0
BROKER_SETTINGS = {
    "offsets.topic.num.partitions": "1",
    "group.initial.rebalance.delay.ms": "0",
    "group.consumer.min.heartbeat.interval.ms": "100",
    "group.consumer.heartbeat.interval.ms": "500",
    "group.min.session.timeout.ms": "1000",
}


def start_broker(data_dir: str) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "kbroker", "--listen", "127.0.0.1:0", "--data-dir", data_dir]
    for key, value in BROKER_SETTINGS.items():
        argv += ["--set", f"{key}={value}"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = READY.search(line)
        if match:
            return proc, f"127.0.0.1:{match.group(1)}"
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("kbroker did not start")


def join_time(bootstrap: str, topic: str, protocol: str, members: int, partitions: int,
              timeout_s: float) -> tuple[float | None, int]:
    from confluent_kafka import Consumer

    group = f"bench-{protocol}-{time.time_ns()}"
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "log_level": 0,
    }
    if protocol == "consumer":
        conf.update({"group.protocol": "consumer", "group.remote.assignor": "uniform"})
    else:
        conf.update(
            {
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 500,
            }
        )
    consumers = [Consumer(conf) for _ in range(members)]
    try:
        started = time.monotonic()
        for c in consumers:
            c.subscribe([topic])
        rounds = 0
        while time.monotonic() - started < timeout_s:
            rounds += 1
            owned: list[int] = []
            every_member_has_one = True
            for c in consumers:
                c.poll(0)
                parts = [tp.partition for tp in c.assignment()]
                every_member_has_one = every_member_has_one and bool(parts)
                owned.extend(parts)
            if every_member_has_one and sorted(owned) == list(range(partitions)):
                return time.monotonic() - started, rounds
            time.sleep(0.01)
        return None, rounds
    finally:
        for c in consumers:
            c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args()
    if args.partitions < args.members:
        parser.error("--partitions must be at least --members (each member gets one)")
    from confluent_kafka.admin import AdminClient, NewTopic

    with tempfile.TemporaryDirectory(prefix="kbroker-rebalance-bench-") as data_dir:
        proc, bootstrap = start_broker(data_dir)
        try:
            topic = "rebalance-bench"
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(30)
            for protocol in ("consumer", "classic"):
                took, rounds = join_time(
                    bootstrap, topic, protocol, args.members, args.partitions, args.timeout_s
                )
                figure = f"{took:.2f} s" if took is not None else f"not settled in {args.timeout_s} s"
                print(
                    f"{protocol:8} protocol: {args.members} members over {args.partitions} "
                    f"partitions assigned in {figure} ({rounds} poll rounds)",
                    flush=True,
                )
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
