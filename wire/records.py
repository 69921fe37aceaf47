"""Record batches (magic v2): a zero-copy header view, the records codec, control records.

Theory of operation
-------------------
A *records blob* (the ``records`` field of Produce and Fetch, and the content of a
log segment) is a plain concatenation of record batches.  Every batch starts with
the same 61-byte header, all integers big-endian::

    offset  size  field
         0     8  base_offset
         8     4  batch_length            bytes after this field (size of batch - 12)
        12     4  partition_leader_epoch
        16     1  magic                   2; 0 and 1 are the legacy message-set formats
        17     4  crc                     CRC-32C (Castagnoli) of bytes 21 .. end of batch
        21     2  attributes              bits 0-2 compression, 3 timestamp type,
                                          4 transactional, 5 control, 6 delete horizon
        23     4  last_offset_delta
        27     8  base_timestamp
        35     8  max_timestamp
        43     8  producer_id
        51     2  producer_epoch
        53     4  base_sequence
        57     4  record_count
        61     -  records                 compressed as one unit when compression != 0

Because the CRC starts at ``attributes``, the broker can assign offsets
(``base_offset``) and stamp the leader epoch in place without recomputing it; only
switching to LogAppendTime (attributes + ``max_timestamp``) needs a new CRC.

:class:`RecordBatchView` is the hot-path object: it unpacks the header once with a
precompiled ``struct.Struct`` and never copies the batch (the CRC runs over a
memoryview slice).  It may be built over a header alone (61 bytes, e.g. read from a
file to learn ``batch_length``); methods that need the whole batch raise
:class:`CorruptRecordBatch` if it is not all there.  :func:`iter_batches` walks a blob
and stops, without error, at a partial trailing batch (what a fetch response or a
crashed segment may end with).

Each record inside is varint-framed::

    length varint, attributes int8, timestamp_delta varlong, offset_delta varint,
    key_length varint (-1 = null), key, value_length varint (-1 = null), value,
    header_count varint, then per header: key_length varint, key (UTF-8),
    value_length varint (-1 = null), value

Control batches (transaction markers) hold one record whose key is
``version int16 + type int16`` (0 abort, 1 commit) and whose value is
``version int16 + coordinator_epoch int32``.

Every problem with bytes from a peer raises :class:`CorruptRecordBatch` (a
``DecodeError``); legacy magic 0/1 data raises its subclass
:class:`LegacyMessageFormat` so the broker can answer with the right error.

Thread-safety: a view is a plain object over a caller-owned buffer; mutate a buffer
from one thread only.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

import crc32c
from kbroker.wire._records_varint import read_varint, write_varint
from kbroker.wire.compression import MAX_DECOMPRESSED_BYTES, Compression, compress, decompress
from kbroker.wire.exceptions import DecodeError, EncodeError

__all__ = [
    "BATCH_HEADER_SIZE",
    "LOG_OVERHEAD",
    "Compression",
    "ControlRecordType",
    "CorruptRecordBatch",
    "LegacyMessageFormat",
    "Record",
    "RecordBatchView",
    "RecordInput",
    "TimestampType",
    "batch_magic",
    "build_control_batch",
    "build_record_batch",
    "decode_records",
    "iter_batches",
    "make_batch",
    "parse_control_record",
    "records_section",
]

Buffer: TypeAlias = bytes | bytearray | memoryview
Headers: TypeAlias = list[tuple[str, bytes | None]]

BATCH_HEADER_SIZE = 61
LOG_OVERHEAD = 12  # base_offset(8) + batch_length(4): the bytes batch_length does not count
MIN_BATCH_LENGTH = BATCH_HEADER_SIZE - LOG_OVERHEAD  # 49: a batch with no records
CURRENT_MAGIC = 2
NO_TIMESTAMP = -1
NO_PRODUCER_ID = -1
NO_SEQUENCE = -1

# Field positions within the header (see the table above).
_MAGIC_OFFSET = 16
_CRC_OFFSET = 17
_ATTRIBUTES_OFFSET = 21  # the CRC covers from here to the end of the batch
_MAX_TIMESTAMP_OFFSET = 35
_HEADER_UP_TO_MAGIC = _MAGIC_OFFSET + 1

_HEADER = struct.Struct(">qiibIhiqqqhii")
assert _HEADER.size == BATCH_HEADER_SIZE
_INT64 = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_INT16 = struct.Struct(">h")
_INT8 = struct.Struct(">b")

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20
_DELETE_HORIZON_BIT = 0x40

_INT32_MAX = (1 << 31) - 1
# The smallest possible record: length, attributes, timestamp delta, offset delta,
# key length, value length and header count, one byte each.  Bounds record_count.
_MIN_RECORD_BYTES = 7


class CorruptRecordBatch(DecodeError):
    """A record batch (or the blob holding it) is malformed."""


class LegacyMessageFormat(CorruptRecordBatch):
    """The data is a magic 0 or 1 message set, which this broker does not accept."""

    def __init__(self, magic: int) -> None:
        super().__init__(f"legacy message format (magic {magic}) is not supported")
        self.magic = magic


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class ControlRecordType(IntEnum):
    ABORT = 0
    COMMIT = 1


def batch_magic(buf: Buffer, position: int = 0) -> int:
    """The magic byte of the batch or legacy message set starting at ``position``."""
    if len(buf) - position < _HEADER_UP_TO_MAGIC or position < 0:
        raise CorruptRecordBatch("too few bytes to hold a magic byte")
    magic: int = _INT8.unpack_from(buf, position + _MAGIC_OFFSET)[0]
    return magic


def _check_magic(buf: Buffer, position: int) -> None:
    magic = batch_magic(buf, position)
    if magic != CURRENT_MAGIC:
        if magic in (0, 1):
            raise LegacyMessageFormat(magic)
        raise CorruptRecordBatch(f"unknown magic {magic}")


class RecordBatchView:
    """A read-mostly, zero-copy view of one magic-2 batch inside ``buf`` at ``position``.

    Invariants: at least the 61-byte header is present, ``magic == 2`` and
    ``batch_length >= 49``.  The batch body may be missing (header-only view), in
    which case :meth:`buffer`, :meth:`compute_crc` and :func:`decode_records` raise
    and :meth:`is_valid` is False.  The setters need a writable ``buf``.
    """

    __slots__ = ("_buf", "_pos", "_h")

    def __init__(self, buf: Buffer, position: int = 0) -> None:
        if position < 0 or len(buf) - position < BATCH_HEADER_SIZE:
            _check_magic(buf, position)  # a legacy message set may be shorter than 61 bytes
            raise CorruptRecordBatch(
                f"{len(buf) - position} bytes cannot hold a {BATCH_HEADER_SIZE}-byte batch header"
            )
        h = _HEADER.unpack_from(buf, position)
        if h[3] != CURRENT_MAGIC:
            _check_magic(buf, position)
        if h[1] < MIN_BATCH_LENGTH:
            raise CorruptRecordBatch(f"batch_length {h[1]} is below the minimum {MIN_BATCH_LENGTH}")
        self._buf = buf
        self._pos = position
        self._h: tuple[int, ...] = h

    def __repr__(self) -> str:
        return (
            f"RecordBatchView(base_offset={self.base_offset}, size_bytes={self.size_bytes},"
            f" record_count={self.record_count}, attributes={self.attributes:#x})"
        )

    # -- header fields -------------------------------------------------------------
    @property
    def base_offset(self) -> int:
        return self._h[0]

    @property
    def batch_length(self) -> int:
        return self._h[1]

    @property
    def partition_leader_epoch(self) -> int:
        return self._h[2]

    @property
    def magic(self) -> int:
        return self._h[3]

    @property
    def crc(self) -> int:
        return self._h[4]

    @property
    def attributes(self) -> int:
        return self._h[5]

    @property
    def last_offset_delta(self) -> int:
        return self._h[6]

    @property
    def base_timestamp(self) -> int:
        return self._h[7]

    @property
    def max_timestamp(self) -> int:
        return self._h[8]

    @property
    def producer_id(self) -> int:
        return self._h[9]

    @property
    def producer_epoch(self) -> int:
        return self._h[10]

    @property
    def base_sequence(self) -> int:
        return self._h[11]

    @property
    def record_count(self) -> int:
        return self._h[12]

    # -- derived -------------------------------------------------------------------
    @property
    def position(self) -> int:
        """Where the batch starts inside the underlying buffer."""
        return self._pos

    @property
    def size_bytes(self) -> int:
        return self._h[1] + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self._h[0] + self._h[6]

    @property
    def next_offset(self) -> int:
        return self._h[0] + self._h[6] + 1

    @property
    def is_complete(self) -> bool:
        """Whether the whole batch (not just its header) is inside the buffer."""
        return len(self._buf) - self._pos >= self._h[1] + LOG_OVERHEAD

    @property
    def compression(self) -> Compression:
        codec = self._h[5] & _COMPRESSION_MASK
        try:
            return Compression(codec)
        except ValueError:
            raise CorruptRecordBatch(f"unknown compression codec id {codec}") from None

    @property
    def timestamp_type(self) -> TimestampType:
        if self._h[5] & _TIMESTAMP_TYPE_BIT:
            return TimestampType.LOG_APPEND_TIME
        return TimestampType.CREATE_TIME

    @property
    def is_transactional(self) -> bool:
        return bool(self._h[5] & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self._h[5] & _CONTROL_BIT)

    @property
    def has_delete_horizon(self) -> bool:
        return bool(self._h[5] & _DELETE_HORIZON_BIT)

    @property
    def has_producer_id(self) -> bool:
        return self._h[9] >= 0

    @property
    def last_sequence(self) -> int:
        """``base_sequence + last_offset_delta``, wrapping past int32 max to 0 as Kafka does."""
        base = self._h[11]
        if base == NO_SEQUENCE:
            return NO_SEQUENCE
        delta = self._h[6]
        if base > _INT32_MAX - delta:
            return delta - (_INT32_MAX - base) - 1
        return base + delta

    # -- bytes and CRC -------------------------------------------------------------
    def buffer(self) -> memoryview:
        """The whole batch as a zero-copy memoryview."""
        end = self._pos + self._h[1] + LOG_OVERHEAD
        if len(self._buf) < end:
            raise CorruptRecordBatch(
                f"batch of {end - self._pos} bytes is truncated to {len(self._buf) - self._pos}"
            )
        return memoryview(self._buf)[self._pos : end]

    def compute_crc(self) -> int:
        """CRC-32C over attributes .. end of batch (raises if the batch is truncated)."""
        start = self._pos + _ATTRIBUTES_OFFSET
        end = self._pos + self._h[1] + LOG_OVERHEAD
        if len(self._buf) < end:
            raise CorruptRecordBatch("cannot check the CRC of a truncated batch")
        return crc32c.crc32c(memoryview(self._buf)[start:end])

    def is_valid(self) -> bool:
        """Whether the batch is complete and its stored CRC matches its bytes."""
        end = self._pos + self._h[1] + LOG_OVERHEAD
        if len(self._buf) < end:
            return False
        crc: int = crc32c.crc32c(memoryview(self._buf)[self._pos + _ATTRIBUTES_OFFSET : end])
        return crc == self._h[4]

    def ensure_valid(self) -> None:
        """Raise :class:`CorruptRecordBatch` unless :meth:`is_valid`."""
        if not self.is_valid():
            if not self.is_complete:
                raise CorruptRecordBatch("record batch is truncated")
            raise CorruptRecordBatch(
                f"record batch CRC mismatch: stored {self.crc:#010x}, computed {self.compute_crc():#010x}"
            )

    # -- in-place patches ----------------------------------------------------------
    def _reload(self) -> None:
        self._h = _HEADER.unpack_from(self._buf, self._pos)

    def set_base_offset(self, offset: int) -> None:
        """Patch ``base_offset`` in place (outside the CRC: no recompute)."""
        _INT64.pack_into(self._buf, self._pos, offset)
        self._reload()

    def set_partition_leader_epoch(self, epoch: int) -> None:
        """Patch ``partition_leader_epoch`` in place (outside the CRC: no recompute)."""
        _INT32.pack_into(self._buf, self._pos + 12, epoch)
        self._reload()

    def set_log_append_time(self, timestamp_ms: int) -> None:
        """Switch to LogAppendTime with ``max_timestamp = timestamp_ms``; recompute the CRC."""
        attrs = self._h[5] | _TIMESTAMP_TYPE_BIT
        if attrs == self._h[5] and timestamp_ms == self._h[8]:
            return
        buf = self._buf
        _INT16.pack_into(buf, self._pos + _ATTRIBUTES_OFFSET, attrs)
        _INT64.pack_into(buf, self._pos + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
        _UINT32.pack_into(buf, self._pos + _CRC_OFFSET, self.compute_crc())
        self._reload()

    def set_max_timestamp(self, timestamp_type: TimestampType, timestamp_ms: int) -> None:
        """Set the timestamp type bit and ``max_timestamp``; recompute the CRC."""
        attrs = self._h[5] & ~_TIMESTAMP_TYPE_BIT
        if timestamp_type == TimestampType.LOG_APPEND_TIME:
            attrs |= _TIMESTAMP_TYPE_BIT
        buf = self._buf
        _INT16.pack_into(buf, self._pos + _ATTRIBUTES_OFFSET, attrs)
        _INT64.pack_into(buf, self._pos + _MAX_TIMESTAMP_OFFSET, timestamp_ms)
        _UINT32.pack_into(buf, self._pos + _CRC_OFFSET, self.compute_crc())
        self._reload()


def iter_batches(buf: Buffer, position: int = 0) -> Iterator[RecordBatchView]:
    """Yield a view of every whole batch from ``position`` on.

    Stops cleanly at a partial trailing batch.  Raises :class:`CorruptRecordBatch` on
    an impossible header (``batch_length < 49``, magic != 2; magic 0/1 raise
    :class:`LegacyMessageFormat`).  CRCs are not checked here: call ``is_valid()``.
    """
    end = len(buf)
    pos = position
    while end - pos >= LOG_OVERHEAD:
        length: int = _INT32.unpack_from(buf, pos + 8)[0]
        if end - pos >= _HEADER_UP_TO_MAGIC:
            _check_magic(buf, pos)
        if length < MIN_BATCH_LENGTH:
            raise CorruptRecordBatch(
                f"batch at position {pos}: batch_length {length} is below {MIN_BATCH_LENGTH}"
            )
        size = length + LOG_OVERHEAD
        if end - pos < size:
            return
        yield RecordBatchView(buf, pos)
        pos += size


# -- records ---------------------------------------------------------------------------


@dataclass(slots=True)
class Record:
    """One record of a batch; its offset and timestamp are relative to the batch's."""

    offset_delta: int
    timestamp_delta: int
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)
    attributes: int = 0


