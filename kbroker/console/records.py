"""The console's message browser: a bounded page of records of one partition, decoded for display.

Theory of operation: a page is read straight from the partition log on the event loop, so
every read is bounded twice: at most :data:`MAX_RECORDS_PER_PAGE` records and at most
:data:`MAX_READ_BYTES` bytes of stored batches (read in :data:`READ_CHUNK_BYTES` slices), and
each batch is decompressed up to :data:`MAX_DECOMPRESSED_BYTES`.  Only what is shown is
kept: keys, values and header values are cut at :data:`MAX_SHOWN_BYTES`.

Where a page starts: the newest records by default (the last ``MAX_RECORDS_PER_PAGE``
offsets below the high watermark), else from an offset, or from the first record whose
timestamp is at or after a time (ListOffsets' rule).  A page whose offsets hold no data
(a compacted stretch, or transaction markers) may show fewer records than it could.

Transactions: control batches show as COMMIT/ABORT markers; data records of a transaction
that was aborted are flagged "aborted", found as a read_committed consumer finds them (the
partition's aborted-transaction index lists (producer id, first offset); a producer's records
from that first offset up to its ABORT marker are aborted); records at or past the last
stable offset are flagged "open" (their transaction has not ended yet).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from kbroker.log import PartitionLog
from kbroker.log.errors import LogError
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import (
    ControlRecordType,
    decode_records,
    iter_batches,
    parse_control_record,
)

# Records on one page of the browser.
MAX_RECORDS_PER_PAGE = 50
# Stored batch bytes one page may read from the log, and the size of each read.
MAX_READ_BYTES = 4 * 1024 * 1024
READ_CHUNK_BYTES = 512 * 1024
# A compressed batch is inflated up to this many bytes for display (else it is reported).
MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024
# Bytes of a key, value or header value kept for display.
MAX_SHOWN_BYTES = 4096
# Bytes per line of a hex rendering.
HEX_LINE_BYTES = 16

FORMATS = ("auto", "text", "json", "hex")


@dataclass(slots=True)
class Shown:
    """A key, value or header value as the page shows it."""

    text: str
    kind: str  # "null", "text", "json", "hex"
    size_bytes: int
    truncated: bool = False


@dataclass(slots=True)
class RecordRow:
    offset: int
    timestamp_ms: int
    key: Shown
    value: Shown
    headers: list[tuple[str, Shown]] = field(default_factory=list)
    marker: str | None = None  # "COMMIT" / "ABORT" for a control record
    status: str = ""  # "", "aborted", "open"
    producer_id: int = -1
    transactional: bool = False


@dataclass(slots=True)
class RecordPage:
    records: list[RecordRow]
    start_offset: int  # where reading began
    next_offset: int  # the first offset after what was read
    log_start_offset: int
    high_watermark: int
    last_stable_offset: int
    bytes_read: int
    stopped_by: str = ""  # "", "records", "bytes": which bound ended the page early
    problem: str = ""  # a batch that could not be decoded, shown instead of crashing


def render_bytes(data: bytes | None, fmt: str) -> Shown:
    """``data`` as text, pretty JSON or a hex dump; ``auto`` picks JSON, then text, then hex."""
    if data is None:
        return Shown("null", "null", 0)
    size = len(data)
    truncated = size > MAX_SHOWN_BYTES
    cut = data[:MAX_SHOWN_BYTES]
    if fmt == "hex":
        return Shown(_hex(cut), "hex", size, truncated)
    text: str | None
    try:
        text = cut.decode("utf-8")
    except UnicodeDecodeError:
        text = None if fmt == "auto" else cut.decode("utf-8", errors="replace")
    if fmt in ("auto", "json") and text is not None and not truncated:
        try:
            parsed = json.loads(text)
        except ValueError:
            pass
        else:
            if fmt == "json" or isinstance(parsed, (dict, list)):
                return Shown(json.dumps(parsed, indent=2, ensure_ascii=False), "json", size)
    if text is None or (fmt == "auto" and not all(c.isprintable() or c in "\t\n\r" for c in text)):
        return Shown(_hex(cut), "hex", size, truncated)
    return Shown(text, "text", size, truncated)


def _hex(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), HEX_LINE_BYTES):
        chunk = data[i : i + HEX_LINE_BYTES]
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{i:08x}  {chunk.hex(' '):<{HEX_LINE_BYTES * 3 - 1}}  {ascii_}")
    return "\n".join(lines)


def first_offset(log: PartitionLog, *, offset: int | None, timestamp_ms: int | None) -> int:
    """Where a page starts: ``offset`` (clamped to the log), the first record at or after
    ``timestamp_ms`` (the high watermark when there is none), or the newest records."""
    start, hw = log.log_start_offset, log.high_watermark
    if offset is not None:
        return min(max(offset, start), hw)
    if timestamp_ms is not None:
        found = log.offset_for_timestamp(max(timestamp_ms, 0))
        return hw if found is None else min(max(found.offset, start), hw)
    return max(start, hw - MAX_RECORDS_PER_PAGE)


def read_page(log: PartitionLog, start_offset: int, fmt: str = "auto") -> RecordPage:
    """Up to :data:`MAX_RECORDS_PER_PAGE` records from ``start_offset`` (see the module doc)."""
    hw, lso = log.high_watermark, log.last_stable_offset
    page = RecordPage([], start_offset, start_offset, log.log_start_offset, hw, lso, 0)
    if start_offset >= hw:
        return page
    aborted_from: dict[int, list[int]] = {}
    for producer_id, first in log.aborted_transactions(start_offset, hw):
        aborted_from.setdefault(producer_id, []).append(first)
    in_aborted: set[int] = set()  # producers whose current transaction was aborted
    offset = start_offset
    while offset < hw:
        if page.bytes_read >= MAX_READ_BYTES:
            page.stopped_by = "bytes"
            break
        try:
            chunk = log.read(offset, min(READ_CHUNK_BYTES, MAX_READ_BYTES - page.bytes_read))
        except LogError as exc:
            page.problem = f"reading offset {offset}: {exc}"
            break
        if not chunk.records:
            break
        page.bytes_read += chunk.size_bytes
        try:
            full = _add_batches(page, chunk.records, offset, fmt, aborted_from, in_aborted)
        except DecodeError as exc:
            page.problem = f"a batch at or after offset {offset} could not be decoded: {exc}"
            break
        if full:
            page.stopped_by = "records"
            break
        offset = chunk.next_offset
    page.next_offset = page.records[-1].offset + 1 if page.stopped_by == "records" else max(offset, page.next_offset)
    return page


def _add_batches(
    page: RecordPage,
    data: bytes | memoryview,
    from_offset: int,
    fmt: str,
    aborted_from: dict[int, list[int]],
    in_aborted: set[int],
) -> bool:
    """Append the records of ``data`` at or after ``from_offset``; True once the page is full."""
    for view in iter_batches(data):
        pid = view.producer_id
        if view.is_transactional and not view.is_control and any(f <= view.base_offset for f in aborted_from.get(pid, ())):
            in_aborted.add(pid)
        records = decode_records(view, MAX_DECOMPRESSED_BYTES)
        for record in records:
            offset = view.base_offset + record.offset_delta
            page.next_offset = offset + 1
            if offset < from_offset:
                continue
            timestamp = view.base_timestamp + record.timestamp_delta
            if view.timestamp_type == 1:  # LogAppendTime: every record carries the batch's time
                timestamp = view.max_timestamp
            row = RecordRow(
                offset,
                timestamp,
                render_bytes(record.key, fmt),
                render_bytes(record.value, fmt),
                [(name, render_bytes(value, fmt)) for name, value in record.headers],
                producer_id=pid,
                transactional=view.is_transactional,
            )
            if view.is_control:
                kind, coordinator_epoch = parse_control_record(record)
                row.marker = "COMMIT" if kind == ControlRecordType.COMMIT else "ABORT"
                row.key = Shown(f"{row.marker} marker (producer {pid}, coordinator epoch {coordinator_epoch})", "text", 0)
                row.value = Shown("", "text", 0)
            elif pid in in_aborted and view.is_transactional:
                row.status = "aborted"
            elif view.is_transactional and offset >= page.last_stable_offset:
                row.status = "open"
            page.records.append(row)
            if len(page.records) >= MAX_RECORDS_PER_PAGE:
                return True
        if view.is_control:
            in_aborted.discard(pid)
            aborted_from[pid] = [f for f in aborted_from.get(pid, ()) if f > view.base_offset]
    return False
