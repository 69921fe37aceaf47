"""Benchmark: produce/consume throughput with the metrics listener on vs off, in one run.

Run ``python -m bench.metrics_bench [--runs N] [--count N]`` from the repo root.  It starts
kbroker processes alternately without and with ``kbroker.http.listen`` (off, on, off, on, ...),
and in the "on" runs a thread scrapes ``/metrics`` every second, as Prometheus would at a
short interval.  Each run produces ``--count`` 100-byte messages with librdkafka
(confluent-kafka, acks=all) and consumes them back.  Prints the medians and the on/off
ratios (the issue asks for >= 0.95).  Needs ``pip install -e '.[test]'``.  Prints only.

The request-path counters themselves run in both configurations (they are plain ``dict``
increments, always on); "off" means no listener and no scrapes.  ``--micro`` also times
the counters alone per request.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import timeit
import urllib.request

from bench.brokers import Broker, free_port
from bench.loadgen import create_topic
from bench.suite import progress, run_job

DEFAULT_SCRAPE_INTERVAL_S = 1.0
PHASE_DEADLINE_S = 120.0


def _scraper(url: str, stop: threading.Event, counts: list[int], interval_s: float) -> None:
    while not stop.wait(interval_s):
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                resp.read()
            counts[0] += 1
        except OSError:
            counts[1] += 1


def run_once(metrics_on: bool, count: int, tag: str, interval_s: float) -> dict[str, float]:
    settings = {}
    http_port = free_port()
    if metrics_on:
        settings["kbroker.http.listen"] = f"127.0.0.1:{http_port}"
    broker = Broker("kbroker", settings=settings)
    broker.start()
    stop, counts = threading.Event(), [0, 0]
    scraper = None
    try:
        if metrics_on and interval_s > 0:
            url = f"http://127.0.0.1:{http_port}/metrics"
            scraper = threading.Thread(target=_scraper, args=(url, stop, counts, interval_s), daemon=True)
            scraper.start()
        topic = f"metrics-bench-{tag}"
        create_topic(broker.bootstrap, topic, 1)
        base = {"bootstrap": broker.bootstrap, "deadline_s": PHASE_DEADLINE_S, "topic": topic, "count": count}
        with broker.phase() as prod_st:
            prod = run_job({**base, "op": "produce", "size": 100})
        with broker.phase() as cons_st:
            cons = run_job({**base, "op": "consume"})
    finally:
        stop.set()
        if scraper is not None:
            scraper.join(10)
        broker.stop()
    out = {
        "produce msgs/s": float(prod.get("msgs_per_s") or 0),
        "consume msgs/s": float(cons.get("msgs_per_s") or 0),
        # broker CPU per million messages: steadier than throughput on a shared machine
        "produce broker cpu s/M": (prod_st.cpu_s or 0.0) * 1e6 / count,
        "consume broker cpu s/M": (cons_st.cpu_s or 0.0) * 1e6 / count,
    }
    progress(f"{tag} metrics {'on ' if metrics_on else 'off'}: "
             + ", ".join(f"{k} {v:,.2f}" for k, v in out.items())
             + (f", {counts[0]} scrapes ({counts[1]} failed)" if metrics_on else "")
             + (f" !! {prod.get('failed') or cons.get('failed')}" if prod.get("failed") or cons.get("failed") else ""))
    return out


def micro() -> None:
    from kbroker.metrics import BrokerStats

    stats = BrokerStats()
    n = 200_000
    per_request = timeit.timeit(lambda: (stats.request(0, 0, 0.0004), stats.produced("t", 10, 1200)), number=n) / n
    print(f"counters per produce request (request + produced): {per_request * 1e9:,.0f} ns")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.metrics_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (alternated)")
    ap.add_argument("--count", type=int, default=200_000, help="messages per run")
    ap.add_argument("--scrape-interval", type=float, default=DEFAULT_SCRAPE_INTERVAL_S,
                    help="seconds between scrapes in the 'on' runs (0: listener on, no scrapes)")
    ap.add_argument("--micro", action="store_true", help="also time the counters alone")
    args = ap.parse_args()
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for i in range(args.runs):
        for on in (False, True) if i % 2 == 0 else (True, False):
            results[on].append(run_once(on, args.count, f"r{i}{'on' if on else 'off'}", args.scrape_interval))
    print(f"{args.count:,} x 100 B messages, {args.runs} runs each, medians:")
    for key in results[False][0]:
        off = statistics.median(r[key] for r in results[False])
        on = statistics.median(r[key] for r in results[True])
        print(f"  {key}: off {off:,.2f}, on {on:,.2f}, ratio on/off {on / off if off else float('nan'):.3f}")
    if args.micro:
        micro()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