def records_section(view: RecordBatchView, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes | memoryview:
    """The records section of ``view``, decompressed: a view of the batch's own bytes when
    it is not compressed.  ``max_bytes`` bounds a decompressed size; a section that does
    not decompress within it (or an unknown codec) raises :class:`CorruptRecordBatch`."""
    section = view.buffer()[BATCH_HEADER_SIZE:]
    if not view.attributes & _COMPRESSION_MASK:  # (the codec enum costs more than this test)
        return section
    try:
        return decompress(view.compression, section, max_bytes)
    except DecodeError as exc:
        raise CorruptRecordBatch(str(exc)) from exc


def decode_records(view: RecordBatchView, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> list[Record]:
    """Decompress and decode the records of ``view``; check the record count.

    The CRC is not checked here (see ``RecordBatchView.is_valid``).  ``max_bytes``
    bounds the decompressed size.
    """
    data = bytes(records_section(view, max_bytes))
    count = view.record_count
    if count < 0 or count * _MIN_RECORD_BYTES > len(data):
        raise CorruptRecordBatch(f"record_count {count} cannot fit in {len(data)} bytes")
    try:
        records, pos = _decode_records(data, count)
    except IndexError:
        raise CorruptRecordBatch("record runs past the end of the batch") from None
    except UnicodeDecodeError:
        raise CorruptRecordBatch("record header key is not valid UTF-8") from None
    except CorruptRecordBatch:
        raise
    except DecodeError as exc:
        raise CorruptRecordBatch(str(exc)) from exc
    if pos != len(data):
        raise CorruptRecordBatch(
            f"{len(data) - pos} bytes left over after record_count={count} records"
        )
    return records


def _decode_records(data: bytes, count: int) -> tuple[list[Record], int]:
    varint = read_varint
    records: list[Record] = []
    append = records.append
    pos = 0
    end = len(data)
    for _ in range(count):
        length, pos = varint(data, pos)
        record_end = pos + length
        if length < _MIN_RECORD_BYTES - 1 or record_end > end:
            raise CorruptRecordBatch(f"record length {length} is out of range")
        attributes = data[pos]
        timestamp_delta, pos = varint(data, pos + 1)
        offset_delta, pos = varint(data, pos)
        key_length, pos = varint(data, pos)
        if key_length < 0:
            if key_length != -1:
                raise CorruptRecordBatch(f"record key length {key_length}")
            key = None
        else:
            if key_length > record_end - pos:
                raise CorruptRecordBatch("record key runs past the record")
            key = data[pos : pos + key_length]
            pos += key_length
        value_length, pos = varint(data, pos)
        if value_length < 0:
            if value_length != -1:
                raise CorruptRecordBatch(f"record value length {value_length}")
            value = None
        else:
            if value_length > record_end - pos:
                raise CorruptRecordBatch("record value runs past the record")
            value = data[pos : pos + value_length]
            pos += value_length
        header_count, pos = varint(data, pos)
        headers: Headers = []
        if header_count:
            if header_count < 0 or header_count * 2 > record_end - pos:
                raise CorruptRecordBatch(f"record header count {header_count} is out of range")
            for _ in range(header_count):
                hkey_length, pos = varint(data, pos)
                if hkey_length < 0 or hkey_length > record_end - pos:
                    raise CorruptRecordBatch(f"record header key length {hkey_length}")
                hkey = data[pos : pos + hkey_length].decode("utf-8")
                pos += hkey_length
                hvalue_length, pos = varint(data, pos)
                if hvalue_length < 0:
                    if hvalue_length != -1:
                        raise CorruptRecordBatch(f"record header value length {hvalue_length}")
                    hvalue = None
                else:
                    if hvalue_length > record_end - pos:
                        raise CorruptRecordBatch("record header value runs past the record")
                    hvalue = data[pos : pos + hvalue_length]
                    pos += hvalue_length
                headers.append((hkey, hvalue))
        if pos != record_end:
            raise CorruptRecordBatch(f"record length {length} does not match its fields")
        append(Record(offset_delta, timestamp_delta, key, value, headers, attributes))
    return records, pos


def _encode_record(out: bytearray, record: Record) -> None:
    body = bytearray()
    body.append(record.attributes)
    write_varint(body, record.timestamp_delta)
    write_varint(body, record.offset_delta)
    key = record.key
    if key is None:
        body.append(1)  # zigzag(-1)
    else:
        write_varint(body, len(key))
        body += key
    value = record.value
    if value is None:
        body.append(1)
    else:
        write_varint(body, len(value))
        body += value
    headers = record.headers
    write_varint(body, len(headers))
    for hkey, hvalue in headers:
        encoded = hkey.encode("utf-8")
        write_varint(body, len(encoded))
        body += encoded
        if hvalue is None:
            body.append(1)
        else:
            write_varint(body, len(hvalue))
            body += hvalue
    write_varint(out, len(body))
    out += body


RecordInput: TypeAlias = Record | tuple[bytes | None, bytes | None, Headers, int]
"""A ``Record`` (deltas given) or ``(key, value, headers, timestamp_ms)`` (absolute time)."""


def build_record_batch(
    records: Sequence[RecordInput],
    *,
    base_offset: int = 0,
    base_timestamp: int | None = None,
    compression: Compression | int = Compression.NONE,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = -1,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    partition_leader_epoch: int = -1,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    max_timestamp: int | None = None,
    last_offset_delta: int | None = None,
) -> bytearray:
    """Encode one magic-2 batch with a valid CRC.

    ``records`` items are ``Record``s or ``(key, value, headers, timestamp_ms)``
    tuples; a tuple at index ``i`` gets ``offset_delta = i``.  ``base_timestamp``
    defaults to the first tuple's timestamp (0 when every item is a ``Record``, or
    -1 for an empty batch).  ``max_timestamp`` defaults to the largest record
    timestamp and ``last_offset_delta`` to the largest offset delta.
    """
    if base_timestamp is None:
        base_timestamp = next((r[3] for r in records if isinstance(r, tuple)), 0)
        if not records:
            base_timestamp = NO_TIMESTAMP
    normal: list[Record] = []
    for index, item in enumerate(records):
        if isinstance(item, Record):
            normal.append(item)
        else:
            key, value, headers, timestamp_ms = item
            normal.append(Record(index, timestamp_ms - base_timestamp, key, value, list(headers)))
    body = bytearray(BATCH_HEADER_SIZE)
    try:
        for record in normal:
            if not -(1 << 31) <= record.offset_delta <= _INT32_MAX:
                raise EncodeError(f"offset_delta {record.offset_delta} does not fit an int32")
            _encode_record(body, record)
    except OverflowError as exc:
        raise EncodeError(str(exc)) from exc
    if max_timestamp is None:
        max_timestamp = (
            base_timestamp + max(r.timestamp_delta for r in normal) if normal else base_timestamp
        )
    if last_offset_delta is None:
        last_offset_delta = max((r.offset_delta for r in normal), default=0)
    codec = Compression(compression)
    if codec is not Compression.NONE:
        packed = compress(codec, memoryview(body)[BATCH_HEADER_SIZE:])
        del body[BATCH_HEADER_SIZE:]
        body += packed
    attributes = int(codec)
    if timestamp_type == TimestampType.LOG_APPEND_TIME:
        attributes |= _TIMESTAMP_TYPE_BIT
    if is_transactional:
        attributes |= _TRANSACTIONAL_BIT
    if is_control:
        attributes |= _CONTROL_BIT
    try:
        _HEADER.pack_into(
            body,
            0,
            base_offset,
            len(body) - LOG_OVERHEAD,
            partition_leader_epoch,
            CURRENT_MAGIC,
            0,
            attributes,
            last_offset_delta,
            base_timestamp,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            len(normal),
        )
    except struct.error as exc:
        raise EncodeError(f"batch header field out of range: {exc}") from exc
    with memoryview(body) as mv:
        _UINT32.pack_into(body, _CRC_OFFSET, crc32c.crc32c(mv[_ATTRIBUTES_OFFSET:]))
    return body


def make_batch(
    values: Sequence[bytes | None],
    keys: Sequence[bytes | None] | None = None,
    *,
    timestamp_ms: int = 0,
    headers: Headers | None = None,
    **kwargs: object,
) -> bytearray:
    """Test helper: a batch of ``values`` (and ``keys``), all stamped ``timestamp_ms``.

    Other keyword arguments go to :func:`build_record_batch`.
    """
    if keys is None:
        keys = [None] * len(values)
    items: list[RecordInput] = [
        (k, v, list(headers or []), timestamp_ms) for k, v in zip(keys, values, strict=True)
    ]
    return build_record_batch(items, base_timestamp=timestamp_ms, **kwargs)  # type: ignore[arg-type]


# -- control records -------------------------------------------------------------------

_CONTROL_KEY = struct.Struct(">hh")  # version, type
_CONTROL_VALUE = struct.Struct(">hi")  # version, coordinator epoch
_CONTROL_VERSION = 0


def build_control_batch(
    control_type: ControlRecordType | int,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp_ms: int,
    base_offset: int = 0,
    partition_leader_epoch: int = -1,
) -> bytearray:
    """A transactional control batch holding one end-transaction marker."""
    kind = ControlRecordType(control_type)
    record = Record(
        offset_delta=0,
        timestamp_delta=0,
        key=_CONTROL_KEY.pack(_CONTROL_VERSION, kind),
        value=_CONTROL_VALUE.pack(_CONTROL_VERSION, coordinator_epoch),
        headers=[],
    )
    return build_record_batch(
        [record],
        base_offset=base_offset,
        base_timestamp=timestamp_ms,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        is_transactional=True,
        is_control=True,
        partition_leader_epoch=partition_leader_epoch,
    )


def parse_control_record(record: Record) -> tuple[ControlRecordType, int]:
    """``(type, coordinator_epoch)`` of an end-transaction marker record."""
    key, value = record.key, record.value
    if key is None or len(key) < _CONTROL_KEY.size:
        raise CorruptRecordBatch("control record key is missing or short")
    version, type_id = _CONTROL_KEY.unpack_from(key)
    if version < 0:
        raise CorruptRecordBatch(f"control record key version {version}")
    try:
        kind = ControlRecordType(type_id)
    except ValueError:
        raise CorruptRecordBatch(f"unknown control record type {type_id}") from None
    if value is None or len(value) < _CONTROL_VALUE.size:
        raise CorruptRecordBatch("end-transaction marker value is missing or short")
    value_version, coordinator_epoch = _CONTROL_VALUE.unpack_from(value)
    if value_version < 0:
        raise CorruptRecordBatch(f"end-transaction marker version {value_version}")
    return kind, coordinator_epoch
