"""Benchmark: single-node produce/consume of this tree against another tree's kbroker, in one run.

Run ``python -m bench.tree_bench --before DIR [--runs N] [--count N]`` from the repo root,
where DIR holds another version's ``kbroker/`` package (e.g. ``git archive REV kbroker |
tar -x -C DIR``); ``wire``, ``log`` and ``coordinator`` come from the installed tree in
both, so only the kbroker package differs.  Brokers alternate (before, after, after,
before, ...); each run produces ``--count`` 100-byte messages with librdkafka
(confluent-kafka, acks=all) and consumes them back, then times ``--requests`` small
pipelined Produce and Fetch requests (the per-request path alone).  Prints the medians and the
after/before ratios.  Prints only.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench.acl_bench import raw_rate
from bench.brokers import Broker
from bench.loadgen import create_topic
from bench.suite import progress, run_job

PHASE_DEADLINE_S = 120.0
# --micro: how long one tree's child process may take.
MICRO_TIMEOUT_S = 300.0

# --micro's child, run with the tree as its working directory (so ``kbroker`` is that
# tree's): an in-process broker, then ``dispatch`` of prebuilt Produce and Fetch frames,
# timed in process CPU time (steadier than wall time on a loaded machine).
MICRO_CHILD = r"""
import asyncio, json, sys, tempfile, time
from pathlib import Path
from kbroker.config import build_config
from kbroker.server import Broker
from kbroker.session import Session
from kbroker.clock import now_ms
from kbroker.wire.headers import RequestHeader, encode_request
from kbroker.wire.messages.produce_request import ProduceRequest, TopicProduceData, PartitionProduceData
from kbroker.wire.messages.fetch_request import FetchRequest, FetchTopic, FetchPartition
from kbroker.wire.records import make_batch

N = int(sys.argv[1])

def frame(msg, version):
    data = bytes(encode_request(RequestHeader(request_api_key=msg.API_KEY, request_api_version=version,
                                              correlation_id=1, client_id="tree-bench"), msg))
    return data[4:]

async def main():
    config = build_config(listen="127.0.0.1:0", data_dir=tempfile.mkdtemp(), overrides=[], environ={})
    broker = Broker(config)
    await broker.start()
    try:
        broker.topics.create_topic("t", 1, {}, now_ms())
        produce = frame(ProduceRequest(acks=1, timeout_ms=5000, topic_data=[TopicProduceData(name="t",
            partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"x" * 100])))])]), 9)
        fetch = frame(FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1024, isolation_level=0,
            topics=[FetchTopic(topic="t", partitions=[FetchPartition(partition=0, fetch_offset=0,
            partition_max_bytes=1024)])]), 12)
        out = {}
        session = Session()  # as a connection passes its own
        for name, f in (("produce", produce), ("fetch", fetch)):
            for _ in range(N // 10):
                await broker.dispatch(f, "bench", session)
            t0 = time.process_time()
            for _ in range(N):
                await broker.dispatch(f, "bench", session)
            out[name + " dispatch us"] = (time.process_time() - t0) / N * 1e6
        print(json.dumps(out))
    finally:
        await broker.shutdown()

asyncio.run(main())
"""


def run_once(cwd: Path | None, count: int, tag: str, requests: int) -> dict[str, float]:
    broker = Broker("kbroker", cwd=cwd)
    broker.start()
    try:
        topic = f"tree-bench-{tag}"
        create_topic(broker.bootstrap, topic, 1)
        base = {
            "bootstrap": broker.bootstrap,
            "deadline_s": PHASE_DEADLINE_S,
            "topic": topic,
            "count": count,
        }
        with broker.phase() as prod_st:
            prod = run_job({**base, "op": "produce", "size": 100})
        with broker.phase() as cons_st:
            cons = run_job({**base, "op": "consume"})
        # The per-request path alone: pipelined one-record Produce / empty-ish Fetch frames.
        produce_rate = raw_rate(broker.bootstrap, topic, "produce", requests)
        fetch_rate = raw_rate(broker.bootstrap, topic, "fetch", requests, fetch_offset=count)
    finally:
        broker.stop()
    failed = prod.get("failed") or cons.get("failed")
    if failed:
        raise RuntimeError(f"{tag}: {failed}")
    out = {
        "produce msgs/s": float(prod.get("msgs_per_s") or 0),
        "consume msgs/s": float(cons.get("msgs_per_s") or 0),
        # broker CPU per million messages: steadier than throughput on a shared machine
        "produce broker cpu s/M": (prod_st.cpu_s or 0.0) * 1e6 / count,
        "consume broker cpu s/M": (cons_st.cpu_s or 0.0) * 1e6 / count,
        "small produce requests/s": produce_rate,
        "small fetch requests/s": fetch_rate,
    }
    progress(f"{tag}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items()))
    return out


def micro_once(cwd: Path, dispatches: int, tag: str) -> dict[str, float]:
    import json
    import subprocess
    import sys

    cp = subprocess.run(
        [sys.executable, "-c", MICRO_CHILD, str(dispatches)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=MICRO_TIMEOUT_S,
        check=False,
    )
    lines = [ln for ln in cp.stdout.splitlines() if ln.startswith("{")]
    if cp.returncode != 0 or not lines:
        raise RuntimeError(f"{tag}: exit {cp.returncode}: {cp.stderr[-2000:]}")
    out: dict[str, float] = json.loads(lines[-1])
    progress(f"{tag}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items()))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.tree_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--before", type=Path, required=True, help="directory holding the other version's kbroker/"
    )
    ap.add_argument("--runs", type=int, default=3, help="runs per tree (alternated)")
    ap.add_argument("--count", type=int, default=200_000, help="messages per run")
    ap.add_argument(
        "--requests", type=int, default=20_000, help="small Produce (and Fetch) requests per run"
    )
    ap.add_argument(
        "--micro",
        type=int,
        default=0,
        metavar="N",
        help="instead: time N in-process dispatches of a small Produce and a Fetch per run",
    )
    args = ap.parse_args()
    if not (args.before / "kbroker" / "__init__.py").exists():
        ap.error(f"{args.before} has no kbroker/ package")
    results: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    here = Path(__file__).resolve().parent.parent
    for i in range(args.runs):
        for which in ("before", "after") if i % 2 == 0 else ("after", "before"):
            cwd = args.before.resolve() if which == "before" else None
            if args.micro:
                results[which].append(micro_once(cwd or here, args.micro, f"r{i}-{which}"))
            else:
                results[which].append(run_once(cwd, args.count, f"r{i}-{which}", args.requests))
    what = f"{args.micro:,} dispatches" if args.micro else f"{args.count:,} x 100 B messages"
    print(f"{what}, {args.runs} runs each, medians:")
    for key in results["before"][0]:
        before = statistics.median(r[key] for r in results["before"])
        after = statistics.median(r[key] for r in results["after"])
        print(
            f"  {key}: before {before:,.2f}, after {after:,.2f}, after/before {after / before if before else float('nan'):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
