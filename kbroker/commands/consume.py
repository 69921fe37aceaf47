"""``kbroker consume TOPIC``: print records, kcat-style.

Without ``--group`` every partition (or the ``--partition`` ones) is assigned to this one
client, starting at the log end (or the log start with ``--from-beginning``).  With ``--group``
it starts at the group's committed offsets (partitions without one start as above) and commits
the position after what it printed, after every fetch and at exit, as a client outside the
group's membership (generation -1), which a broker accepts while the group has no members;
the command does not join the group (no rebalancing with other members).

Records of aborted transactions are printed as read_uncommitted consumers see them (the
Kafka consumer's default); control batches (transaction markers) are skipped.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kbroker.client.client import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, Client
from kbroker.client.connection import ClientError
from kbroker.commands.output import (
    ConsumedRecord,
    UsageError,
    compile_format,
    format_record,
    record_json,
)
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import decode_records, iter_batches

DEFAULT_FORMAT = "%v\\n"
FETCH_MAX_WAIT_MS = 500
FETCH_MAX_BYTES = 8 * 1024 * 1024
FETCH_PARTITION_MAX_BYTES = 1024 * 1024


def consume(args: argparse.Namespace) -> int:
    if args.num is not None and args.num < 0:
        raise UsageError("-n takes a count >= 0")
    parts = compile_format(args.format if args.format is not None else DEFAULT_FORMAT)
    out = sys.stdout.buffer
    printed = 0
    with Client(args.bootstrap, args.timeout) as client:
        info = client.topic(args.topic)
        partitions = sorted(info.partitions)
        if args.partition:
            missing = sorted(set(args.partition) - set(partitions))
            if missing:
                raise ClientError(f"topic {args.topic!r} has no partition {missing[0]}")
            partitions = sorted(set(args.partition))
        start = client.list_offsets(args.topic, partitions, EARLIEST_TIMESTAMP if args.from_beginning else LATEST_TIMESTAMP)
        positions = dict(start)
        committed: dict[int, int] = {}
        if args.group:
            found = client.committed_offsets(args.group, {args.topic: partitions})
            committed = {p: o for (t, p), o in found.items() if t == args.topic}
            positions.update(committed)
        # --exit: where each partition ended when we started, as the first Fetch answer's
        # high watermark says (kcat's end-of-partition, from librdkafka's Fetch-based EOF);
        # not ListOffsets, whose "latest" some brokers answer wrongly for multi-record batches.
        stop_at: dict[int, int] = {}
        try:
            while args.num is None or printed < args.num:
                if args.exit and len(stop_at) == len(partitions) and all(positions[p] >= stop_at[p] for p in partitions):
                    break
                answers = client.fetch(
                    args.topic, positions, max_wait_ms=FETCH_MAX_WAIT_MS, max_bytes=FETCH_MAX_BYTES,
                    partition_max_bytes=FETCH_PARTITION_MAX_BYTES,
                )
                for answer in answers:
                    p = answer.partition_index
                    if not answer.error_code:
                        stop_at.setdefault(p, answer.high_watermark)
                    if answer.error_code == ErrorCode.OFFSET_OUT_OF_RANGE:
                        reset = EARLIEST_TIMESTAMP if args.from_beginning else LATEST_TIMESTAMP
                        positions[p] = client.list_offsets(args.topic, [p], reset)[p]
                        continue
                    if answer.error_code:
                        from kbroker.client.connection import KafkaError

                        raise KafkaError(f"fetch from {args.topic}:{p}", answer.error_code)
                    for rec in _records(args.topic, p, answer.records, positions[p]):
                        if args.num is not None and printed >= args.num:
                            break
                        _print(out, parts, rec, args.json)
                        printed += 1
                        positions[p] = rec.offset + 1
                    else:
                        positions[p] = max(positions[p], _next_offset(answer.records, positions[p]))
                out.flush()
                if args.group:
                    _commit(client, args, positions, committed)
        finally:
            if args.group:
                _commit(client, args, positions, committed)
    return 0


def _commit(client: Client, args: argparse.Namespace, positions: dict[int, int], committed: dict[int, int]) -> None:
    changed = {(args.topic, p): o for p, o in positions.items() if committed.get(p) != o}
    if changed:
        client.commit_offsets(args.group, changed)
        committed.update({p: o for (_, p), o in changed.items()})


def _print(out: Any, parts: list[tuple[bool, str]], rec: ConsumedRecord, as_json: bool) -> None:
    if as_json:
        import json

        out.write(json.dumps(record_json(rec), sort_keys=True).encode() + b"\n")
    else:
        out.write(format_record(parts, rec))


def _records(topic: str, partition: int, data: bytes | None, position: int) -> list[ConsumedRecord]:
    """The data records at or after ``position`` in a Fetch answer's records."""
    found: list[ConsumedRecord] = []
    if not data:
        return found
    try:
        for batch in iter_batches(data):
            if batch.is_control or batch.last_offset < position:
                continue
            base, base_ts = batch.base_offset, batch.base_timestamp
            log_append = batch.timestamp_type == 1
            for r in decode_records(batch):
                offset = base + r.offset_delta
                if offset < position:
                    continue
                ts = batch.max_timestamp if log_append else base_ts + r.timestamp_delta
                found.append(ConsumedRecord(topic, partition, offset, ts, r.key, r.value, list(r.headers)))
    except DecodeError as exc:
        raise ClientError(f"unreadable record batch from {topic}:{partition}: {exc}") from None
    return found


def _next_offset(data: bytes | None, position: int) -> int:
    """Past the last whole batch of an answer (control batches included), so that a fetch
    holding only markers moves on."""
    last = position
    if data:
        for batch in iter_batches(data):
            last = max(last, batch.next_offset)
    return last
