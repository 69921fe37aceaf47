"""Bad input over a real socket: a Kafka error code or a closed connection, never a crash or a hang."""

from __future__ import annotations

import struct

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.list_offsets_request import (
    ListOffsetsPartition,
    ListOffsetsRequest,
    ListOffsetsTopic,
)
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread


def _still_serving(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    try:
        resp = c.request(ApiVersionsRequest(), 3)
        assert resp.error_code == ErrorCode.NONE
    finally:
        c.close()


def _create(c: RawClient, name: str, partitions: int = 1) -> None:
    resp = c.request(CreateTopicsRequest(topics=[CreatableTopic(name=name, num_partitions=partitions, replication_factor=1)]), 5)
    assert resp.topics[0].error_code == ErrorCode.NONE, resp


def _latest_offset(c: RawClient, name: str, partition: int = 0) -> int:
    req = ListOffsetsRequest(
        replica_id=-1,
        topics=[ListOffsetsTopic(name=name, partitions=[ListOffsetsPartition(partition_index=partition, timestamp=-1)])],
    )
    return c.request(req, 5).topics[0].partitions[0].offset


def test_garbage_frame_closes_only_that_connection(broker_thread: BrokerThread, client: RawClient) -> None:
    client.send_raw(struct.pack(">i", 20) + b"\xff" * 20)
    assert client.recv_frame() is None
    _still_serving(broker_thread)


def test_negative_and_oversized_sizes_close_the_connection(broker_thread: BrokerThread) -> None:
    for size in (-1, -(2**31), 2**31 - 1, 104857600 + 1, 3):
        c = RawClient(broker_thread.address)
        c.send_raw(struct.pack(">i", size))
        assert c.recv_frame() is None, size
        c.close()
    _still_serving(broker_thread)


def test_unknown_api_key_closes_the_connection(broker_thread: BrokerThread, client: RawClient) -> None:
    client.send_raw(struct.pack(">ihhih", 10, 999, 0, 7, -1))
    assert client.recv_frame() is None
    _still_serving(broker_thread)


def test_unsupported_api_versions_version_gets_v0_error_with_key_18(client: RawClient) -> None:
    client.send_raw(struct.pack(">ihhih", 10, 18, 99, 42, -1))
    frame = client.recv_frame()
    assert frame is not None
    correlation_id, error_code, count = struct.unpack_from(">ihi", frame)
    assert correlation_id == 42
    assert error_code == ErrorCode.UNSUPPORTED_VERSION
    entries = [struct.unpack_from(">hhh", frame, 10 + 6 * i) for i in range(count)]
    assert (18, 0, 4) in entries


def test_unsupported_version_of_another_api_closes(broker_thread: BrokerThread, client: RawClient) -> None:
    client.send_raw(struct.pack(">ihhih", 10, 3, 99, 1, -1))
    assert client.recv_frame() is None
    _still_serving(broker_thread)


def test_hostile_array_length_closes_without_allocating(broker_thread: BrokerThread, client: RawClient) -> None:
    # Metadata v4: header (key 3, v4, corr 1, client id null) then topics array of 2^31-1 entries.
    body = struct.pack(">hhih", 3, 4, 1, -1) + struct.pack(">i", 2**31 - 1)
    client.send_raw(struct.pack(">i", len(body)) + body)
    assert client.recv_frame() is None
    _still_serving(broker_thread)


def test_truncated_frame_then_close_does_not_hurt(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    c.send_raw(struct.pack(">i", 100) + b"\x00\x03\x00\x04")
    c.close()
    _still_serving(broker_thread)


def test_bad_crc_is_refused_with_corrupt_message_and_nothing_stored(client: RawClient) -> None:
    _create(client, "crc")
    batch = make_batch([b"hello"], timestamp_ms=1_700_000_000_000)
    batch[-1] ^= 0xFF  # flip a byte inside the CRC-covered records
    req = ProduceRequest(
        acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name="crc", partition_data=[PartitionProduceData(index=0, records=bytes(batch))])]
    )
    resp = client.request(req, 9)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.CORRUPT_MESSAGE
    assert _latest_offset(client, "crc") == 0


def test_produce_v0_to_v2_are_advertised_but_refused(client: RawClient) -> None:
    versions = {k.api_key: (k.min_version, k.max_version) for k in client.request(ApiVersionsRequest(), 3).api_keys}
    assert versions[0][0] == 0
    _create(client, "old")
    batch = make_batch([b"x"])
    req = ProduceRequest(acks=1, timeout_ms=1000, topic_data=[TopicProduceData(name="old", partition_data=[PartitionProduceData(index=0, records=bytes(batch))])])
    resp = client.request(req, 2)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.UNSUPPORTED_VERSION
    assert _latest_offset(client, "old") == 0


def test_metadata_lists_the_node_as_controller(client: RawClient, broker_thread: BrokerThread) -> None:
    resp = client.request(MetadataRequest(topics=None), 12)
    assert resp.controller_id == 1
    assert [(b.node_id, b.port) for b in resp.brokers] == [(1, broker_thread.address[1])]
    assert resp.cluster_id


def test_idle_connection_is_closed_after_connections_max_idle_ms(tmp_path) -> None:
    from kbroker.testing import BrokerThread

    bt = BrokerThread(tmp_path / "idle", {"connections.max.idle.ms": "300"})
    bt.start()
    try:
        idle = RawClient(bt.address)
        stalled = RawClient(bt.address)
        stalled.send_raw(struct.pack(">i", 100) + b"\x00\x12")  # a frame that never completes
        assert idle.recv_frame() is None  # closed by the broker, not by our 10 s socket timeout
        assert stalled.recv_frame() is None
        _still_serving(bt)
    finally:
        bt.close()
