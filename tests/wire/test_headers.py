"""Request/response header versions and whole frames."""

from __future__ import annotations

import struct

import pytest
from kbroker.wire import ApiKey, codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.headers import (
    RequestHeader,
    decode_request_header,
    decode_response_header,
    encode_request,
    encode_response,
    peek_request_header,
    request_header_version,
    response_header_version,
)
from kbroker.wire.messages import REQUESTS
from kbroker.wire.messages.api_versions_response import ApiVersionsResponse
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.metadata_response import MetadataResponse


@pytest.mark.parametrize(
    ("key", "version", "req", "resp"),
    [
        (ApiKey.METADATA, 8, 1, 0),
        (ApiKey.METADATA, 9, 2, 1),
        (ApiKey.API_VERSIONS, 2, 1, 0),
        (ApiKey.API_VERSIONS, 3, 2, 0),  # KIP-511: the response header is always v0
        (ApiKey.API_VERSIONS, 4, 2, 0),
        (ApiKey.PRODUCE, 0, 1, 0),
        (ApiKey.PRODUCE, 9, 2, 1),
    ],
)
def test_header_versions(key: int, version: int, req: int, resp: int) -> None:
    assert request_header_version(key, version) == req
    assert response_header_version(key, version) == resp


def test_every_api_key_is_in_the_enum() -> None:
    assert {int(k) for k in ApiKey} == set(REQUESTS)
    assert ApiKey.PRODUCE == 0 and ApiKey.LIST_OFFSETS == 2 and ApiKey.API_VERSIONS == 18


def test_request_round_trip_through_a_frame() -> None:
    header = RequestHeader(request_api_key=3, request_api_version=12, correlation_id=42, client_id="cli")
    frame = encode_request(header, MetadataRequest(topics=None))
    (size,) = struct.unpack_from(">i", frame)
    assert size == len(frame) - 4
    body = memoryview(frame)[4:]
    assert peek_request_header(body) == (3, 12, 42)
    got, offset = decode_request_header(body)
    assert got == header
    assert codec.decode(MetadataRequest, 12, body[offset:]) == MetadataRequest(topics=None)


def test_a_removed_api_key_is_unknown() -> None:
    # Kafka 4 removed ControlledShutdown (key 7): its spec says "validVersions": "none", so the
    # header is refused like any unknown key (the broker then closes the connection).
    frame_body = (7).to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(4, "big") + (3).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="unknown api key 7"):
        decode_request_header(frame_body)


def test_null_client_id_and_non_compact_client_id_in_header_v2() -> None:
    header = RequestHeader(request_api_key=18, request_api_version=3, correlation_id=9, client_id=None)
    frame = encode_request(header, REQUESTS[18]())
    assert frame[12:14] == b"\xff\xff"  # ClientId is a classic nullable string even in v2
    assert decode_request_header(frame[4:])[0].client_id is None


def test_response_frames() -> None:
    frame = encode_response(5, 18, 3, ApiVersionsResponse(error_code=35))
    assert frame[4:8] == struct.pack(">i", 5)
    assert codec.decode(ApiVersionsResponse, 3, frame[8:]).error_code == 35
    frame = encode_response(6, 3, 12, MetadataResponse())
    hdr, offset = decode_response_header(frame[4:], 3, 12)
    assert hdr.correlation_id == 6 and offset == 5
    assert codec.decode(MetadataResponse, 12, frame[4 + offset :]) == MetadataResponse()


def test_unknown_versions_and_keys() -> None:
    # A newer ApiVersions than we know: header still decodes so we can answer UNSUPPORTED_VERSION.
    raw = struct.pack(">hhi", 18, 99, 77) + b"\x00\x01x\x00"
    header, offset = decode_request_header(raw)
    assert (header.request_api_version, header.correlation_id, offset) == (99, 77, 12)
    unknown = struct.pack(">hhi", 999, 0, 1) + b"\x00\x00"
    assert peek_request_header(unknown) == (999, 0, 1)
    with pytest.raises(DecodeError, match="unknown api key"):
        decode_request_header(unknown)
    with pytest.raises(DecodeError):
        peek_request_header(b"\x00\x01")
