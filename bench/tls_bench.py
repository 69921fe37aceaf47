"""Benchmark: produce and consume MB/s over a TLS listener as a ratio to PLAINTEXT, one run.

Run ``python bench/tls_bench.py`` from the repo root.  It starts one kbroker process with a
PLAINTEXT and an SSL listener (throw-away certificates, ``kbroker.security.devcerts``),
then with confluent-kafka produces ``--messages`` records of ``--size`` bytes to a topic
on each listener in turn (acks=1, lz4 off, batches up to 1 MiB) and consumes them back.
Each phase is bounded by ``--timeout`` seconds.  Prints MB/s per listener and
TLS / PLAINTEXT for produce and consume (goal >= 0.7).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"listeners PLAINTEXT=(\S+) \(PLAINTEXT\) SSL=(\S+) \(SSL\)")


def start_broker(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str], Path]:
    from kbroker.security.devcerts import make_pki

    pki = make_pki(tmp / "pki", clients=())
    cmd = [
        sys.executable, "-m", "kbroker", "--data-dir", str(tmp / "data"),
        "--set", "listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "--set", "ssl.keystore.type=PEM", "--set", f"ssl.keystore.location={pki.server_keystore}",
        "--set", "num.partitions=1",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def run(bootstrap: str, protocol: str, ca: Path, messages: int, size: int, timeout_s: float) -> tuple[float, float]:
    from confluent_kafka import Consumer, Producer

    conf = {"bootstrap.servers": bootstrap, "security.protocol": protocol}
    if protocol == "SSL":
        conf["ssl.ca.location"] = str(ca)
    topic = f"bench-{protocol.lower()}-{int(time.time() * 1000)}"
    payload = b"x" * size
    producer = Producer({**conf, "linger.ms": 5, "batch.size": 1_000_000, "acks": 1, "queue.buffering.max.messages": 1_000_000})
    producer.produce(topic, b"warm-up")
    producer.flush(timeout_s)
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
    if left:
        raise SystemExit(f"{protocol}: {left} records not delivered within {timeout_s} s")
    consumer = Consumer({**conf, "group.id": topic, "auto.offset.reset": "earliest", "fetch.max.bytes": 50_000_000})
    consumer.subscribe([topic])
    got, started, deadline = 0, 0.0, time.monotonic() + timeout_s
    while got < messages + 1 and time.monotonic() < deadline:
        for msg in consumer.consume(10_000, 1.0):
            if msg.error() is None:
                if not started:
                    started = time.perf_counter()
                got += 1
    consume_s = time.perf_counter() - started
    consumer.close()
    if got < messages + 1:
        raise SystemExit(f"{protocol}: consumed {got} of {messages + 1} within {timeout_s} s")
    mb = messages * size / 1e6
    return mb / produce_s, mb / consume_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kbroker-tls-bench-") as tmp:
        proc, addresses, ca = start_broker(Path(tmp))
        try:
            results = {p: run(addresses[p], p, ca, args.messages, args.size, args.timeout) for p in ("PLAINTEXT", "SSL")}
        finally:
            proc.terminate()
            proc.wait(30)
    for protocol, (produce, consume) in results.items():
        print(f"{protocol:9s} produce {produce:8.1f} MB/s  consume {consume:8.1f} MB/s")
    (p_prod, p_cons), (s_prod, s_cons) = results["PLAINTEXT"], results["SSL"]
    print(f"TLS/PLAINTEXT ratio: produce {s_prod / p_prod:.2f}, consume {s_cons / p_cons:.2f} (goal >= 0.7)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
