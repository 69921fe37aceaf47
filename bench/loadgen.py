"""Load generator for ``python -m bench``: one job per process, JSON in, JSON out.

Run as ``python -m bench.loadgen '<json job>'`` (from the repo root); the result is one
JSON object on stdout.  The orchestrator runs every job in its own process so the
client's CPU is not shared with the orchestrator's bookkeeping, and so a job that hangs
can be killed by pid.  Every job is bounded by ``deadline_s`` (wall time) besides its
message count; a job that runs out of time reports ``"timed_out": true`` and what it
managed.

Jobs (field ``op``):

- ``produce`` -- confluent-kafka (librdkafka), acks=all; ``count`` messages of ``size``
  bytes spread round-robin over ``partitions`` and ``producers`` Producer instances.
- ``consume`` -- confluent-kafka ``assign()`` of every partition from the beginning
  (group.id set, no subscribe, no commits) until ``count`` messages arrived.
- ``latency`` -- fixed-rate produce (``rate`` msg/s for ``duration_s``), linger.ms=0,
  acks=all; send-to-ack latency per message.
- ``e2e`` -- fixed-rate produce with a consumer of the same topic in the same process;
  produce-to-consume latency per message (send time is carried in the payload).
- ``wakeup`` -- one message at a time with the consumer parked in a Fetch long poll
  (fetch.wait.max.ms=1000): produce-to-consume latency of each.
- ``aiokafka-produce`` / ``aiokafka-consume`` / ``kafka-python-produce`` /
  ``kafka-python-consume`` -- the same produce/consume jobs with the pure-Python clients.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

Job = dict[str, Any]
Result = dict[str, Any]

now = time.perf_counter
# Messages per produce_batch() call.
CHUNK = 1000
# A consumer that has received nothing for this long gives up (and reports timed_out).
STALL_S = 15.0


def _percentiles(samples: list[float]) -> dict[str, float | int | None]:
    """p50/p99/max in milliseconds of latencies given in seconds."""
    if not samples:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(samples)

    def pick(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] * 1000.0

    return {"n": len(s), "p50_ms": pick(0.50), "p99_ms": pick(0.99), "max_ms": s[-1] * 1000.0}


def _payload(size: int) -> bytes:
    return os.urandom(size)  # incompressible, reused for every message


def _ck_common(job: Job) -> dict[str, Any]:
    return {
        "bootstrap.servers": job["bootstrap"],
        "client.id": "kbroker-bench",
        # Loopback only: skip the IPv6 attempt and the DNS dance.
        "broker.address.family": "v4",
        "log_level": 3,
    }


# --------------------------------------------------------------------------- admin
def create_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 30.0) -> None:
    """Create ``topic`` and wait until Metadata shows all its partitions with a leader."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    fut = admin.create_topics([NewTopic(topic, partitions, 1)], request_timeout=timeout_s)[topic]
    fut.result(timeout=timeout_s)
    deadline = now() + timeout_s
    while now() < deadline:
        md = admin.list_topics(topic, timeout=5)
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.leader >= 0 for p in t.partitions.values()
        ):
            return
        time.sleep(0.05)
    raise TimeoutError(f"topic {topic} not ready after {timeout_s} s")


