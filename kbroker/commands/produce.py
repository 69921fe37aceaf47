"""``kbroker produce TOPIC``: every line of stdin becomes one record.

Lines are read as they arrive (``os.read`` on stdin), and what one read delivered is sent at
once, grouped into one record batch per partition, at most :data:`MAX_BATCH_RECORDS` records
or :data:`MAX_BATCH_BYTES` bytes per request: ``kbroker produce t < file`` streams the file
and an interactive session sends each line when Enter is pressed.  The line's trailing
``\\n`` (and ``\\r``) is not part of the value.

Partitioning follows Kafka's default partitioner: a keyed record goes to
``murmur2(key) & 0x7fffffff % partitions`` (so the Java client, librdkafka's
``murmur2_random`` and this command agree); unkeyed records of one request go together to one
partition picked at random (the "sticky" idea, per request).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from typing import Any

from kbroker.client.client import Client
from kbroker.commands.output import emit_json, parse_kv
from kbroker.wire.records import build_record_batch

MAX_BATCH_RECORDS = 10_000
MAX_BATCH_BYTES = 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024
# A line longer than this is refused rather than buffered without bound.
MAX_LINE_BYTES = 64 * 1024 * 1024
PROGRESS_INTERVAL_S = 1.0


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 hash of ``data`` (unsigned 32-bit), as its default partitioner uses."""
    m = 0x5BD1E995
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    end4 = length - length % 4
    for i in range(0, end4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[end4 + 2] << 16
    if rest >= 2:
        h ^= data[end4 + 1] << 8
    if rest >= 1:
        h ^= data[end4]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def split_line(line: bytes, separator: bytes | None) -> tuple[bytes | None, bytes]:
    """(key, value) of one input line (without its newline)."""
    if separator is None:
        return None, line
    key, sep, value = line.partition(separator)
    if not sep:
        return None, line
    return key, value


class Progress:
    """Counts, and says so on stderr at most once per interval while stderr is a terminal."""

    def __init__(self, what: str, enabled: bool) -> None:
        self.what = what
        self.enabled = enabled
        self.count = 0
        self._last = time.monotonic()

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if self.enabled and now - self._last >= PROGRESS_INTERVAL_S:
            self._last = now
            sys.stderr.write(f"\r{self.count} {self.what}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.count:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def produce(args: argparse.Namespace) -> int:
    headers: list[tuple[str, bytes | None]] = [(k, v.encode()) for k, v in parse_kv(args.header, "--header").items()]
    separator = args.key_separator.encode() if args.key_separator else None
    fd = sys.stdin.fileno()
    summary: dict[int, list[int]] = {}  # partition -> [records, first offset, last offset]
    progress = Progress("records produced", sys.stderr.isatty())
    with Client(args.bootstrap, args.timeout) as client:
        info = client.topic(args.topic)
        count = len(info.partitions)
        if args.partition is not None and args.partition not in info.partitions:
            from kbroker.client.connection import KafkaError
            from kbroker.wire.errors import ErrorCode

            raise KafkaError(f"topic {args.topic!r} partition {args.partition}", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        pending = b""
        while True:
            chunk = os.read(fd, READ_CHUNK_BYTES)
            if chunk:
                data = pending + chunk
                cut = data.rfind(b"\n") + 1
                lines, pending = data[:cut].split(b"\n")[:-1], data[cut:]
                if len(pending) > MAX_LINE_BYTES:
                    from kbroker.client.connection import ClientError

                    raise ClientError(f"an input line is longer than {MAX_LINE_BYTES} bytes")
            else:
                lines, pending = ([pending] if pending else []), b""
            if lines:
                sent = _send(client, args, count, [line.removesuffix(b"\r") for line in lines], separator, headers)
                for p, (n, first, last) in sent.items():
                    row = summary.setdefault(p, [0, first, last])
                    row[0] += n
                    row[2] = last
                progress.add(sum(n for n, _, _ in sent.values()))
            if not chunk:
                break
    progress.done()
    total = sum(r[0] for r in summary.values())
    shape: dict[str, Any] = {
        "topic": args.topic,
        "records": total,
        "partitions": [
            {"partition": p, "records": r[0], "first_offset": r[1], "last_offset": r[2]} for p, r in sorted(summary.items())
        ],
    }
    if args.json:
        emit_json(shape)
    else:
        where = ", ".join(f"{p} (offsets {r[1]}-{r[2]})" for p, r in sorted(summary.items())) or "-"
        print(f"produced {total} record(s) to {args.topic}, partition(s) {where}", file=sys.stderr)
    return 0


def _send(
    client: Client, args: argparse.Namespace, partitions: int, lines: list[bytes],
    separator: bytes | None, headers: list[tuple[str, bytes | None]],
) -> dict[int, tuple[int, int, int]]:
    """Produce ``lines``; partition -> (records, first offset, last offset)."""
    sticky = random.randrange(partitions)
    now = int(time.time() * 1000)
    by_partition: dict[int, list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]]] = {}
    for line in lines:
        key, value = split_line(line, separator)
        if args.partition is not None:
            p = args.partition
        elif key is not None:
            p = partition_for(key, partitions)
        else:
            p = sticky
        by_partition.setdefault(p, []).append((key, value, headers, now))
    out: dict[int, tuple[int, int, int]] = {}
    # Requests of at most MAX_BATCH_RECORDS / MAX_BATCH_BYTES per partition.
    while by_partition:
        batches: dict[int, bytes] = {}
        sizes: dict[int, int] = {}
        for p in list(by_partition):
            records = by_partition[p]
            take, size = 0, 0
            while take < len(records) and take < MAX_BATCH_RECORDS and (take == 0 or size < MAX_BATCH_BYTES):
                size += len(records[take][1] or b"") + len(records[take][0] or b"") + 16
                take += 1
            batches[p] = bytes(build_record_batch(records[:take]))
            sizes[p] = take
            if take == len(records):
                del by_partition[p]
            else:
                by_partition[p] = records[take:]
        bases = client.produce(args.topic, batches, acks=args.acks)
        for p, n in sizes.items():
            base = bases.get(p, -1)
            prev = out.get(p)
            out[p] = (n + (prev[0] if prev else 0), prev[1] if prev else base, base + n - 1 if base >= 0 else -1)
    return out
