"""Benchmark: produce/consume throughput with the ACL authorizer holding 10,000 ACLs vs no
authorizer, in one run.

Run ``python -m bench.acl_bench [--runs N] [--count N] [--acls N]`` from the repo root.  It
starts kbroker processes alternately without and with
``authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer`` (off, on,
off, on, ...).  In the "on" runs ``allow.everyone.if.no.acl.found=true`` lets the anonymous
client create, over the wire (CreateAcls, in batches), ``--acls`` ACLs before the timed
phases: literal and prefixed topic ACLs of many names and prefix lengths (some of them
prefixes of the bench topic, for other principals), group and transactional-id ACLs, and the
bench topic's own ALLOW (and a DENY for another principal), so each Produce/Fetch decision
is made from an index holding real matches (then answered from the authorizer's memo until
an ACL changes).  Each run produces ``--count`` 100-byte messages
with librdkafka (confluent-kafka, acks=all) and consumes them back.  librdkafka batches many
messages per request, so those figures barely see a per-request cost; the bench therefore
also drives small requests itself over one raw connection (``--requests`` Produce requests
of one 100-byte record, acks=1, then as many Fetch requests of one partition, a window of
``WINDOW`` requests in flight): each is one authorization decision, and requests/s shows
its cost.  The medians and on/off ratios are printed (the issue asks for >= 0.95).
``--micro`` also times one decision of the authorizer alone, from its memo and from the
index.  Needs ``pip install -e '.[test]'``.  Prints only.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import struct
import time
import timeit

from bench.brokers import Broker
from bench.loadgen import create_topic
from bench.suite import progress, run_job

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
PHASE_DEADLINE_S = 120.0
CREATE_BATCH = 1000
ANONYMOUS = "User:ANONYMOUS"
# codes (Kafka's): resource types, pattern types, operations, permissions
TOPIC, GROUP, TXN = 2, 3, 5
LITERAL, PREFIXED = 3, 4
ALL, READ, WRITE, DESCRIBE = 2, 3, 4, 8
DENY, ALLOW = 2, 3


def acl_set(count: int, topic: str) -> list[tuple[int, str, int, str, str, int, int]]:
    """``count`` ACLs: (resource type, name, pattern, principal, host, operation, permission)."""
    own = [
        (TOPIC, topic, LITERAL, ANONYMOUS, "*", ALL, ALLOW),
        (TOPIC, topic, LITERAL, "User:mallory", "*", ALL, DENY),
        (GROUP, "*", LITERAL, ANONYMOUS, "*", READ, ALLOW),
        (TOPIC, topic[:3], PREFIXED, "User:other", "*", WRITE, ALLOW),
        (TOPIC, topic[:8], PREFIXED, "User:other", "*", READ, DENY),
    ]
    out = list(own)
    i = 0
    while len(out) < count:
        principal = f"User:u{i % 97}"
        kind = i % 10
        if kind < 4:
            out.append((TOPIC, f"topic-{i}", LITERAL, principal, "*", (READ, WRITE, DESCRIBE)[i % 3], ALLOW))
        elif kind < 7:
            out.append((TOPIC, f"{'p' * (i % 23)}pfx{i}-", PREFIXED, principal, "*", WRITE, (ALLOW, DENY)[i % 2]))
        elif kind < 9:
            out.append((GROUP, f"group-{i}", (LITERAL, PREFIXED)[i % 2], principal, "*", READ, ALLOW))
        else:
            out.append((TXN, f"tx-{i}", LITERAL, principal, "*", WRITE, ALLOW))
        i += 1
    return out[:count]


def load_acls(bootstrap: str, acls: list[tuple[int, str, int, str, str, int, int]]) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        AdminClient,
        ResourcePatternType,
        ResourceType,
    )

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    for start in range(0, len(acls), CREATE_BATCH):
        batch = [
            AclBinding(ResourceType(rt), name, ResourcePatternType(pt), principal, host, AclOperation(op), AclPermissionType(perm))
            for rt, name, pt, principal, host, op, perm in acls[start:start + CREATE_BATCH]
        ]
        for f in admin.create_acls(batch, request_timeout=60).values():
            f.result(60)


# Requests in flight on the raw connection (so the broker, not the round trip, is measured).
WINDOW = 32
RAW_TIMEOUT_S = 30.0
# A Fetch of one one-record batch (about 170 bytes).
SMALL_FETCH_BYTES = 256


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return bytes(out)


def raw_rate(bootstrap: str, topic: str, api: str, requests: int, fetch_offset: int = 0) -> float:
    """Requests/s of small Produce or Fetch requests, ``WINDOW`` in flight.  A Fetch reads
    one small batch at ``fetch_offset`` (one of the small produces' batches)."""
    from kbroker.wire.headers import RequestHeader, encode_request
    from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
    from kbroker.wire.messages.produce_request import (
        PartitionProduceData,
        ProduceRequest,
        TopicProduceData,
    )
    from kbroker.wire.records import make_batch

    if api == "produce":
        version = 9
        msg = ProduceRequest(acks=1, timeout_ms=5000, topic_data=[
            TopicProduceData(name=topic, partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([b"x" * 100])))])
        ])
    else:
        version = 12
        msg = FetchRequest(replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=SMALL_FETCH_BYTES, isolation_level=0, topics=[
            FetchTopic(topic=topic, partitions=[FetchPartition(partition=0, fetch_offset=fetch_offset, partition_max_bytes=SMALL_FETCH_BYTES)])
        ])
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=RAW_TIMEOUT_S) as sock:
        frames = [
            bytes(encode_request(RequestHeader(request_api_key=msg.API_KEY, request_api_version=version, correlation_id=i, client_id="acl-bench"), msg))
            for i in range(WINDOW)
        ]
        window = b"".join(frames)
        rounds = max(requests // WINDOW, 1)
        t0 = time.perf_counter()
        for _ in range(rounds):
            sock.sendall(window)
            for _ in range(WINDOW):
                (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
                _recv_exactly(sock, size)
        return rounds * WINDOW / (time.perf_counter() - t0)


def run_once(on: bool, count: int, acls: int, tag: str, requests: int) -> dict[str, float]:
    topic = f"acl-bench-{tag}"
    settings = {"authorizer.class.name": STANDARD_AUTHORIZER, "allow.everyone.if.no.acl.found": "true"} if on else {}
    broker = Broker("kbroker", settings=settings)
    broker.start()
    try:
        if on:
            load_acls(broker.bootstrap, acl_set(acls, topic))
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
    progress(f"{tag} authorizer {'on ' if on else 'off'}: " + ", ".join(f"{k} {v:,.2f}" for k, v in out.items())
             + (f" !! {failed}" if failed else ""))
    return out


def micro(acls: int) -> None:
    from kbroker.acl.authorizer import StandardAuthorizer
    from kbroker.acl.model import AclBinding

    topic = "acl-bench-micro"
    authorizer = StandardAuthorizer((), True)
    authorizer.create(AclBinding(*a) for a in acl_set(acls, topic))
    n = 200_000
    per = timeit.timeit(lambda: authorizer.authorize(ANONYMOUS, "127.0.0.1", WRITE, TOPIC, topic), number=n) / n
    walk = timeit.timeit(lambda: authorizer._decide(ANONYMOUS, "127.0.0.1", WRITE, TOPIC, topic), number=n) / n
    print(f"one decision with {len(authorizer):,} ACLs (topic WRITE, matching ACLs on 3 patterns): "
          f"{per * 1e9:,.0f} ns as asked again (memo), {walk * 1e9:,.0f} ns from the index")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.acl_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (alternated)")
    ap.add_argument("--count", type=int, default=200_000, help="messages per run")
    ap.add_argument("--acls", type=int, default=10_000, help="ACLs loaded in the 'on' runs")
    ap.add_argument("--requests", type=int, default=20_000, help="small Produce (and Fetch) requests per run")
    ap.add_argument("--micro", action="store_true", help="also time one authorizer decision alone")
    args = ap.parse_args()
    results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for i in range(args.runs):
        for on in (False, True) if i % 2 == 0 else (True, False):
            results[on].append(run_once(on, args.count, args.acls, f"r{i}{'on' if on else 'off'}", args.requests))
    print(f"{args.count:,} x 100 B messages, {args.acls:,} ACLs in the 'on' runs, {args.runs} runs each, medians:")
    for key in results[False][0]:
        off = statistics.median(r[key] for r in results[False])
        on = statistics.median(r[key] for r in results[True])
        print(f"  {key}: off {off:,.2f}, on {on:,.2f}, ratio on/off {on / off if off else float('nan'):.3f}")
    if args.micro:
        micro(args.acls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
