"""Benchmark: produce/consume MB/s with the response budget (kbroker.queued.max.response.bytes)
against a baseline without it, in one run.

Run ``python -m bench.budget_bench --baseline-python PY --python PY2 [--runs N] [--count N]``
from the repo root, where ``PY`` is a Python whose installed kbroker is the version before
the budget and ``PY2`` one with this tree installed the same way (non-editable).  kbroker
processes start alternately from each (base, this, this, base, ...) with the same settings
(defaults); each run produces ``--count`` 1 KiB messages with librdkafka (acks=all) and
consumes them back, then drives ``--requests`` small Fetch requests over one connection
(the per-request cost of the budget's bookkeeping shows there).  Medians and this/baseline
ratios are printed.  Prints only.
"""

from __future__ import annotations

import argparse

from bench.acl_bench import raw_rate
from bench.brokers import Broker
from bench.loadgen import create_topic
from bench.suite import alternated, print_median_ratios, progress, run_job

PHASE_DEADLINE_S = 120.0
MESSAGE_BYTES = 1024


def run_once(python: str, count: int, requests: int, tag: str) -> dict[str, float]:
    topic = f"budget-bench-{tag}"
    broker = Broker("kbroker", settings={}, python=python)
    broker.start()
    try:
        create_topic(broker.bootstrap, topic, 1)
        base = {"bootstrap": broker.bootstrap, "deadline_s": PHASE_DEADLINE_S, "topic": topic, "count": count}
        prod = run_job({**base, "op": "produce", "size": MESSAGE_BYTES})
        cons = run_job({**base, "op": "consume"})
        fetch_rate = raw_rate(broker.bootstrap, topic, "fetch", requests, fetch_offset=count)
    finally:
        broker.stop()
    out = {
        "produce MB/s": float(prod.get("mb_per_s") or 0),
        "consume MB/s": float(cons.get("mb_per_s") or 0),
        "small fetch requests/s": fetch_rate,
    }
    failed = prod.get("failed") or cons.get("failed")
    progress(f"{tag}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items()) + (f" !! {failed}" if failed else ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.budget_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-python", required=True, help="a Python whose installed kbroker is the baseline")
    ap.add_argument("--python", default="", help="a Python whose installed kbroker is measured (default: this tree)")
    ap.add_argument("--runs", type=int, default=3, help="runs per version (alternated)")
    ap.add_argument("--count", type=int, default=200_000, help="1 KiB messages per run")
    ap.add_argument("--requests", type=int, default=20_000, help="small Fetch requests per run")
    args = ap.parse_args()
    versions = {"baseline": args.baseline_python, "this": args.python}
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    for i, name in alternated(args.runs):
        results[name].append(run_once(versions[name], args.count, args.requests, f"r{i}-{name}"))
    print(f"{args.count:,} x {MESSAGE_BYTES} B messages, {args.requests:,} small Fetch requests, {args.runs} runs each, medians:")
    print_median_ratios(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
