"""The log cleaner's per-record loops: key scanning and record filtering.

A cleaning pass looks at every record's key twice (once to map it, once to judge it),
so these two loops are most of its CPU.  They run in C (``_cleaner_scan.c``, built by
``setup.py`` as an optional extension) when it is built, else in the Python below,
which defines what they do -- the tests check that both agree.  Both take the records
section of a batch (decompressed); malformed input raises ``CorruptRecordBatch``.

* :func:`scan_keys` -- ``(offsets, digests, tombstones, keep)``: per record its
  absolute offset, its key's digest (:func:`~log.offset_map.key_digest`; None without a
  key) and one byte, 1 if it has no value.  Given ``latest`` (digest -> latest offset,
  the offset map's dict), ``keep`` has one byte per record: 1 if it has a key and no
  later offset of that key is in ``latest`` (else ``keep`` is empty).  Nothing past
  the value length is read.
* :func:`filter_records` -- ``(records, base_ts, max_ts)``: the records whose ``keep``
  byte is non-zero, copied as they are except for the timestamp delta, made relative
  to ``new_base_ts`` (None: the first kept record's timestamp).  ``base_ts`` is that
  base (-1 if nothing is kept), ``max_ts`` the largest kept timestamp (-1 if none).

Two whole-batch steps work on an :class:`~log.offset_map.OffsetMap`: with its C table
each is one call creating no object per record, with its dict they are built on
:func:`scan_keys`:

* :func:`map_records` -- every keyed record at or past ``start_offset`` into the map,
  or nothing and False if its new keys would not fit.
* :func:`judge` -- ``(keep, tombstones)`` as :func:`scan_keys` gives them for the map.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from kbroker.log.offset_map import DIGEST_BYTES, OffsetMap, key_digest
from kbroker.wire._records_varint import read_varint, write_varint  # the codec's own varints
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.records import CorruptRecordBatch

Buffer = bytes | bytearray | memoryview
ScanResult = tuple[list[int], list[bytes | None], bytes, bytes]
Latest = dict[bytes, int] | None
FilterResult = tuple[bytes, int, int]
_MIN_RECORD_LENGTH = 6


class _Scanner(Protocol):
    def scan_keys(
        self,
        data: Buffer,
        count: int,
        base_offset: int,
        long_digest: Callable[[bytes], bytes],
        latest: Latest,
    ) -> ScanResult: ...

    def filter_records(
        self, data: Buffer, count: int, keep: bytes, old_base_ts: int, new_base_ts: int | None
    ) -> FilterResult: ...


def _head(data: bytes, pos: int, end: int) -> tuple[int, int, int, int, int, int]:
    """(attributes position, record_end, after_ts, timestamp_delta, offset_delta, key
    length position) of the record at ``pos``."""
    length, pos = read_varint(data, pos)
    attributes_pos = pos
    if length < _MIN_RECORD_LENGTH or length > end - pos:
        raise CorruptRecordBatch(f"record length {length} is out of range")
    record_end = pos + length
    timestamp_delta, after_ts = read_varint(data, pos + 1)
    offset_delta, pos = read_varint(data, after_ts)
    if pos > record_end:
        raise CorruptRecordBatch("record fields run past the record")
    return attributes_pos, record_end, after_ts, timestamp_delta, offset_delta, pos


def py_scan_keys(
    data: Buffer,
    count: int,
    base_offset: int,
    long_digest: Callable[[bytes], bytes],
    latest: Latest,
) -> ScanResult:
    """:func:`scan_keys` in Python."""
    raw = bytes(data)
    end = len(raw)
    if count < 0 or count > end:
        raise CorruptRecordBatch(f"record count {count} does not fit {end} bytes")
    offsets: list[int] = []
    digests: list[bytes | None] = []
    tombstones = bytearray(count)
    pos = 0
    try:
        for i in range(count):
            _, record_end, _, _, offset_delta, pos = _head(raw, pos, end)
            key_length, pos = read_varint(raw, pos)
            if key_length < -1 or key_length > record_end - pos:
                raise CorruptRecordBatch(f"record key length {key_length}")
            if key_length < 0:
                digests.append(None)
            else:
                key = raw[pos : pos + key_length]
                digests.append(key if key_length <= DIGEST_BYTES else long_digest(key))
                pos += key_length
            value_length, pos = read_varint(raw, pos)
            if value_length < -1 or value_length > record_end - pos:
                raise CorruptRecordBatch(f"record value length {value_length}")
            tombstones[i] = value_length < 0
            offsets.append(base_offset + offset_delta)
            pos = record_end
    except (IndexError, DecodeError) as exc:
        raise CorruptRecordBatch(f"record runs past the end of the batch: {exc}") from None
    if pos != end:
        raise CorruptRecordBatch(f"{end - pos} bytes left after the records")
    keep = b""
    if latest is not None:
        keep = bytes(
            d is not None and latest.get(d, o) <= o for d, o in zip(digests, offsets)
        )
    return offsets, digests, bytes(tombstones), keep


def py_filter_records(
    data: Buffer, count: int, keep: bytes, old_base_ts: int, new_base_ts: int | None
) -> FilterResult:
    """:func:`filter_records` in Python."""
    raw = bytes(data)
    end = len(raw)
    if count < 0 or count > end or len(keep) != count:
        raise CorruptRecordBatch(f"record count {count} does not fit {end} bytes")
    out = bytearray()
    base = new_base_ts
    max_ts = -1
    any_kept = False
    pos = 0
    try:
        for i in range(count):
            attributes_pos, record_end, after_ts, timestamp_delta, _, _ = _head(raw, pos, end)
            if keep[i]:
                ts = old_base_ts + timestamp_delta
                if base is None:
                    base = ts
                if not any_kept or ts > max_ts:
                    max_ts = ts
                any_kept = True
                body = bytearray(raw[attributes_pos : attributes_pos + 1])
                write_varint(body, ts - base)
                body += raw[after_ts:record_end]
                write_varint(out, len(body))
                out += body
            pos = record_end
    except (IndexError, DecodeError) as exc:
        raise CorruptRecordBatch(f"record runs past the end of the batch: {exc}") from None
    if pos != end:
        raise CorruptRecordBatch(f"{end - pos} bytes left after the records")
    return bytes(out), (base if base is not None else -1), max_ts


class _PythonScanner:
    scan_keys = staticmethod(py_scan_keys)
    filter_records = staticmethod(py_filter_records)


def _load() -> _Scanner:
    try:
        from kbroker.log import _cleaner_scan  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return _PythonScanner()
    return _CScanner(_cleaner_scan)


class _CScanner:
    """The C module, its ValueErrors as CorruptRecordBatch."""

    def __init__(self, module: _Scanner) -> None:
        self._module = module

    def scan_keys(
        self,
        data: Buffer,
        count: int,
        base_offset: int,
        long_digest: Callable[[bytes], bytes],
        latest: Latest,
    ) -> ScanResult:
        try:
            return self._module.scan_keys(data, count, base_offset, long_digest, latest)
        except ValueError as exc:
            raise CorruptRecordBatch(str(exc)) from None

    def filter_records(
        self, data: Buffer, count: int, keep: bytes, old_base_ts: int, new_base_ts: int | None
    ) -> FilterResult:
        try:
            return self._module.filter_records(data, count, keep, old_base_ts, new_base_ts)
        except ValueError as exc:
            raise CorruptRecordBatch(str(exc)) from None


SCANNER: _Scanner = _load()
# Whether the C loops are in use (the bench reports it).
NATIVE = not isinstance(SCANNER, _PythonScanner)


def scan_keys(data: Buffer, count: int, base_offset: int, latest: Latest = None) -> ScanResult:
    return SCANNER.scan_keys(data, count, base_offset, key_digest, latest)


def filter_records(
    data: Buffer, count: int, keep: bytes, old_base_ts: int, new_base_ts: int | None
) -> FilterResult:
    return SCANNER.filter_records(data, count, keep, old_base_ts, new_base_ts)


def map_records(
    offset_map: OffsetMap, data: Buffer, count: int, base_offset: int, start_offset: int
) -> bool:
    """Put every keyed record of the section at or past ``start_offset`` (and 0) into
    ``offset_map`` (later records win), or nothing and False if it would overflow."""
    if offset_map.table is not None:
        try:
            fits: bool = offset_map.table.map_section(
                data, count, base_offset, start_offset, key_digest
            )
        except ValueError as exc:
            raise CorruptRecordBatch(str(exc)) from None
        return fits
    start_offset = max(0, start_offset)  # as the C table: offsets are never negative
    offsets, digests, _, _ = scan_keys(data, count, base_offset)
    # (min, not the first: a corrupt batch's offsets need not ascend)
    if (offsets and min(offsets) < start_offset) or None in digests:
        pairs = [(d, o) for d, o in zip(digests, offsets) if d is not None and o >= start_offset]
        digests = [d for d, _ in pairs]
        offsets = [o for _, o in pairs]
    return offset_map.put_all(digests, offsets)  # type: ignore[arg-type]


def judge(
    offset_map: OffsetMap, data: Buffer, count: int, base_offset: int
) -> tuple[bytes, bytes]:
    """``(keep, tombstones)`` of the section: :func:`scan_keys`'s, for ``offset_map``."""
    if offset_map.table is not None:
        try:
            result: tuple[bytes, bytes] = offset_map.table.judge(
                data, count, base_offset, key_digest
            )
        except ValueError as exc:
            raise CorruptRecordBatch(str(exc)) from None
        return result
    _, _, tombstones, keep = scan_keys(data, count, base_offset, offset_map.offsets)
    return keep, tombstones
