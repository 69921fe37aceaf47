"""Records blobs: batch walking, CRC, decompression, the records codec, control records.

Input: a records blob (what Produce carries and a segment holds).  Property: walking it
with ``iter_batches`` and decoding every batch raises nothing but ``CorruptRecordBatch``
(a ``DecodeError``); decompression stays within ``MAX_RECORDS_BYTES``; a control batch
either parses or raises ``CorruptRecordBatch``; decoded records rebuilt into a fresh
batch (uncompressed) decode to the same records with a valid CRC.
"""

from __future__ import annotations

from kbroker.wire.codec import decode
from kbroker.wire.exceptions import DecodeError, EncodeError
from kbroker.wire.headers import decode_request_header
from kbroker.wire.messages.produce_request import ProduceRequest
from kbroker.wire.records import (
    RecordBatchView,
    build_record_batch,
    decode_records,
    iter_batches,
    parse_control_record,
)

from fuzz.seeds import built_batches, golden_batches, golden_frames

# A smaller decompression bound than the broker's 64 MiB keeps each input fast; the
# bound is a parameter of the same code path.
MAX_RECORDS_BYTES = 1 << 20


def prepare() -> None:
    pass


def _produce_records() -> list[bytes]:
    """The records sections of the golden Produce frames."""
    out = []
    for frame in golden_frames():
        key, version = int.from_bytes(frame[:2], "big"), int.from_bytes(frame[2:4], "big")
        if key != 0:
            continue
        _h, offset = decode_request_header(frame)
        req = decode(ProduceRequest, version, memoryview(frame)[offset:])
        out += [bytes(p.records) for t in req.topic_data for p in t.partition_data if p.records]
    return out


def seeds() -> list[bytes]:
    batches = golden_batches() + built_batches() + _produce_records()
    return batches + [b"".join(batches)]


def _check_batch(view: RecordBatchView) -> None:
    view.is_valid()
    _ = (view.last_sequence, view.timestamp_type, view.is_transactional, repr(view))
    records = decode_records(view, MAX_RECORDS_BYTES)
    if view.is_control:
        if records:
            parse_control_record(records[0])
        return
    try:
        rebuilt = build_record_batch(
            records,
            base_offset=view.base_offset,
            base_timestamp=view.base_timestamp,
            producer_id=view.producer_id,
            producer_epoch=view.producer_epoch,
            base_sequence=view.base_sequence,
            is_transactional=view.is_transactional,
            partition_leader_epoch=view.partition_leader_epoch,
            timestamp_type=view.timestamp_type,
            max_timestamp=view.max_timestamp,
            last_offset_delta=view.last_offset_delta,
        )
    except EncodeError:
        return  # e.g. a decoded timestamp delta beyond int64 once re-based
    again = RecordBatchView(rebuilt)
    assert again.is_valid(), "a rebuilt batch fails its own CRC"
    assert decode_records(again) == records, "records change when rebuilt"


def test_one_input(data: bytes) -> None:
    try:
        for view in iter_batches(data):
            _check_batch(view)
    except DecodeError:
        pass
