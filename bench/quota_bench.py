"""Benchmark: what client quotas cost clients they do not throttle, in one run.

Run ``python -m bench.quota_bench [--runs N] [--count N] [--requests N]`` from the repo
root.  It starts kbroker processes alternately in three configurations:

- ``none``: no quota at all (the request path's whole cost is one attribute check);
- ``other``: ``producer_byte_rate``, ``consumer_byte_rate`` and ``request_percentage`` set for
  another client id, so quotas are active and every request of the benched clients resolves
  (from a cache) to "no quota";
- ``own``: the same three quotas on the benched clients' own ``<default>`` client id, set far
  above what they use, so every request is recorded on a windowed rate and never throttled.

Each run produces ``--count`` 100-byte messages with librdkafka (confluent-kafka,
acks=all), consumes them back, then drives ``--requests`` small Produce and Fetch requests
over one raw connection (``acl_bench.raw_rate``), where a per-request cost shows.  Medians
and the ratios to ``none`` are printed.  Quotas are set over the wire with AlterClientQuotas.
Needs ``pip install -e '.[test]'``.  Prints only.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
from collections.abc import Callable
from typing import Any

from bench.acl_bench import PHASE_DEADLINE_S, RAW_TIMEOUT_S, raw_rate
from bench.brokers import Broker
from bench.loadgen import create_topic
from bench.suite import progress, run_job

CONFIGS = ("none", "other", "own")
# Far above what a bench client reaches: recorded, never throttled.
UNREACHED_BYTE_RATE = 10.0**12
UNREACHED_PERCENTAGE = 10.0**6


def set_quotas(bootstrap: str, client_id: str | None) -> None:
    """The three enforced quotas on ``client_id`` (None: the default client id), over the wire."""
    from kbroker.wire.codec import decode
    from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
    from kbroker.wire.messages.alter_client_quotas_request import (
        AlterClientQuotasRequest,
        EntityData,
        EntryData,
        OpData,
    )
    from kbroker.wire.messages.alter_client_quotas_response import AlterClientQuotasResponse

    ops = [
        OpData(key="producer_byte_rate", value=UNREACHED_BYTE_RATE),
        OpData(key="consumer_byte_rate", value=UNREACHED_BYTE_RATE),
        OpData(key="request_percentage", value=UNREACHED_PERCENTAGE),
    ]
    msg = AlterClientQuotasRequest(entries=[EntryData(entity=[EntityData(entity_type="client-id", entity_name=client_id)], ops=ops)])
    header = RequestHeader(request_api_key=msg.API_KEY, request_api_version=1, correlation_id=1, client_id="quota-bench-admin")
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=RAW_TIMEOUT_S) as sock:
        sock.sendall(encode_request(header, msg))
        (size,) = struct.unpack(">i", _recv(sock, 4))
        frame = _recv(sock, size)
    _header, offset = decode_response_header(frame, msg.API_KEY, 1)
    response = decode(AlterClientQuotasResponse, 1, memoryview(frame)[offset:])
    assert [e.error_code for e in response.entries] == [0], response


def _recv(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return bytes(out)


def run_once(config: str, count: int, tag: str, requests: int) -> dict[str, float]:
    topic = f"quota-bench-{tag}"
    broker = Broker("kbroker")
    broker.start()
    try:
        if config != "none":
            set_quotas(broker.bootstrap, "someone-else" if config == "other" else None)
        create_topic(broker.bootstrap, topic, 1)
        base = {"bootstrap": broker.bootstrap, "deadline_s": PHASE_DEADLINE_S, "topic": topic, "count": count}
        with broker.phase() as prod_st:
            prod = run_job({**base, "op": "produce", "size": 100})
        with broker.phase() as cons_st:
            cons = run_job({**base, "op": "consume"})
        produce_rate = raw_rate(broker.bootstrap, topic, "produce", requests)
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
    }
    failed = prod.get("failed") or cons.get("failed")
    progress(f"{tag} quotas {config}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items()) + (f" !! {failed}" if failed else ""))
    return out


def micro() -> None:
    """Time the quota bookkeeping of one request alone (``ClientQuotas.throttle_request``):
    with quotas on another client (a cached "no quota"), and with an unreached quota on this
    client (recorded on three windowed rates).  Without any quota the request path only
    checks one attribute, so there is nothing to time."""
    import tempfile
    import timeit
    from pathlib import Path

    from kbroker.quotas.manager import ClientQuotas

    class Produce:
        acks = 1

    values = {"producer_byte_rate": UNREACHED_BYTE_RATE, "consumer_byte_rate": UNREACHED_BYTE_RATE, "request_percentage": UNREACHED_PERCENTAGE}
    figures = {}
    for config, entity in (("other", (("client-id", "someone-else"),)), ("own", (("client-id", None),))):
        with tempfile.TemporaryDirectory() as data_dir:
            quotas = ClientQuotas(Path(data_dir), samples=11, window_s=1)
            quotas.alter([(entity, dict(values))])
            figures[config] = min(timeit.repeat(_one_request(quotas, Produce), number=100_000, repeat=5)) / 100_000
    print("quota bookkeeping per request: " + ", ".join(f"{c} {t * 1e6:.2f} us" for c, t in figures.items()))


def _one_request(quotas: Any, request: Any) -> Callable[[], None]:
    clock = [0]

    def one() -> None:
        clock[0] += 1  # one request a millisecond: windows roll over as in real use
        quotas.throttle_request(0, request, None, "User:ANONYMOUS", "bench", 1000, 0.0001, clock[0])

    return one


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.quota_bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (rotated)")
    ap.add_argument("--count", type=int, default=200_000, help="messages per run")
    ap.add_argument("--requests", type=int, default=20_000, help="small Produce (and Fetch) requests per run")
    ap.add_argument("--micro", action="store_true", help="only time the per-request quota bookkeeping in-process")
    args = ap.parse_args()
    if args.micro:
        micro()
        return 0
    results: dict[str, list[dict[str, float]]] = {c: [] for c in CONFIGS}
    for i in range(args.runs):
        order = CONFIGS[i % len(CONFIGS) :] + CONFIGS[: i % len(CONFIGS)]
        for config in order:
            results[config].append(run_once(config, args.count, f"r{i}{config}", args.requests))
    print(f"{args.count:,} x 100 B messages, {args.requests:,} small requests, {args.runs} runs each, medians:")
    for key in results["none"][0]:
        none = statistics.median(r[key] for r in results["none"])
        parts = [f"none {none:,.2f}"]
        for config in CONFIGS[1:]:
            value = statistics.median(r[key] for r in results[config])
            parts.append(f"{config} {value:,.2f} (x{value / none if none else float('nan'):.3f})")
        print(f"  {key}: " + ", ".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
