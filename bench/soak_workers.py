"""The load of ``python -m bench.soak``: one process per client, running across broker kills.

``python -m bench.soak_workers KIND --bootstrap H:P --topic T --out FILE --stop FILE --seed N``

Each worker runs until the stop file exists (or ``--max-seconds`` pass), survives the
broker being SIGKILLed and restarted under it (the clients reconnect to the same port),
and writes what it *knows* as JSON lines to ``--out`` (flushed per line, so a line is
there once the client reported it):

* ``kafka-python`` / ``aiokafka`` / ``confluent``: an idempotent ``acks=all`` producer;
  ``{"ack": value, "p": partition, "o": offset}`` per acknowledged record.  After any
  failed delivery the producer is closed and a new one made (new producer id); failed
  records are never re-sent, so a duplicate can only come from the broker.
* ``txn``: a confluent-kafka transactional producer, ``TXN_RECORDS`` records per
  transaction, then commit or abort (seeded choice); ``{"txn": k, "outcome": ...}`` with
  outcome ``committed`` (commit returned), ``aborted`` (abort returned, no commit tried)
  or ``unknown`` (anything else: the transaction may have gone either way).
* ``consumer``: a confluent-kafka group consumer (read_committed) of the transactional
  topic committing synchronously; ``{"commit": {p: offset}}`` after each successful
  commit, ``{"fetched": {p: offset}}`` from OffsetFetch after it, and ``{"seen": [...]}``
  for the values it read.

Errors are logged as ``{"error": text}`` lines; they are expected while the broker is down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from typing import Any, TextIO

TXN_RECORDS = 5
BATCH_RECORDS = 20  # records sent before waiting for their acknowledgements
FLUSH_TIMEOUT_S = 20.0
CONSUMER_COMMIT_INTERVAL_S = 0.5


class Out:
    def __init__(self, path: str) -> None:
        self.f: TextIO = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life

    def write(self, **fields: Any) -> None:
        self.f.write(json.dumps(fields, separators=(",", ":")) + "\n")


def _stopping(args: argparse.Namespace, deadline: float) -> bool:
    return os.path.exists(args.stop) or time.monotonic() > deadline


def run_kafka_python(args: argparse.Namespace, out: Out, deadline: float) -> None:
    from kafka import KafkaProducer

    incarnation = 0
    while not _stopping(args, deadline):
        incarnation += 1
        failed: list[str] = []
        try:
            producer = KafkaProducer(
                bootstrap_servers=args.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=2,
                request_timeout_ms=5000,
                reconnect_backoff_max_ms=500,
            )
        except Exception as exc:
            out.write(error=f"create: {exc!r}")
            time.sleep(0.5)
            continue
        seq = 0
        try:
            while not failed and not _stopping(args, deadline):
                futures = []
                for _ in range(BATCH_RECORDS):
                    value = f"kp:{incarnation}:{seq}"
                    seq += 1
                    futures.append((value, producer.send(args.topic, value=value.encode())))
                producer.flush(timeout=FLUSH_TIMEOUT_S)
                for value, fut in futures:
                    if fut.succeeded():
                        md = fut.value
                        out.write(ack=value, p=md.partition, o=md.offset)
                    else:
                        failed.append(value)
                        if fut.is_done:
                            out.write(error=f"delivery: {fut.exception!r}")
        except Exception as exc:
            out.write(error=f"send: {exc!r}")
        finally:
            try:
                producer.close(timeout=5)
            except Exception as exc:
                out.write(error=f"close: {exc!r}")


def run_aiokafka(args: argparse.Namespace, out: Out, deadline: float) -> None:
    asyncio.run(_aiokafka(args, out, deadline))


async def _aiokafka(args: argparse.Namespace, out: Out, deadline: float) -> None:
    from aiokafka import AIOKafkaProducer

    incarnation = 0
    while not _stopping(args, deadline):
        incarnation += 1
        producer = AIOKafkaProducer(
            bootstrap_servers=args.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            request_timeout_ms=5000,
        )
        try:
            await asyncio.wait_for(producer.start(), 10)
        except Exception as exc:
            out.write(error=f"start: {exc!r}")
            await _stop_quietly(producer)
            await asyncio.sleep(0.5)
            continue
        seq = 0
        ok = True
        try:
            while ok and not _stopping(args, deadline):
                sends = []
                for _ in range(BATCH_RECORDS):
                    value = f"aio:{incarnation}:{seq}"
                    seq += 1
                    sends.append((value, await producer.send(args.topic, value=value.encode())))
                done = await asyncio.wait_for(
                    asyncio.gather(*(f for _, f in sends), return_exceptions=True), FLUSH_TIMEOUT_S
                )
                for (value, _), md in zip(sends, done):
                    if isinstance(md, BaseException):
                        ok = False
                        out.write(error=f"delivery: {md!r}")
                    else:
                        out.write(ack=value, p=md.partition, o=md.offset)
        except Exception as exc:
            out.write(error=f"send: {exc!r}")
        await _stop_quietly(producer)


async def _stop_quietly(producer: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 10)


def run_confluent(args: argparse.Namespace, out: Out, deadline: float) -> None:
    from confluent_kafka import Producer

    incarnation = 0
    while not _stopping(args, deadline):
        incarnation += 1
        failed: list[Any] = []

        def on_delivery(err: Any, msg: Any, failed: list[Any] = failed) -> None:
            if err is None:
                out.write(ack=msg.value().decode(), p=msg.partition(), o=msg.offset())
            else:
                failed.append(err)
                out.write(error=f"delivery: {err}")

        producer = Producer(
            {
                "bootstrap.servers": args.bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 2,
                "reconnect.backoff.max.ms": 500,
                "message.timeout.ms": 30000,
            }
        )
        seq = 0
        try:
            while not failed and not _stopping(args, deadline):
                for _ in range(BATCH_RECORDS):
                    value = f"ck:{incarnation}:{seq}"
                    seq += 1
                    producer.produce(args.topic, value=value.encode(), on_delivery=on_delivery)
                producer.flush(FLUSH_TIMEOUT_S)
        except Exception as exc:
            out.write(error=f"send: {exc!r}")
        producer.flush(FLUSH_TIMEOUT_S)


def run_txn(args: argparse.Namespace, out: Out, deadline: float) -> None:
    from confluent_kafka import KafkaException, Producer

    rng = random.Random(args.seed)
    k = 0

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            out.write(error=f"delivery of {msg.value().decode()}: {err}")

    while not _stopping(args, deadline):
        producer = Producer(
            {
                "bootstrap.servers": args.bootstrap,
                "transactional.id": "soak-txn",
                "transaction.timeout.ms": 10000,
                "reconnect.backoff.max.ms": 500,
            }
        )
        try:
            producer.init_transactions(30)
        except KafkaException as exc:
            out.write(error=f"init: {exc}")
            time.sleep(0.5)
            continue
        fatal = False
        while not fatal and not _stopping(args, deadline):
            k += 1
            commit = rng.random() < 0.6
            out.write(begin=k, records=TXN_RECORDS)
            tried_commit = False
            try:
                producer.begin_transaction()
                for i in range(TXN_RECORDS):
                    producer.produce(
                        args.topic, value=f"txn:{k}:{i}".encode(), on_delivery=on_delivery
                    )
                if commit:
                    tried_commit = True
                    producer.commit_transaction(30)
                    out.write(txn=k, outcome="committed")
                else:
                    producer.abort_transaction(30)
                    out.write(txn=k, outcome="aborted")
            except KafkaException as exc:
                err = exc.args[0]
                out.write(txn=k, outcome="unknown", error=str(err), tried_commit=tried_commit)
                if err.txn_requires_abort():
                    try:
                        producer.abort_transaction(30)
                    except KafkaException as exc2:
                        out.write(error=f"abort: {exc2}")
                        fatal = True
                elif not err.retriable():
                    fatal = True
                else:
                    fatal = True  # a new producer re-inits and fences whatever is open
            time.sleep(rng.random() * 0.05)


def run_consumer(args: argparse.Namespace, out: Out, deadline: float) -> None:
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": "soak-group",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,  # the broker's group.min.session.timeout.ms
            "reconnect.backoff.max.ms": 500,
        }
    )
    consumer.subscribe([args.topic])
    last_commit = time.monotonic()
    seen: list[str] = []
    try:
        while not _stopping(args, deadline):
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() is None:
                seen.append(msg.value().decode())
            if time.monotonic() - last_commit < CONSUMER_COMMIT_INTERVAL_S:
                continue
            last_commit = time.monotonic()
            if seen:
                out.write(seen=seen)
                seen = []
            try:
                done = consumer.commit(asynchronous=False)
            except KafkaException as exc:
                out.write(error=f"commit: {exc}")
                continue
            if done:
                out.write(commit={str(tp.partition): tp.offset for tp in done if tp.error is None})
                try:
                    fetched = consumer.committed(done, timeout=5)
                except KafkaException as exc:
                    out.write(error=f"committed: {exc}")
                    continue
                out.write(
                    fetched={str(tp.partition): tp.offset for tp in fetched if tp.error is None}
                )
    finally:
        if seen:
            out.write(seen=seen)
        consumer.close()


RUNNERS = {
    "kafka-python": run_kafka_python,
    "aiokafka": run_aiokafka,
    "confluent": run_confluent,
    "txn": run_txn,
    "consumer": run_consumer,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.soak_workers")
    ap.add_argument("kind", choices=sorted(RUNNERS))
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop", required=True, help="the worker ends once this file exists")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    args = ap.parse_args(argv)
    out = Out(args.out)
    out.write(started=args.kind)
    RUNNERS[args.kind](args, out, time.monotonic() + args.max_seconds)
    out.write(stopped=args.kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