# --------------------------------------------------------------------------- confluent-kafka
def produce(job: Job) -> Result:
    from confluent_kafka import KafkaException, Producer

    count, size = int(job["count"]), int(job["size"])
    nparts, nprod = int(job.get("partitions", 1)), int(job.get("producers", 1))
    topic, deadline = job["topic"], now() + float(job["deadline_s"])
    errors: list[str] = []

    def on_error(err: Any, msg: Any) -> None:  # only called on failure (see config)
        if len(errors) < 5:
            errors.append(str(err))
        errors_n[0] += 1

    errors_n = [0]
    conf = {
        **_ck_common(job),
        "acks": "all",
        "linger.ms": int(job.get("linger_ms", 5)),
        "batch.size": 1_000_000,
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 1_048_576,
        "enable.idempotence": False,
        "delivery.report.only.error": True,
        "compression.type": "none",
        "message.timeout.ms": int(job["deadline_s"] * 1000),
    }
    producers = [Producer({**conf, "on_delivery": on_error}) for _ in range(nprod)]
    # Warm up: metadata and connections before the clock starts.
    for p in producers:
        p.list_topics(topic, timeout=10)
    payload = _payload(size)
    timed_out = False
    queued = 0
    # produce_batch() (one Python call per CHUNK messages) keeps the client's Python loop
    # from being the bottleneck; chunks go round-robin over producers and partitions.
    chunk = [{"value": payload} for _ in range(CHUNK)]
    t0 = now()
    i = 0
    while queued < count and not timed_out:
        p = producers[i % nprod]
        part = i % nparts
        i += 1
        todo = chunk if count - queued >= CHUNK else chunk[: count - queued]
        while todo:
            try:
                n = p.produce_batch(topic, todo, partition=part)
            except BufferError:
                n = 0
            except KafkaException as exc:  # reported, not raised
                errors.append(str(exc))
                timed_out = True
                break
            queued += n
            if n == len(todo):
                break
            todo = [{"value": payload} for _ in range(len(todo) - n)]
            p.poll(0.005)  # queue full: let deliveries drain
            if now() > deadline:
                timed_out = True
                break
        p.poll(0)
    left = 0
    for p in producers:
        left += p.flush(max(0.1, deadline - now()))
    elapsed = now() - t0
    timed_out = timed_out or left > 0
    sent = queued - left - errors_n[0]
    return {
        "count": sent,
        "bytes": sent * size,
        "elapsed_s": elapsed,
        "msgs_per_s": sent / elapsed if elapsed else 0.0,
        "mb_per_s": sent * size / elapsed / 1e6 if elapsed else 0.0,
        "errors": errors_n[0],
        "error_samples": errors,
        "timed_out": timed_out,
    }


def _consumer(job: Job, **extra: Any) -> Any:
    from confluent_kafka import Consumer

    return Consumer(
        {
            **_ck_common(job),
            "group.id": job.get("group", "kbroker-bench"),
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            **extra,
        }
    )


def _assign(c: Any, topic: str, nparts: int, offset: int) -> None:
    from confluent_kafka import TopicPartition

    c.assign([TopicPartition(topic, p, offset) for p in range(nparts)])


def consume(job: Job) -> Result:
    from confluent_kafka import OFFSET_BEGINNING

    count, nparts = int(job["count"]), int(job.get("partitions", 1))
    deadline = now() + float(job["deadline_s"])
    # A consumer faster than the Python loop draining it fills librdkafka's local queue,
    # and librdkafka then pauses fetching for fetch.queue.backoff.ms (default 1000 ms):
    # a client artefact that punishes the faster broker.  Keep the pause short.
    c = _consumer(job, **{"fetch.queue.backoff.ms": 5})
    got = nbytes = errs = 0
    first_err = ""
    try:
        c.list_topics(job["topic"], timeout=10)
        t0 = now()
        _assign(c, job["topic"], nparts, OFFSET_BEGINNING)
        last = now()
        while got < count and now() < deadline and now() - last < STALL_S:
            before = got
            for m in c.consume(num_messages=10_000, timeout=0.2):
                e = m.error()
                if e is not None:
                    errs += 1
                    first_err = first_err or str(e)
                    continue
                got += 1
                nbytes += len(m)
            if got > before:
                last = now()
        elapsed = now() - t0
    finally:
        c.close()
    return {
        "count": got,
        "bytes": nbytes,
        "elapsed_s": elapsed,
        "msgs_per_s": got / elapsed if elapsed else 0.0,
        "mb_per_s": nbytes / elapsed / 1e6 if elapsed else 0.0,
        "errors": errs,
        "error_samples": [first_err] if first_err else [],
        "timed_out": got < count,
    }


def _paced(
    rate: float,
    duration_s: float,
    step: Callable[[int], None],
    idle: Callable[[float], None],
    deadline: float = float("inf"),
) -> int:
    """Call ``step(i)`` at ``rate`` per second for ``duration_s``; ``idle(t)`` waits up to t s.

    Stops early at ``deadline`` (a ``now()`` value); returns how many steps ran."""
    n = int(rate * duration_s)
    t0 = now()
    for i in range(n):
        if now() > deadline:
            return i
        due = t0 + i / rate
        while True:
            wait = due - now()
            if wait <= 0:
                break
            idle(min(wait, 0.005))
        step(i)
    return n


