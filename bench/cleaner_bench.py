"""Benchmark: the log cleaner's throughput, the event-loop stall it causes, and broker
start-up after many offset commits.

Run ``python bench/cleaner_bench.py [--mib N] [--commits N]`` from the repo root.  It
prints its figures and rewrites the "log cleaner" section of BENCHMARKS.md (other
sections are left alone); ``--no-write`` only prints.

1. Throughput: a compacted partition of ``--mib`` MiB (batches of 100 keyed records,
   100-byte values, 20,000 keys, 1 in 50 a tombstone; 8 MiB segments) is cleaned once
   (plan + offset map + rewrite + swap).  Compared with reading the same segment bytes
   with ``os.pread`` (4 MiB chunks) and with reading plus decoding every record
   (``decode_records``, the least any key-aware pass must do).  Page cache, no fsync
   on the reads; the cleaner fsyncs what it writes, as it must.
2. Event-loop stall: an asyncio loop runs a 1 ms ticker and records how late each tick
   fires: idle, while the cleaner builds the same partition on a worker thread, and
   in a worker process (the broker's set-up).  p50/p99/max lateness.
3. Start-up: an in-process broker takes ``--commits`` offset commits (OffsetCommit
   requests of 100 partitions each) into ``__consumer_offsets`` with 1 MiB segments,
   then restarts; start-up time and the topic's size are measured with the cleaner off
   and after the cleaner has compacted it.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kbroker.log import LogConfig, PartitionLog  # noqa: E402
from kbroker.log.cleaner import plan_clean  # noqa: E402
from kbroker.log.cleaner_manager import CleanerConfig, LogCleanerManager  # noqa: E402
from kbroker.log.swap import discard_cleaned  # noqa: E402
from kbroker.wire.records import decode_records, iter_batches, make_batch  # noqa: E402

from kbroker.log_cleaner import build_in_worker  # noqa: E402

SECTION = "log cleaner"
KEYS = 20_000
RECORDS_PER_BATCH = 100
VALUE_BYTES = 100
CHUNK = 4 * 1024 * 1024
# How long the stall measurement may run (bounded whatever the machine).
STALL_MAX_S = 120.0
TICK_S = 0.001


def build_partition(directory: str, mib: int) -> PartitionLog:
    cfg = LogConfig(segment_bytes=8 * 1024 * 1024, cleanup_policy="compact", file_delete_delay_ms=0)
    log = PartitionLog(directory, cfg, now_ms=0)
    target = mib * 1024 * 1024
    i = 0
    while log.size_bytes < target:
        keys = [b"key-%06d" % ((i * RECORDS_PER_BATCH + j) % KEYS) for j in range(RECORDS_PER_BATCH)]
        values = [
            None if (i + j) % 50 == 0 else (b"%08d" % i) * (VALUE_BYTES // 8) for j in range(RECORDS_PER_BATCH)
        ]
        log.append(make_batch(values, keys, timestamp_ms=i), leader_epoch=0, now_ms=0)
        i += 1
    log.roll(0)
    return log


def dirty_bytes(log: PartitionLog) -> int:
    return sum(s.size_bytes for s in log.segments[:-1])


def time_raw_read(log: PartitionLog) -> float:
    start = time.perf_counter()
    for seg in log.segments[:-1]:
        fd = os.open(seg.log_path, os.O_RDONLY)
        try:
            pos = 0
            while pos < seg.size_bytes:
                pos += len(os.pread(fd, CHUNK, pos))
        finally:
            os.close(fd)
    return time.perf_counter() - start


def time_read_decode(log: PartitionLog) -> float:
    start = time.perf_counter()
    for seg in log.segments[:-1]:
        with open(seg.log_path, "rb") as f:
            data = f.read()
        for view in iter_batches(data):
            decode_records(view)
    return time.perf_counter() - start


def bench_throughput(mib: int) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix="kbroker-cleaner-bench-")
    try:
        log = build_partition(os.path.join(root, "t-0"), mib)
        size = dirty_bytes(log)
        time_raw_read(log)  # warm the page cache
        raw = min(time_raw_read(log) for _ in range(3))
        decode = time_read_decode(log)
        manager = LogCleanerManager(root, CleanerConfig())
        start = time.perf_counter()
        outcome = manager.clean_now(("t", 0), log, now_ms=1)
        clean = time.perf_counter() - start
        assert outcome is not None
        after = sum(s.size_bytes for s in log.segments)
        log.close()
        mb = size / 1e6
        return {
            "mib": size / 2**20,
            "raw_mbs": mb / raw,
            "decode_mbs": mb / decode,
            "clean_mbs": mb / clean,
            "clean_s": clean,
            "after_mib": after / 2**20,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _ticker(stop: asyncio.Event, lateness: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + TICK_S
        await asyncio.sleep(TICK_S)
        lateness.append(max(0.0, loop.time() - due))


async def _measure_stall(log: PartitionLog | None, root: str, executor: Executor | None) -> list[float]:
    lateness: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stop, lateness))
    loop = asyncio.get_running_loop()
    if log is None:
        await asyncio.sleep(3.0)
    else:
        plan = plan_clean(log, 0, 1, force=True)
        assert plan is not None
        job = loop.run_in_executor(executor, build_in_worker, plan, CleanerConfig())
        outcome = await asyncio.wait_for(job, STALL_MAX_S)
        assert outcome is not None
        for group in outcome.groups:
            discard_cleaned(log.directory, group.base_offset)
    stop.set()
    await ticker
    return lateness


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def bench_stall(mib: int) -> dict[str, float]:
    root = tempfile.mkdtemp(prefix="kbroker-cleaner-stall-")
    try:
        log = build_partition(os.path.join(root, "t-0"), mib)
        out: dict[str, float] = {}
        idle = asyncio.run(_measure_stall(None, root, None))
        out["idle_p50"] = statistics.median(idle) * 1e3
        out["idle_p99"] = percentile(idle, 0.99) * 1e3
        out["idle_max"] = max(idle) * 1e3
        with ThreadPoolExecutor(1) as threads:
            busy = asyncio.run(_measure_stall(log, root, threads))
        out["thread_p50"] = statistics.median(busy) * 1e3
        out["thread_p99"] = percentile(busy, 0.99) * 1e3
        out["thread_max"] = max(busy) * 1e3
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as procs:
            procs.submit(int).result()  # the worker is up before the clock starts
            busy = asyncio.run(_measure_stall(log, root, procs))
        out["process_p50"] = statistics.median(busy) * 1e3
        out["process_p99"] = percentile(busy, 0.99) * 1e3
        out["process_max"] = max(busy) * 1e3
        log.close()
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_startup(commits: int) -> dict[str, float]:
    from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
    from kbroker.wire.messages.offset_commit_request import (
        OffsetCommitRequest,
        OffsetCommitRequestPartition,
        OffsetCommitRequestTopic,
    )

    from kbroker.metadata import OFFSETS_TOPIC
    from kbroker.testing import BrokerThread

    sys.path.insert(0, str(ROOT / "tests" / "broker"))
    from broker_harness import RawClient  # type: ignore[import-not-found]

    root = Path(tempfile.mkdtemp(prefix="kbroker-startup-bench-"))
    out: dict[str, float] = {}
    settings = {
        "offsets.topic.num.partitions": "5",
        "offsets.topic.segment.bytes": str(1024 * 1024),
        "log.cleaner.enable": "false",
        "log.cleaner.backoff.ms": "100",
    }
    try:
        bt = BrokerThread(root / "data", settings)
        bt.start()
        c = RawClient(bt.address)
        c.request(CreateTopicsRequest(topics=[CreatableTopic(name="t", num_partitions=100, replication_factor=1)]), 5)
        partitions = 100
        for i in range(commits // partitions):
            commit = OffsetCommitRequest(
                group_id=f"g{i % 20}",
                generation_id_or_member_epoch=-1,
                member_id="",
                retention_time_ms=-1,
                topics=[
                    OffsetCommitRequestTopic(
                        name="t",
                        partitions=[
                            OffsetCommitRequestPartition(partition_index=p, committed_offset=i)
                            for p in range(partitions)
                        ],
                    )
                ],
            )
            c.request(commit, 7)
        c.close()

        def offsets_bytes() -> int:
            assert bt.broker is not None
            total = 0
            for p in range(5):
                log = bt.broker.topics.log(OFFSETS_TOPIC, p)
                total += log.size_bytes if log is not None else 0
            return total

        for label in ("uncleaned", "cleaned"):
            if label == "cleaned":
                bt.settings["log.cleaner.enable"] = "true"
                bt.restart()
                broker = bt.broker
                assert broker is not None and broker.topics.cleaner is not None
                deadline = time.monotonic() + 600
                while time.monotonic() < deadline:
                    logs = broker.topics.logs
                    assert logs is not None
                    pending = [
                        k
                        for k, log in logs.logs.items()
                        if k[0] == OFFSETS_TOPIC
                        and len(log.segments) > 1
                        and broker.topics.cleaner.manager.first_dirty_offset(k) < log.active_segment.base_offset
                    ]
                    if not pending:
                        break
                    time.sleep(0.5)
            bt.stop()
            start = time.perf_counter()
            bt.start()
            out[f"{label}_startup_ms"] = (time.perf_counter() - start) * 1e3
            out[f"{label}_mib"] = offsets_bytes() / 2**20
        bt.close()
        out["commits"] = float(commits // partitions * partitions)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


def render(th: dict[str, float], st: dict[str, float], su: dict[str, float], mib: int) -> str:
    lines = [
        f"## {SECTION}",
        "",
        f"`python bench/cleaner_bench.py --mib {mib} --commits {int(su['commits'])}` on CPython "
        f"{platform.python_version()}, {platform.machine()}, a 2-core machine shared with other jobs "
        f"(figures vary by ~20%).  Partition bounded to {mib} MiB on this machine (the issue asks "
        "for 1 GiB; the cleaner's cost is linear in the bytes, so the MB/s and the stall "
        "distribution do not depend on the size).",
        "",
        "Throughput of one pass over the whole partition (plan, offset map, rewrite, fsync, swap):",
        "",
        "| partition MiB | pread MB/s | read + decode MB/s | cleaner MB/s | cleaner / pread | cleaner / read+decode | after MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        f"| {th['mib']:.0f} | {th['raw_mbs']:,.0f} | {th['decode_mbs']:,.0f} | {th['clean_mbs']:,.1f} "
        f"| {th['clean_mbs'] / th['raw_mbs']:.3f} | {th['clean_mbs'] / th['decode_mbs']:.2f} | {th['after_mib']:.1f} |",
        "",
        "Event-loop lateness of a 1 ms ticker (ms), idle and while the same partition is "
        "cleaned by a worker thread or by a worker process (the broker uses processes):",
        "",
        "| loop | p50 | p99 | max |",
        "|---|---:|---:|---:|",
        f"| idle | {st['idle_p50']:.2f} | {st['idle_p99']:.2f} | {st['idle_max']:.2f} |",
        f"| cleaner thread | {st['thread_p50']:.2f} | {st['thread_p99']:.2f} | {st['thread_max']:.2f} |",
        f"| cleaner process | {st['process_p50']:.2f} | {st['process_p99']:.2f} | {st['process_max']:.2f} |",
        "",
        f"Start-up after {int(su['commits']):,} offset commits (20 groups x 100 partitions, "
        "`__consumer_offsets` with 5 partitions of 1 MiB segments):",
        "",
        "| `__consumer_offsets` | size MiB | broker start-up ms |",
        "|---|---:|---:|",
        f"| cleaner off | {su['uncleaned_mib']:.1f} | {su['uncleaned_startup_ms']:,.0f} |",
        f"| after cleaning | {su['cleaned_mib']:.1f} | {su['cleaned_startup_ms']:,.0f} |",
        "",
        "Reading the figures against the issue's goals:",
        "",
        "- Cleaner MB/s vs reading: against a raw `pread` (page cache) the cleaner is far "
        "below the 0.3 goal -- a pass must look at every record's key, and CPython parses "
        "records at tens of MB/s while `pread` copies GB/s.  Against reading *and decoding* "
        "the same bytes (the least any key-aware pass does) it is at the ratio above: the key "
        "map pass only scans keys (four varints per record), and only batches that change are "
        "decoded in full and re-encoded.  Reaching 0.3 of `pread` would need the record "
        "scanning in C.",
        "- Event-loop stall: a cleaner *thread* holds the GIL while it parses, and the loop "
        "waits up to a switch interval (5 ms) per wake-up, more under CPU contention; the "
        "broker therefore runs passes in worker *processes* (`log.cleaner.threads` of "
        "them), which leaves the loop's p99 near its idle value.  The max includes the "
        "machine's own scheduling noise (see the idle row).",
        "- Start-up: `__consumer_offsets` replay reads every record of the topic, so start-up "
        "follows its size; after cleaning only the live keys (and the active segments) remain.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    doc = path.read_text()
    pattern = re.compile(rf"^## {re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _m: text + "\n", doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--commits", type=int, default=200_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    th = bench_throughput(args.mib)
    print("throughput", th, flush=True)
    st = bench_stall(args.mib)
    print("stall", st, flush=True)
    su = bench_startup(args.commits)
    print("startup", su, flush=True)
    text = render(th, st, su, args.mib)
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
