"""Client-neutral test data and checks shared by every compat test.

Each client test turns its client's records into ``Got`` and what it sent into
``Sent``; the checks here are then the same for every client:

* content: every sent (key, value, headers) comes back exactly once;
* offsets: per partition, records arrive in strictly increasing offset order,
  contiguous from 0 (fresh topic, no transactions, so no control records);
* keys: one key → one partition, and within it the produce order;
* timestamps: the producer's explicit CreateTime comes back unchanged, or, for a
  client that stamps the time itself, lies within the produce window;
* ListOffsets by time: the answer equals the first offset whose timestamp is
  at or after the query time, computed from what was consumed.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PARTITIONS = 3
# Generous slack for a client stamping CreateTime itself (same host, same clock).
CLOCK_SLACK_MS = 2_000

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class Sent:
    seq: int
    key: bytes
    value: bytes
    headers: Headers
    timestamp: int | None  # None: the client stamps the time itself


@dataclass(frozen=True, slots=True)
class Got:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp: int
    timestamp_type: int | None = None  # 0 CreateTime, 1 LogAppendTime; None if the client hides it


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def unique_topic(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_messages(
    tag: str,
    count: int = 60,
    keys: int = 12,
    *,
    explicit_timestamps: bool = True,
    printable: bool = False,
) -> list[Sent]:
    """Distinct, keyed, compressible messages with headers.

    Explicit timestamps lie two minutes in the past, 3 ms apart, increasing in
    produce order (unique, so ListOffsets by time has exactly one right answer).
    ``printable`` keeps keys, values and headers free of newlines and binary bytes
    (for line-oriented tools like kcat).
    """
    base = now_ms() - 120_000
    out = []
    for seq in range(count):
        key = f"key-{seq % keys:02d}".encode()
        filler = b"kbroker compat payload " * (1 + seq % 5)
        value = f"{tag}|{seq:05d}|".encode() + filler
        headers: Headers
        if printable:
            headers = (("seq", str(seq).encode()), ("tag", tag.encode()))
        else:
            value += bytes(range(seq % 7, 256, 37))
            headers = (
                ("seq", str(seq).encode()),
                ("tag", tag.encode()),
                ("bin", bytes([seq % 256, 0, 255])),
                ("empty", b""),
            )
        ts = base + 3 * seq if explicit_timestamps else None
        out.append(Sent(seq, key, value, headers, ts))
    return out


def check_roundtrip(
    sent: list[Sent],  # in produce order
    got: list[Got],
    partitions: int = PARTITIONS,
    produce_window: tuple[int, int] | None = None,
    check_headers: bool = True,
) -> dict[int, list[Got]]:
    """Assert everything in the module docstring; return the records by partition."""

    def ident(key: bytes | None, value: bytes | None, headers: Headers) -> tuple[object, ...]:
        return (key, value, headers if check_headers else ())

    want = Counter(ident(s.key, s.value, s.headers) for s in sent)
    have = Counter(ident(g.key, g.value, g.headers) for g in got)
    missing = want - have
    extra = have - want
    assert not missing and not extra, (
        f"content differs: {sum(missing.values())} missing (e.g. {list(missing)[:2]}), "
        f"{sum(extra.values())} unexpected/duplicated (e.g. {list(extra)[:2]})"
    )

    by_partition: dict[int, list[Got]] = defaultdict(list)
    for g in got:
        assert 0 <= g.partition < partitions, f"record from partition {g.partition} of {partitions}"
        by_partition[g.partition].append(g)
    for p, recs in by_partition.items():
        offsets = [r.offset for r in recs]
        assert offsets == sorted(set(offsets)), (
            f"partition {p}: offsets not strictly increasing: {offsets}"
        )
        assert offsets == list(range(len(offsets))), (
            f"partition {p}: offsets not contiguous from 0: {offsets}"
        )
    assert len(by_partition) > 1, (
        "all keys landed in one partition; the topic is not really partitioned"
    )

    by_value = {s.value: s for s in sent}
    produce_order = {s.value: i for i, s in enumerate(sent)}  # ``sent`` is in produce order
    key_partition: dict[bytes | None, int] = {}
    key_order: dict[bytes | None, list[int]] = defaultdict(list)
    for p in sorted(by_partition):
        for r in by_partition[p]:
            assert key_partition.setdefault(r.key, p) == p, (
                f"key {r.key!r} in partitions {key_partition[r.key]} and {p}"
            )
            key_order[r.key].append(produce_order[r.value])
    for key, order in key_order.items():
        assert order == sorted(order), (
            f"key {key!r}: in offset order the records are produce numbers {order}"
        )

    for g in got:
        s = by_value[g.value]
        if g.timestamp_type is not None:
            assert g.timestamp_type == 0, (
                f"offset {g.partition}/{g.offset}: not CreateTime ({g.timestamp_type})"
            )
        if s.timestamp is not None:
            assert g.timestamp == s.timestamp, (
                f"seq {s.seq}: timestamp {g.timestamp}, produced with {s.timestamp}"
            )
        elif produce_window is not None:
            lo, hi = produce_window
            assert lo - CLOCK_SLACK_MS <= g.timestamp <= hi + CLOCK_SLACK_MS, (
                f"seq {s.seq}: timestamp {g.timestamp} outside the produce window {produce_window}"
            )
    return dict(by_partition)


def offset_for_time(recs: list[Got], ts: int) -> int | None:
    """Kafka's ListOffsets(timestamp) answer: the first offset with timestamp >= ts."""
    for r in recs:
        if r.timestamp >= ts:
            return r.offset
    return None


@dataclass(frozen=True, slots=True)
class TimeQuery:
    partition: int
    timestamp: int
    expected: int | None  # None: no such record; the broker answers offset -1


def time_queries(by_partition: dict[int, list[Got]]) -> list[TimeQuery]:
    """Per partition: a time before everything, one in the middle, one after everything."""
    out = []
    for p, recs in sorted(by_partition.items()):
        mid = recs[len(recs) // 2]
        stamps = [r.timestamp for r in recs]
        for ts in (min(stamps) - 1_000, mid.timestamp, max(stamps) + 1_000):
            out.append(TimeQuery(p, ts, offset_for_time(recs, ts)))
    return out


def check_time_answers(
    queries: Iterable[TimeQuery], answer: Callable[[TimeQuery], int | None]
) -> None:
    """``answer`` maps a query to the client's offset; None or -1 both mean 'no such record'."""
    wrong = []
    for q in queries:
        a = answer(q)
        if a == -1:
            a = None
        if a != q.expected:
            wrong.append(f"partition {q.partition} @ {q.timestamp}: got {a}, want {q.expected}")
    assert not wrong, "ListOffsets by time: " + "; ".join(wrong)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    """Bounded wait on a black-box broker's externally visible state."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def check_acks(acked: dict[bytes, tuple[int, int]], by_partition: dict[int, list[Got]]) -> None:
    """The (partition, offset) each produce acknowledgement reported is where the record is."""
    where = {g.value: (g.partition, g.offset) for recs in by_partition.values() for g in recs}
    wrong = {v: (a, where.get(v)) for v, a in acked.items() if where.get(v) != a}
    assert not wrong, f"{len(wrong)} acks disagree with the log, e.g. {list(wrong.items())[:3]}"


def consume_bounded(poll: Callable[[], list[Got]], want: int, timeout: float = 20.0) -> list[Got]:
    """Call ``poll`` until ``want`` records arrived or ``timeout`` passed; return what came."""
    got: list[Got] = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        got.extend(poll())
    return got