def latency(job: Job) -> Result:
    from confluent_kafka import Producer

    size, rate, duration = int(job["size"]), float(job["rate"]), float(job["duration_s"])
    p = Producer({**_ck_common(job), "acks": "all", "linger.ms": 0, "enable.idempotence": False})
    p.list_topics(job["topic"], timeout=10)
    payload = _payload(size)
    samples: list[float] = []
    errs = [0]

    def step(i: int) -> None:
        t = now()

        def cb(err: Any, msg: Any, t: float = t) -> None:
            if err is None:
                samples.append(now() - t)
            else:
                errs[0] += 1

        p.produce(job["topic"], payload, partition=0, on_delivery=cb)
        p.poll(0)

    sent = _paced(rate, duration, step, p.poll)
    left = p.flush(10)
    out = _percentiles(samples[len(samples) // 10 :])  # drop the first 10% (warm-up)
    return {**out, "sent": sent, "errors": errs[0], "timed_out": left > 0}


def _e2e(job: Job, rate: float, duration: float, consumer_extra: dict[str, Any], wait_each: bool) -> Result:
    """Shared body of ``e2e`` and ``wakeup``: paced sends, a consumer thread timing arrivals."""
    from confluent_kafka import OFFSET_BEGINNING, Producer

    size = max(16, int(job["size"]))
    topic = job["topic"]
    p = Producer({**_ck_common(job), "acks": "all", "linger.ms": 0, "enable.idempotence": False})
    p.list_topics(topic, timeout=10)
    c = _consumer(job, **consumer_extra)
    _assign(c, topic, 1, OFFSET_BEGINNING)
    samples: list[float] = []
    arrived = threading.Event()
    stop = threading.Event()
    pad = _payload(size - 16)
    stamp = struct.Struct(">dq")

    def consumer_loop() -> None:
        while not stop.is_set():
            # poll(), not consume(n, timeout): consume() holds messages back until it
            # has n of them or the timeout passes, which would be measured as latency.
            m = c.poll(0.1)
            if m is not None and m.error() is None:
                t_recv = now()
                t_sent, _ = stamp.unpack_from(m.value())
                samples.append(t_recv - t_sent)
                arrived.set()

    # Warm-up: one message through the whole path before anything is timed.
    p.produce(topic, stamp.pack(now(), -1) + pad, partition=0)
    p.flush(10)
    th = threading.Thread(target=consumer_loop, daemon=True)
    th.start()
    if not arrived.wait(15):
        stop.set()
        th.join(5)
        c.close()
        return {**_percentiles([]), "sent": 0, "timed_out": True}
    time.sleep(0.3)  # let the consumer settle into its long poll
    samples.clear()
    deadline = now() + float(job["deadline_s"])

    def step(i: int) -> None:
        arrived.clear()
        p.produce(topic, stamp.pack(now(), i) + pad, partition=0)
        p.poll(0)
        if wait_each:
            p.flush(5)
            arrived.wait(max(0.0, min(10.0, deadline - now())))

    sent = _paced(rate, duration, step, p.poll, deadline)
    p.flush(10)
    end = now() + 10
    while len(samples) < sent and now() < end:
        time.sleep(0.01)
    stop.set()
    th.join(5)
    c.close()
    s = samples[len(samples) // 10 :] if not wait_each else samples
    return {**_percentiles(s), "sent": sent, "received": len(samples), "timed_out": len(samples) < sent}


def e2e(job: Job) -> Result:
    return _e2e(job, float(job["rate"]), float(job["duration_s"]), {}, wait_each=False)


def wakeup(job: Job) -> Result:
    # One at a time, 20 per second: between two messages the consumer has nothing to
    # read, so its Fetch is parked in the broker's long poll (fetch.min.bytes=1,
    # fetch.wait.max.ms=1000) and only the produce can wake it up early.  A broker that
    # does not wake parked fetches shows up as latencies near 1000 ms (or a fraction).
    n = int(job["count"])
    return _e2e(
        job,
        20.0,
        n / 20.0,
        {"fetch.wait.max.ms": 1000, "fetch.min.bytes": 1},
        wait_each=True,
    )


# --------------------------------------------------------------------------- aiokafka
def aiokafka_produce(job: Job) -> Result:
    async def run() -> Result:
        from aiokafka import AIOKafkaProducer

        count, size, nparts = int(job["count"]), int(job["size"]), int(job.get("partitions", 1))
        prod = AIOKafkaProducer(
            bootstrap_servers=job["bootstrap"], acks="all", linger_ms=5, max_batch_size=1_000_000
        )
        await prod.start()
        await prod.partitions_for(job["topic"])  # metadata before the clock starts
        payload = _payload(size)
        errs = 0
        try:
            t0 = now()
            futs = []
            for i in range(count):
                futs.append(await prod.send(job["topic"], payload, partition=i % nparts))
                if len(futs) >= 20_000:
                    for r in await asyncio.gather(*futs, return_exceptions=True):
                        errs += isinstance(r, BaseException)
                    futs.clear()
            for r in await asyncio.gather(*futs, return_exceptions=True):
                errs += isinstance(r, BaseException)
            elapsed = now() - t0
        finally:
            await prod.stop()
        sent = count - errs
        return _rate(sent, sent * size, elapsed, errs)

    return _bounded(run(), float(job["deadline_s"]))


def aiokafka_consume(job: Job) -> Result:
    async def run() -> Result:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        count, nparts = int(job["count"]), int(job.get("partitions", 1))
        c = AIOKafkaConsumer(bootstrap_servers=job["bootstrap"], group_id=None, enable_auto_commit=False)
        await c.start()
        got = nbytes = 0
        try:
            t0 = now()
            tps = [TopicPartition(job["topic"], p) for p in range(nparts)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            last = now()
            while got < count and now() - last < STALL_S:
                batch = await c.getmany(timeout_ms=200, max_records=10_000)
                for msgs in batch.values():
                    got += len(msgs)
                    nbytes += sum(len(m.value) for m in msgs)
                    last = now()
            elapsed = now() - t0
        finally:
            await c.stop()
        out = _rate(got, nbytes, elapsed, 0)
        out["timed_out"] = got < count
        return out

    return _bounded(run(), float(job["deadline_s"]))


def _bounded(coro: Any, deadline_s: float) -> Result:
    async def wrapped() -> Result:
        return await asyncio.wait_for(coro, deadline_s)

    try:
        return asyncio.run(wrapped())
    except TimeoutError:
        return {"timed_out": True, "count": 0, "msgs_per_s": 0.0, "mb_per_s": 0.0}


def _rate(n: int, nbytes: int, elapsed: float, errs: int) -> Result:
    return {
        "count": n,
        "bytes": nbytes,
        "elapsed_s": elapsed,
        "msgs_per_s": n / elapsed if elapsed else 0.0,
        "mb_per_s": nbytes / elapsed / 1e6 if elapsed else 0.0,
        "errors": errs,
        "timed_out": False,
    }


# --------------------------------------------------------------------------- kafka-python
def kafka_python_produce(job: Job) -> Result:
    from kafka import KafkaProducer

    count, size, nparts = int(job["count"]), int(job["size"]), int(job.get("partitions", 1))
    deadline = float(job["deadline_s"])
    prod = KafkaProducer(
        bootstrap_servers=job["bootstrap"], acks="all", linger_ms=5, batch_size=1_000_000,
        max_block_ms=int(deadline * 1000),
    )
    payload = _payload(size)
    try:
        prod.partitions_for(job["topic"])
        t0 = now()
        futs = [prod.send(job["topic"], payload, partition=i % nparts) for i in range(count)]
        prod.flush(timeout=deadline)
        elapsed = now() - t0
        errs = sum(1 for f in futs if not f.succeeded())
    finally:
        prod.close(timeout=5)
    sent = count - errs
    out = _rate(sent, sent * size, elapsed, errs)
    out["timed_out"] = errs > 0
    return out


def kafka_python_consume(job: Job) -> Result:
    from kafka import KafkaConsumer, TopicPartition

    count, nparts = int(job["count"]), int(job.get("partitions", 1))
    deadline = now() + float(job["deadline_s"])
    c = KafkaConsumer(bootstrap_servers=job["bootstrap"], group_id=None, enable_auto_commit=False)
    got = nbytes = 0
    try:
        t0 = now()
        tps = [TopicPartition(job["topic"], p) for p in range(nparts)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        last = now()
        while got < count and now() < deadline and now() - last < STALL_S:
            for msgs in c.poll(timeout_ms=200, max_records=10_000).values():
                got += len(msgs)
                nbytes += sum(len(m.value) for m in msgs)
                last = now()
        elapsed = now() - t0
    finally:
        c.close()
    out = _rate(got, nbytes, elapsed, 0)
    out["timed_out"] = got < count
    return out


JOBS: dict[str, Callable[[Job], Result]] = {
    "produce": produce,
    "consume": consume,
    "latency": latency,
    "e2e": e2e,
    "wakeup": wakeup,
    "aiokafka-produce": aiokafka_produce,
    "aiokafka-consume": aiokafka_consume,
    "kafka-python-produce": kafka_python_produce,
    "kafka-python-consume": kafka_python_consume,
}


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    try:
        result = JOBS[job["op"]](job)
    except Exception as exc:  # report, don't crash: the orchestrator shows it
        result = {"failed": f"{type(exc).__name__}: {exc}", "timed_out": True}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
