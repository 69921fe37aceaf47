"""Request frames of every API key and version, decoded as the broker's dispatch does.

Input: one request frame without its size prefix.  Property: the header either decodes
or raises ``DecodeError``; for a known key and a version up to the spec's maximum the
body decodes or raises ``DecodeError`` (trailing bytes are ignored, as the broker and
Kafka do); a decoded body re-encodes to a fixed point (``_codec.check_round_trip``).
"""

from __future__ import annotations

from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.headers import (
    RequestHeader,
    decode_request_header,
    encode_request,
    peek_request_header,
)
from kbroker.wire.messages import REQUESTS

from fuzz.seeds import filled, golden_frames
from fuzz.targets._codec import check_round_trip, compile_plans


def prepare() -> None:
    compile_plans([RequestHeader, *REQUESTS.values()])


def seeds() -> list[bytes]:
    out = golden_frames()
    for key, cls in sorted(REQUESTS.items()):
        for version in range(cls.VALID_VERSIONS[1] + 1):
            header = RequestHeader(
                request_api_key=key, request_api_version=version, correlation_id=7, client_id="fuzz"
            )
            out.append(bytes(encode_request(header, cls()))[4:])
            out.append(bytes(encode_request(header, filled(cls, version)))[4:])
    return out


def test_one_input(data: bytes) -> None:
    try:
        key, version, _ = peek_request_header(data)
        _header, body_offset = decode_request_header(data)
    except DecodeError:
        return
    cls = REQUESTS[key]
    if version > cls.VALID_VERSIONS[1]:
        return  # the broker answers UNSUPPORTED_VERSION without reading the body
    try:
        msg, _end = codec.decode_from(cls, version, memoryview(data), body_offset)
    except DecodeError:
        return
    check_round_trip(cls, version, msg)
