"""A writer that remembers what it wrote, and the consumer's read_committed view of a log.

Shared by the cleaner tests (plain module, imported by file path through conftest's
``cm`` fixture: the test tree uses importlib mode).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kbroker.log import AppendOrigin, PartitionLog
from kbroker.wire.compression import Compression
from kbroker.wire.records import (
    ControlRecordType,
    build_control_batch,
    decode_records,
    iter_batches,
    make_batch,
    parse_control_record,
)

TXN_PID = 7
IDEMPOTENT_PID = 9


@dataclass
class Written:
    offset: int
    key: bytes | None
    value: bytes | None
    txn: int  # -1: not transactional; else the index of its transaction
    time_ms: int


@dataclass
class Writer:
    """Appends keyed records and remembers them, with one transactional and one
    idempotent producer (sequences kept)."""

    log: PartitionLog
    records: dict[int, Written] = field(default_factory=dict)
    txn_outcome: dict[int, bool | None] = field(default_factory=dict)  # None: open
    current_txn: int = -1
    txn_seq: int = 0
    idem_seq: int = 0
    now_ms: int = 0

    def put(
        self,
        pairs: list[tuple[bytes | None, bytes | None]],
        *,
        codec: Compression = Compression.NONE,
        mode: str = "plain",
    ) -> int:
        """Append one batch; ``mode`` is plain, txn (inside the open transaction,
        opening one if needed) or idempotent.  Returns its base offset."""
        kwargs: dict[str, object] = {"compression": codec}
        txn = -1
        if mode == "txn":
            if self.current_txn < 0:
                self.current_txn = len(self.txn_outcome)
                self.txn_outcome[self.current_txn] = None
            txn = self.current_txn
            kwargs.update(
                producer_id=TXN_PID,
                producer_epoch=0,
                base_sequence=self.txn_seq,
                is_transactional=True,
            )
            self.txn_seq += len(pairs)
        elif mode == "idempotent":
            kwargs.update(producer_id=IDEMPOTENT_PID, producer_epoch=0, base_sequence=self.idem_seq)
            self.idem_seq += len(pairs)
        batch = make_batch(
            [v for _, v in pairs], [k for k, _ in pairs], timestamp_ms=self.now_ms, **kwargs
        )
        r = self.log.append(batch, leader_epoch=1, now_ms=self.now_ms)
        for i, (k, v) in enumerate(pairs):
            self.records[r.base_offset + i] = Written(r.base_offset + i, k, v, txn, self.now_ms)
        return r.base_offset

    def end_txn(self, commit: bool) -> int | None:
        if self.current_txn < 0:
            return None
        marker = build_control_batch(
            ControlRecordType.COMMIT if commit else ControlRecordType.ABORT,
            producer_id=TXN_PID,
            producer_epoch=0,
            coordinator_epoch=0,
            timestamp_ms=self.now_ms,
        )
        r = self.log.append(
            marker, leader_epoch=1, now_ms=self.now_ms, origin=AppendOrigin.COORDINATOR
        )
        self.txn_outcome[self.current_txn] = commit
        self.current_txn = -1
        return r.base_offset

    def expected_latest(self, below: int) -> dict[bytes, Written]:
        """Latest committed (or non-transactional) record per key below ``below``."""
        latest: dict[bytes, Written] = {}
        for offset in sorted(self.records):
            w = self.records[offset]
            if offset >= below or w.key is None:
                continue
            if w.txn >= 0 and self.txn_outcome[w.txn] is not True:
                continue
            latest[w.key] = w
        return latest


def scan_batches(log: PartitionLog) -> list:
    """Every batch view of the log's files, in order (copies: safe to keep)."""
    out = []
    for seg in log.segments:
        with open(seg.log_path, "rb") as f:
            data = f.read()[: seg.size_bytes]
        out += [type(v)(bytes(v.buffer())) for v in iter_batches(data)]
    return out


def read_committed(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """What a read_committed consumer from offset 0 gets: (offset, key, value), using
    the log's reads (indexes) and its aborted-transaction answers like Kafka's
    consumer does (consumeAbortedTransactionsUpTo)."""
    offset = log.log_start_offset
    lso = log.last_stable_offset
    raw = bytearray()
    while offset < lso:
        s = log.read(offset, 1 << 20, max_offset=lso)
        if s.next_offset <= offset:
            break
        raw += s.records
        offset = s.next_offset
    aborted = sorted(log.aborted_transactions(log.log_start_offset, lso), key=lambda t: t[1])
    out: list[tuple[int, bytes | None, bytes | None]] = []
    active: set[int] = set()
    seen = -1
    for view in iter_batches(bytes(raw)):
        if view.last_offset <= seen:
            continue
        seen = view.last_offset
        while aborted and aborted[0][1] <= view.last_offset:
            active.add(aborted.pop(0)[0])
        records = decode_records(view)
        if view.is_control:
            if records and parse_control_record(records[0])[0] == ControlRecordType.ABORT:
                active.discard(view.producer_id)
            continue
        if view.is_transactional and view.producer_id in active:
            continue
        out += [(view.base_offset + r.offset_delta, r.key, r.value) for r in records]
    return out
