"""Benchmark: produce/consume with no fault rule active, this tree vs a baseline, in one run.

Run ``python -m bench.faults_bench --baseline-python PY [--runs N] [--count N]`` from the
repo root, where ``PY`` is a Python whose installed kbroker is the version to compare with
(e.g. a venv with the commit before the fault-rule engine installed).  It starts kbroker
processes alternately from the baseline and from this tree (base, this, this, base, ...),
both with the HTTP listener on, this tree with the control API too
(``kbroker.control.enabled``, a property the baseline refuses) and no rule.  ``--python``
measures another Python's installed kbroker instead of this tree, so that both sides are
installed the same way (an editable install imports differently).  Each run produces
``--count`` 100-byte messages with librdkafka (confluent-kafka, acks=all) and consumes them back; since librdkafka puts
many messages in one request, it also drives ``--requests`` small Produce and Fetch
requests over one raw connection (``bench.acl_bench.raw_rate``: one record each, a window in
flight), where a per-request cost shows.  The medians and this/baseline ratios are printed
(the issue asks for >= 0.97).  Prints only.
"""

from __future__ import annotations

import argparse
import statistics

from bench.acl_bench import raw_rate
from bench.brokers import Broker
from bench.loadgen import create_topic
from bench.suite import progress, run_job

PHASE_DEADLINE_S = 120.0
BASELINE_SETTINGS = {"kbroker.http.listen": "127.0.0.1:0"}
SETTINGS = {**BASELINE_SETTINGS, "kbroker.control.enabled": "true"}


def run_once(python: str, count: int, requests: int, tag: str, baseline: bool) -> dict[str, float]:
    topic = f"faults-bench-{tag}"
    broker = Broker("kbroker", settings=dict(BASELINE_SETTINGS if baseline else SETTINGS), python=python)
    broker.start()
    try:
        create_topic(broker.bootstrap, topic, 1)
        base = {"bootstrap": broker.bootstrap, "deadline_s": PHASE_DEADLINE_S, "topic": topic, "count": count}
        with broker.phase() as prod_st:
            prod = run_job({**base, "op": "produce", "size": 100})
        with broker.phase() as cons_st:
            cons = run_job({**base, "op": "consume"})
        with broker.phase() as small_produce_st:
            produce_rate = raw_rate(broker.bootstrap, topic, "produce", requests)
        with broker.phase() as small_fetch_st:
            fetch_rate = raw_rate(broker.bootstrap, topic, "fetch", requests, fetch_offset=count)
    finally:
        broker.stop()
    out = {
        "produce msgs/s": float(prod.get("msgs_per_s") or 0),
        "consume msgs/s": float(cons.get("msgs_per_s") or 0),
        "produce broker cpu s/M": (prod_st.cpu_s or 0.0) * 1e6 / count,
        "consume broker cpu s/M": (cons_st.cpu_s or 0.0) * 1e6 / count,
        "small produce requests/s": produce_rate,
        "small fetch requests/s": fetch_rate,
        # broker CPU per small request: the per-request cost, less disturbed by other load
        "small produce broker cpu us/request": (small_produce_st.cpu_s or 0.0) * 1e6 / requests,
        "small fetch broker cpu us/request": (small_fetch_st.cpu_s or 0.0) * 1e6 / requests,
    }
    failed = prod.get("failed") or cons.get("failed")
    progress(f"{tag}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items()) + (f" !! {failed}" if failed else ""))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.faults_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline-python", required=True, help="a Python whose installed kbroker is the baseline")
    ap.add_argument("--python", default="", help="a Python whose installed kbroker is measured instead of this tree "
                    "(so both sides are installed the same way)")
    ap.add_argument("--runs", type=int, default=3, help="runs per version (alternated)")
    ap.add_argument("--count", type=int, default=200_000, help="messages per run")
    ap.add_argument("--requests", type=int, default=20_000, help="small Produce (and Fetch) requests per run")
    args = ap.parse_args()
    versions = {"baseline": args.baseline_python, "this": args.python}
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    for i in range(args.runs):
        for name in ("baseline", "this") if i % 2 == 0 else ("this", "baseline"):
            results[name].append(run_once(versions[name], args.count, args.requests, f"r{i}-{name}", name == "baseline"))
    print(f"{args.count:,} x 100 B messages, {args.requests:,} small requests, {args.runs} runs each, no fault rule, medians:")
    for key in results["this"][0]:
        before = statistics.median(r[key] for r in results["baseline"])
        after = statistics.median(r[key] for r in results["this"])
        print(f"  {key}: baseline {before:,.2f}, this {after:,.2f}, ratio this/baseline {after / before if before else float('nan'):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
