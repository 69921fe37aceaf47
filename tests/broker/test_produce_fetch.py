"""Produce, Fetch, ListOffsets and the long poll, in-process over a real socket."""

from __future__ import annotations

import threading
import time

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.init_producer_id_request import InitProducerIdRequest
from kbroker.wire.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import decode_records, iter_batches, make_batch

from kbroker.testing import BrokerThread


def _create(c: RawClient, name: str, partitions: int = 1, configs: dict[str, str] | None = None) -> None:
    from kbroker.wire.messages.create_topics_request import CreatableTopicConfig

    topic = CreatableTopic(
        name=name,
        num_partitions=partitions,
        replication_factor=-1,
        configs=[CreatableTopicConfig(name=k, value=v) for k, v in (configs or {}).items()],
    )
    resp = c.request(CreateTopicsRequest(topics=[topic]), 7)
    assert resp.topics[0].error_code == ErrorCode.NONE, resp


def _produce(c: RawClient, name: str, batch: bytes, partition: int = 0, version: int = 9):
    req = ProduceRequest(
        acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=name, partition_data=[PartitionProduceData(index=partition, records=bytes(batch))])]
    )
    return c.request(req, version).responses[0].partition_responses[0]


def _fetch(c: RawClient, name: str, offset: int, *, max_wait_ms: int = 0, min_bytes: int = 1, version: int = 12):
    req = FetchRequest(
        replica_id=-1,
        max_wait_ms=max_wait_ms,
        min_bytes=min_bytes,
        max_bytes=1 << 20,
        isolation_level=0,
        topics=[FetchTopic(topic=name, partitions=[FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=1 << 20)])],
    )
    return c.request(req, version).responses[0].partitions[0]


def _values(records: bytes) -> list[bytes | None]:
    return [r.value for view in iter_batches(records) for r in decode_records(view)]


def test_produce_then_fetch_returns_the_batches_as_stored(client: RawClient) -> None:
    _create(client, "t")
    r1 = _produce(client, "t", make_batch([b"a", b"b"], timestamp_ms=1000))
    r2 = _produce(client, "t", make_batch([b"c"], timestamp_ms=2000))
    assert (r1.error_code, r1.base_offset, r2.base_offset) == (0, 0, 2)
    part = _fetch(client, "t", 0)
    assert part.error_code == ErrorCode.NONE
    assert part.high_watermark == 3
    assert _values(bytes(part.records)) == [b"a", b"b", b"c"]
    # from inside the first batch: the whole batch comes back
    assert _values(bytes(_fetch(client, "t", 1).records))[:2] == [b"a", b"b"]


def test_fetch_beyond_the_end_is_offset_out_of_range(client: RawClient) -> None:
    _create(client, "t")
    _produce(client, "t", make_batch([b"a"]))
    assert _fetch(client, "t", 5).error_code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_long_poll_is_woken_by_a_produce(broker_thread: BrokerThread, client: RawClient) -> None:
    _create(client, "poll")
    producer = RawClient(broker_thread.address)
    timer = threading.Timer(0.3, lambda: _produce(producer, "poll", make_batch([b"late"])))
    started = time.monotonic()
    timer.start()
    try:
        part = _fetch(client, "poll", 0, max_wait_ms=20_000)
    finally:
        timer.join()
        producer.close()
    assert _values(bytes(part.records)) == [b"late"]
    # woken by the produce, long before max_wait_ms (generous bound for a loaded machine)
    assert time.monotonic() - started < 10


def test_list_offsets_by_time(client: RawClient) -> None:
    _create(client, "times")
    for i, ts in enumerate((1000, 2000, 3000)):
        assert _produce(client, "times", make_batch([str(i).encode()], timestamp_ms=ts)).base_offset == i

    def lookup(ts: int) -> tuple[int, int]:
        req = ListOffsetsRequest(
            replica_id=-1, topics=[ListOffsetsTopic(name="times", partitions=[ListOffsetsPartition(partition_index=0, timestamp=ts)])]
        )
        p = client.request(req, 7).topics[0].partitions[0]
        return p.offset, p.timestamp

    assert lookup(1500) == (1, 2000)
    assert lookup(3000) == (2, 3000)
    assert lookup(4000) == (-1, -1)
    assert lookup(-2)[0] == 0
    assert lookup(-1)[0] == 3
    assert lookup(-3) == (2, 3000)


def test_idempotent_duplicate_returns_the_original_offset(client: RawClient) -> None:
    _create(client, "idem")
    pid = client.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
    assert pid.error_code == ErrorCode.NONE
    batch = make_batch([b"once"], producer_id=pid.producer_id, producer_epoch=pid.producer_epoch, base_sequence=0)
    first = _produce(client, "idem", batch)
    again = _produce(client, "idem", batch)
    assert (first.error_code, again.error_code) == (ErrorCode.NONE, ErrorCode.NONE)
    assert again.base_offset == first.base_offset
    gap = make_batch([b"gap"], producer_id=pid.producer_id, producer_epoch=pid.producer_epoch, base_sequence=5)
    assert _produce(client, "idem", gap).error_code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert _fetch(client, "idem", 0).high_watermark == 1


def test_data_and_topic_ids_survive_a_restart(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    _create(c, "keep", partitions=2)
    _produce(c, "keep", make_batch([b"x", b"y"]), partition=1)
    c.close()
    from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic

    def describe() -> tuple:
        c = RawClient(broker_thread.address)
        try:
            t = c.request(MetadataRequest(topics=[MetadataRequestTopic(name="keep")]), 12).topics[0]
            return t.topic_id, [p.leader_epoch for p in t.partitions]
        finally:
            c.close()

    topic_id, epochs = describe()
    broker_thread.stop()
    broker_thread.start()
    topic_id2, epochs2 = describe()
    assert topic_id2 == topic_id
    assert all(b > a for a, b in zip(epochs, epochs2, strict=True))
    c = RawClient(broker_thread.address)
    req = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=1, max_bytes=1 << 20, isolation_level=0,
        topics=[FetchTopic(topic="keep", partitions=[FetchPartition(partition=1, fetch_offset=0, partition_max_bytes=1 << 20)])],
    )
    part = c.request(req, 12).responses[0].partitions[0]
    c.close()
    assert _values(bytes(part.records)) == [b"x", b"y"]


def test_injected_after_append_fault_then_retry_is_a_duplicate(tmp_path) -> None:
    from kbroker.testing import BrokerThread

    bt = BrokerThread(tmp_path / "fault", {"kbroker.test.fail.produce.after.append.every": "1"})
    bt.start()
    c = RawClient(bt.address)
    try:
        _create(c, "f")
        pid = c.request(InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000), 4)
        batch = make_batch([b"one"], producer_id=pid.producer_id, producer_epoch=0, base_sequence=0)
        first = _produce(c, "f", batch)
        assert first.error_code == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        retry = _produce(c, "f", batch)  # the duplicate is answered NONE with the original offset
        assert (retry.error_code, retry.base_offset) == (ErrorCode.NONE, 0)
        assert _fetch(c, "f", 0).high_watermark == 1
    finally:
        c.close()
        bt.close()
