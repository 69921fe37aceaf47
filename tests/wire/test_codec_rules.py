"""Kafka's encoding rules: unknown tags survive, unrepresentable values raise."""

from __future__ import annotations

import uuid

import pytest
from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError, EncodeError
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)


def test_unknown_tagged_fields_survive_decode_then_encode() -> None:
    # ApiVersionsRequest v3 with two tags this codec does not know (5 and 9).
    body = bytes.fromhex("0263" "0231") + bytes([2, 5, 2]) + b"hi" + bytes([9, 1]) + b"!"
    msg = codec.decode(ApiVersionsRequest, 3, body)
    assert msg.client_software_name == "c" and msg.client_software_version == "1"
    assert msg.unknown_tagged_fields == {5: b"hi", 9: b"!"}
    assert codec.encode(msg, 3) == body


def test_unknown_tags_merge_with_known_ones_in_tag_order() -> None:
    req = FetchRequest(cluster_id="c1", replica_id=-1)
    req.unknown_tagged_fields = {7: b"x", 0x7F: b""}
    data = codec.encode(req, 12)
    back = codec.decode(FetchRequest, 12, data)
    assert back.cluster_id == "c1"
    assert back.unknown_tagged_fields == {7: b"x", 0x7F: b""}
    assert codec.encode(back, 12) == data


def test_known_tagged_field_at_default_is_not_written() -> None:
    assert codec.encode(FetchRequest(), 12) == codec.encode(FetchRequest(cluster_id=None), 12)
    assert len(codec.encode(FetchRequest(cluster_id="abc"), 12)) > len(codec.encode(FetchRequest(), 12))


def test_non_ignorable_field_a_version_cannot_carry_raises() -> None:
    with pytest.raises(EncodeError, match="transactional_id"):
        codec.encode(ProduceRequest(transactional_id="tx"), 2)
    # the default value is fine in that version
    assert codec.encode(ProduceRequest(), 2)


def test_ignorable_field_is_silently_dropped() -> None:
    req = ProduceRequest(
        topic_data=[TopicProduceData(name="t", topic_id=uuid.uuid4(), partition_data=[])]
    )
    v13 = codec.decode(ProduceRequest, 13, codec.encode(req, 13))
    assert v13.topic_data[0].name == ""  # name is not in v13 (topic ids instead), and ignorable
    v9 = codec.decode(ProduceRequest, 9, codec.encode(req, 9))
    assert v9.topic_data[0].topic_id == uuid.UUID(int=0)


def test_null_where_a_version_cannot_carry_it_raises() -> None:
    with pytest.raises(EncodeError):
        codec.encode(MetadataRequest(topics=None), 0)  # topics is nullable from v1
    assert codec.decode(MetadataRequest, 1, codec.encode(MetadataRequest(topics=None), 1)).topics is None


def test_out_of_range_values_raise_encode_error() -> None:
    with pytest.raises(EncodeError):
        codec.encode(ProduceRequest(acks=1 << 20), 9)
    with pytest.raises(EncodeError):
        codec.encode(MetadataRequest(topics=[MetadataRequestTopic(name=None)]), 9)


def test_versions_below_the_spec_minimum_still_code() -> None:
    # Produce's spec range starts at 3 (KIP-896) but v0-2 must still be readable.
    assert ProduceRequest.VALID_VERSIONS == (3, 13)
    req = ProduceRequest(acks=-1, timeout_ms=5, topic_data=[
        TopicProduceData(name="t", partition_data=[PartitionProduceData(index=0, records=b"abc")])
    ])
    back = codec.decode(ProduceRequest, 0, codec.encode(req, 0))
    assert back.topic_data[0].partition_data[0].records == b"abc"
    with pytest.raises(EncodeError):
        codec.encode(req, 14)
    with pytest.raises(DecodeError):
        codec.decode(ProduceRequest, 14, b"")


def test_records_decode_as_zero_copy_slices() -> None:
    req = ProduceRequest(topic_data=[
        TopicProduceData(name="t", partition_data=[PartitionProduceData(index=0, records=b"r" * 100)])
    ])
    buf = bytearray(codec.encode(req, 9))
    back = codec.decode(ProduceRequest, 9, buf)
    records = back.topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview) and records.obj is buf


def test_snake_case_names_and_uuid_defaults() -> None:
    part = FetchPartition()
    assert part.current_leader_epoch == -1 and part.partition_max_bytes == 0
    assert FetchTopic().topic_id == uuid.UUID(int=0)
    assert FetchRequest().isolation_level == 0 and FetchRequest().max_wait_ms == 0


def test_trailing_bytes_are_rejected_by_decode() -> None:
    data = codec.encode(ApiVersionsRequest(), 3)
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(ApiVersionsRequest, 3, data + b"\x00")
