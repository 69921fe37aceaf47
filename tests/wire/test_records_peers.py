"""Cross-checks against independent readers and builders: kafka-python and aiokafka.

Both clients are used here only as peers: our batch goes into their reader, their
builder's batch goes into ours, for every codec.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import aiokafka.record.default_records as aiokafka_records
import kafka.record.default_records as kafka_records
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kbroker.wire.records import (
    Compression,
    ControlRecordType,
    RecordBatchView,
    TimestampType,
    build_control_batch,
    build_record_batch,
    decode_records,
    iter_batches,
    parse_control_record,
)

PEERS = [
    pytest.param(kafka_records, id="kafka-python"),
    pytest.param(aiokafka_records, id="aiokafka"),
]
CODECS = list(Compression)
Item = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]], int]

ITEMS: list[Item] = [
    (
        f"key-{i}".encode() if i % 3 else None,
        f"value {i} ".encode() * (i % 7) if i % 5 else None,
        [(f"h{j}", b"v" * j if j % 2 else None) for j in range(i % 4)],
        1_700_000_000_000 + i * 3,
    )
    for i in range(40)
]


def _peer_read(peer: ModuleType, buf: bytes) -> tuple[Any, list[Item]]:
    """The peer's batch object (CRC checked first: the peers require that order) and records."""
    batch = peer.DefaultRecordBatch(buf)
    assert batch.validate_crc()
    got = [(r.key, r.value, list(r.headers), r.timestamp) for r in batch]
    return batch, got


def _peer_build(peer: ModuleType, codec: Compression, items: list[Item], **kw: Any) -> bytes:
    builder = peer.DefaultRecordBatchBuilder(
        2,
        int(codec),
        kw.get("is_transactional", False),
        kw.get("producer_id", -1),
        kw.get("producer_epoch", -1),
        kw.get("base_sequence", -1),
        1 << 24,
    )
    for offset, (key, value, headers, ts) in enumerate(items):
        builder.append(offset, ts, key, value, headers)
    return bytes(builder.build())


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("peer", PEERS)
def test_our_batch_their_reader(peer: ModuleType, codec: Compression) -> None:
    buf = build_record_batch(
        ITEMS,
        base_offset=1000,
        compression=codec,
        producer_id=42,
        producer_epoch=2,
        base_sequence=17,
        is_transactional=True,
    )
    batch, got = _peer_read(peer, bytes(buf))
    assert batch.compression_type == codec
    assert (batch.base_offset, batch.next_offset) == (1000, 1040)
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (42, 2, 17)
    assert batch.is_transactional and not batch.is_control_batch
    assert batch.max_timestamp == max(item[3] for item in ITEMS)
    assert got == ITEMS
    offsets = [r.offset for r in peer.DefaultRecordBatch(bytes(buf))]
    assert offsets == list(range(1000, 1040))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("peer", PEERS)
def test_their_batch_our_reader(peer: ModuleType, codec: Compression) -> None:
    buf = _peer_build(
        peer, codec, ITEMS, producer_id=7, producer_epoch=1, base_sequence=5, is_transactional=True
    )
    (view,) = list(iter_batches(buf))
    assert view.is_valid()
    assert view.compression is codec
    assert view.record_count == len(ITEMS) and view.last_offset_delta == len(ITEMS) - 1
    assert (view.producer_id, view.producer_epoch, view.base_sequence) == (7, 1, 5)
    assert view.last_sequence == 5 + len(ITEMS) - 1
    assert view.is_transactional
    assert view.max_timestamp == max(item[3] for item in ITEMS)
    records = decode_records(view)
    got = [(r.key, r.value, r.headers, view.base_timestamp + r.timestamp_delta) for r in records]
    assert got == ITEMS
    assert [r.offset_delta for r in records] == list(range(len(ITEMS)))


@pytest.mark.parametrize("peer", PEERS)
def test_patched_batch_their_reader(peer: ModuleType) -> None:
    buf = build_record_batch(ITEMS, compression=Compression.LZ4)
    view = RecordBatchView(buf)
    view.set_base_offset(555)
    view.set_partition_leader_epoch(3)
    view.set_log_append_time(1_800_000_000_000)
    batch, _ = _peer_read(peer, bytes(buf))
    assert batch.base_offset == 555
    assert batch.timestamp_type == TimestampType.LOG_APPEND_TIME
    # with LogAppendTime every record carries the batch's max timestamp
    assert {r.timestamp for r in peer.DefaultRecordBatch(bytes(buf))} == {1_800_000_000_000}


@pytest.mark.parametrize("kind", list(ControlRecordType))
@pytest.mark.parametrize("peer", PEERS)
def test_control_batch_their_reader(peer: ModuleType, kind: ControlRecordType) -> None:
    buf = build_control_batch(
        kind, producer_id=9, producer_epoch=2, coordinator_epoch=11, timestamp_ms=5, base_offset=80
    )
    batch = peer.DefaultRecordBatch(bytes(buf))
    assert batch.validate_crc() and batch.is_control_batch and batch.is_transactional
    (record,) = list(peer.DefaultRecordBatch(bytes(buf)))
    assert record.offset == 80
    if peer is kafka_records:
        assert (record.type, record.version) == (kind, 0)
    else:
        assert record.key == int(kind).to_bytes(4, "big")


@pytest.mark.parametrize("peer", PEERS)
def test_their_control_shaped_record_our_parser(peer: ModuleType) -> None:
    # Neither peer builds markers; a record with a marker's key and value stands in.
    key = (0).to_bytes(2, "big") + (1).to_bytes(2, "big")
    value = (0).to_bytes(2, "big") + (77).to_bytes(4, "big")
    buf = _peer_build(peer, Compression.NONE, [(key, value, [], 1)])
    (record,) = decode_records(RecordBatchView(buf))
    assert parse_control_record(record) == (ControlRecordType.COMMIT, 77)


_items = st.lists(
    st.tuples(
        st.none() | st.binary(max_size=40),
        st.none() | st.binary(max_size=200),
        st.lists(st.tuples(st.text(max_size=10), st.none() | st.binary(max_size=20)), max_size=3),
        st.integers(min_value=0, max_value=2**41),
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None)
@given(
    items=_items,
    codec=st.sampled_from(CODECS),
    peer=st.sampled_from([kafka_records, aiokafka_records]),
)
def test_arbitrary_records_agree_with_peers(
    items: list[Item], codec: Compression, peer: ModuleType
) -> None:
    ours = build_record_batch(items, compression=codec)
    batch, got = _peer_read(peer, bytes(ours))
    assert got == items
    theirs = _peer_build(peer, codec, items)
    view = RecordBatchView(theirs)
    assert view.is_valid()
    decoded = decode_records(view)
    assert [
        (r.key, r.value, r.headers, view.base_timestamp + r.timestamp_delta) for r in decoded
    ] == items
    if codec is Compression.NONE:
        # Same records, same header: the two encoders agree byte for byte (kafka-python
        # writes leader epoch 0 where aiokafka and the Java producer write -1).
        same = build_record_batch(items, partition_leader_epoch=view.partition_leader_epoch)
        assert bytes(same) == theirs
