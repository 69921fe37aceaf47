"""``codec.size`` is its own computation: it agrees with the encoder where varints change
width, raises where the encoder raises, and never runs the encoder.

The round-trip tests (test_codec_roundtrip.py, test_codec_props.py) compare size, bytes
written and bytes consumed for every message at every version; the values hypothesis draws
there are short, so the length-prefix widths are pinned here at their boundaries.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kbroker.wire import codec
from kbroker.wire.exceptions import EncodeError
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.fetch_request import FetchRequest
from kbroker.wire.messages.fetch_response import (
    FetchableTopicResponse,
    FetchResponse,
    PartitionData,
)
from kbroker.wire.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)

# lengths either side of where an unsigned varint of length+1 grows a byte
BOUNDARIES = [0, 1, 126, 127, 128, 16382, 16383, 16384, 2097150, 2097151, 2097152]


def _agree(msg: Any, version: int) -> int:
    data = codec.encode(msg, version)
    _, consumed = codec.decode_from(type(msg), version, data + b"\x00", 0)
    assert codec.size(msg, version) == len(data) == consumed
    return len(data)


@pytest.mark.parametrize("n", BOUNDARIES)
@pytest.mark.parametrize("version", [8, 12])  # classic, then compact
def test_string_lengths(n: int, version: int) -> None:
    name = "t" * min(n, 32767)
    _agree(MetadataRequest(topics=[MetadataRequestTopic(name=name)]), version)


@pytest.mark.parametrize("n", [126, 127, 128, 16383, 16384])
def test_multi_byte_utf8_is_sized_in_bytes(n: int) -> None:
    _agree(MetadataRequest(topics=[MetadataRequestTopic(name="é" * (n // 2) + "x" * (n % 2))]), 12)


@pytest.mark.parametrize("n", BOUNDARIES)
@pytest.mark.parametrize("version", [8, 9])  # classic, then compact
def test_records_lengths(n: int, version: int) -> None:
    records = memoryview(bytes(n))
    req = ProduceRequest(topic_data=[
        TopicProduceData(name="t", partition_data=[PartitionProduceData(index=0, records=records)])
    ])
    _agree(req, version)
    req.topic_data[0].partition_data[0].records = None
    _agree(req, version)


@pytest.mark.parametrize("n", [0, 126, 127, 128, 16383, 16384])
@pytest.mark.parametrize("version", [8, 12])
def test_array_counts(n: int, version: int) -> None:
    _agree(MetadataRequest(topics=[MetadataRequestTopic(name="") for _ in range(n)]), version)
    _agree(MetadataRequest(topics=None), version)


@pytest.mark.parametrize("tag", [0, 127, 128, 16384])
@pytest.mark.parametrize("n", [0, 127, 128, 16384])
def test_unknown_tagged_fields(tag: int, n: int) -> None:
    msg = ApiVersionsRequest(client_software_name="c")
    msg.unknown_tagged_fields = {tag + 1: bytes(n), tag + 5: b"z"}
    _agree(msg, 3)


@pytest.mark.parametrize("n", [1, 126, 127, 128, 16384])
def test_known_tagged_field_and_nested_tagged_structs(n: int) -> None:
    _agree(FetchRequest(cluster_id="c" * n), 12)
    part = PartitionData(partition_index=1, records=bytes(n))
    part.current_leader.leader_id = 7  # a tagged struct away from its default
    part.snapshot_id.epoch = n
    part.unknown_tagged_fields = {9: bytes(n)}
    _agree(FetchResponse(responses=[FetchableTopicResponse(topic="t", partitions=[part] * 3)]), 12)


@pytest.mark.parametrize(
    ("msg", "version"),
    [
        (ProduceRequest(transactional_id="tx"), 2),  # a field v2 cannot carry
        (MetadataRequest(topics=None), 0),  # null array before it is nullable
        (MetadataRequest(topics=[MetadataRequestTopic(name=None)]), 9),  # null string
        (MetadataRequest(topics=[MetadataRequestTopic(name="x" * 32768)]), 8),  # classic too long
        (ProduceRequest(), 14),  # no such version
        (MetadataRequest(topics=[MetadataRequestTopic(name=5)]), 12),  # not a string
    ],
)
def test_size_raises_where_encode_raises(msg: Any, version: int) -> None:
    with pytest.raises(EncodeError):
        codec.encode(msg, version)
    with pytest.raises(EncodeError):
        codec.size(msg, version)


def test_size_never_runs_the_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    msg = FetchResponse(responses=[FetchableTopicResponse(
        topic="t", topic_id=uuid.uuid4(),
        partitions=[PartitionData(partition_index=i, records=bytes(300)) for i in range(5)],
    )])
    expected = len(codec.encode(msg, 13))

    def boom(*args: object) -> None:
        raise AssertionError("size ran the encoder")

    monkeypatch.setattr(codec, "_plan", boom)
    monkeypatch.setattr(codec, "encode_into", boom)
    monkeypatch.setattr(codec.p, "write_uvarint", boom)
    monkeypatch.setattr(codec, "_write_tags", boom)
    codec._SIZE_PLANS.clear()
    assert codec.size(msg, 13) == expected
    assert "def _size_PartitionData" in codec.size_plan_source(FetchResponse, 13)
