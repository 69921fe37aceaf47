"""Benchmark: produce and consume MB/s over a TLS listener as a ratio to PLAINTEXT, one run.

Run ``python bench/tls_bench.py`` from the repo root.  It starts one kbroker process per
event loop (``--loops``, default uvloop and asyncio's own, chosen with ``KBROKER_EVENT_LOOP``),
each with a PLAINTEXT and an SSL listener (throw-away certificates,
``kbroker.security.devcerts``).  Each of ``--runs`` rounds visits every broker and, in an
order that alternates between rounds, both listeners: confluent-kafka produces
``--messages`` records of ``--size`` bytes to a new topic (acks=1, no compression, batches
up to 1 MiB) and consumes them back.  Each phase is bounded by ``--timeout`` seconds.

Printed per loop, medians over the rounds: MB/s per listener and TLS / PLAINTEXT for produce
and consume (goal >= 0.7), and the broker's CPU seconds per phase (``/proc/<pid>/stat``,
Linux) with their ratio PLAINTEXT / TLS: the throughput ratio the broker alone would allow
when it is the bottleneck, which a shared machine's load disturbs far less than MB/s.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"listeners PLAINTEXT=(\S+) \(PLAINTEXT\) SSL=(\S+) \(SSL\)")


def start_broker(
    tmp: Path, loop: str = "auto"
) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    from kbroker.security.devcerts import make_pki

    tmp.mkdir(parents=True, exist_ok=True)
    pki = make_pki(tmp / "pki", clients=())
    cmd = [
        sys.executable,
        "-m",
        "kbroker",
        "--data-dir",
        str(tmp / "data"),
        "--set",
        "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "--set",
        "ssl.keystore.type=PEM",
        "--set",
        f"ssl.keystore.location={pki.server_keystore}",
        "--set",
        "num.partitions=1",
    ]
    env = {**os.environ, "KBROKER_EVENT_LOOP": loop}
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        m = READY.search(line)
        if m:
            return proc, {"PLAINTEXT": m.group(1), "SSL": m.group(2)}, pki.ca_cert
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("kbroker did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (0.0 where /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(
    bootstrap: str,
    protocol: str,
    ca: Path,
    messages: int,
    size: int,
    timeout_s: float,
    pid: int = 0,
) -> tuple[float, float, float, float]:
    """Produce then consume; MB/s of each and the broker's CPU seconds in each."""
    from confluent_kafka import Consumer, Producer

    conf = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if protocol == "SSL":
        conf["ssl.ca.location"] = str(ca)
    topic = f"bench-{protocol.lower()}-{int(time.time() * 1000)}"
    payload = b"x" * size
    producer = Producer(
        {
            **conf,
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "acks": 1,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    producer.produce(topic, b"warm-up")
    producer.flush(timeout_s)
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for _ in range(messages):
        while True:
            try:
                producer.produce(topic, payload)
                break
            except BufferError:
                producer.poll(0.01)
    left = producer.flush(timeout_s)
    produce_s = time.perf_counter() - started
    produce_cpu_s = cpu_seconds(pid) - cpu_before
    if left:
        raise SystemExit(f"{protocol}: {left} records not delivered within {timeout_s} s")
    consumer = Consumer(
        {**conf, "group.id": topic, "auto.offset.reset": "earliest", "fetch.max.bytes": 50_000_000}
    )
    consumer.subscribe([topic])
    got, started, deadline = 0, 0.0, time.monotonic() + timeout_s
    while got < messages + 1 and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 1.0):
            if msg.error() is None:
                if not started:
                    started = time.perf_counter()
                    cpu_before = cpu_seconds(pid)
                got += 1
    consume_s = time.perf_counter() - started
    consume_cpu_s = cpu_seconds(pid) - cpu_before
    consumer.close()
    if got < messages + 1:
        raise SystemExit(f"{protocol}: consumed {got} of {messages + 1} within {timeout_s} s")
    mb = messages * size / 1e6
    return mb / produce_s, mb / consume_s, produce_cpu_s, consume_cpu_s


PROTOCOLS = ("PLAINTEXT", "SSL")
# Figures of one run: produce MB/s, consume MB/s, produce broker CPU s, consume broker CPU s.
FIGURES = ("produce MB/s", "consume MB/s", "produce cpu s", "consume cpu s")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--loops",
        default="uvloop,asyncio",
        help="event loops to compare (KBROKER_EVENT_LOOP values)",
    )
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    loops = [loop.strip() for loop in args.loops.split(",") if loop.strip()]
    results: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="kbroker-tls-bench-") as tmp:
        brokers = {}
        try:
            for loop in loops:
                brokers[loop] = start_broker(Path(tmp) / loop, loop)
            for round_no in range(args.runs):
                for loop, (proc, addresses, ca) in brokers.items():
                    order = PROTOCOLS if round_no % 2 == 0 else PROTOCOLS[::-1]
                    for protocol in order:
                        figures = run(
                            addresses[protocol],
                            protocol,
                            ca,
                            args.messages,
                            args.size,
                            args.timeout,
                            proc.pid,
                        )
                        results.setdefault((loop, protocol), []).append(figures)
                        print(
                            f"round {round_no + 1} {loop:8s} {protocol:9s} "
                            + "  ".join(
                                f"{name} {value:7.2f}"
                                for name, value in zip(FIGURES, figures, strict=True)
                            ),
                            flush=True,
                        )
        finally:
            for proc, _, _ in brokers.values():
                proc.terminate()
                proc.wait(30)
    print(f"\nmedians of {args.runs} rounds, {args.messages} x {args.size} B")
    for loop in loops:
        med = {
            p: [statistics.median(column) for column in zip(*results[(loop, p)], strict=True)]
            for p in PROTOCOLS
        }
        for protocol in PROTOCOLS:
            print(
                f"{loop:8s} {protocol:9s} "
                + "  ".join(f"{n} {v:7.2f}" for n, v in zip(FIGURES, med[protocol], strict=True))
            )
        (p_prod, p_cons, p_pcpu, p_ccpu), (s_prod, s_cons, s_pcpu, s_ccpu) = (
            med["PLAINTEXT"],
            med["SSL"],
        )
        cpu_ratio = (
            f"produce {p_pcpu / s_pcpu:.2f}, consume {p_ccpu / s_ccpu:.2f}"
            if s_pcpu and s_ccpu
            else "n/a"
        )
        print(
            f"{loop:8s} TLS/PLAINTEXT MB/s ratio: produce {s_prod / p_prod:.2f}, consume {s_cons / p_cons:.2f} (goal >= 0.7); "
            f"broker CPU ratio PLAINTEXT/TLS: {cpu_ratio}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
