"""Response frames of every API key and version (the client side's decoder).

Input: byte 0 picks the API key (modulo the number of keys), byte 1 the version (modulo
the spec's maximum + 1); the rest is the response frame without its size prefix.
Property: as for requests -- ``DecodeError`` or a message that re-encodes to a fixed
point.
"""

from __future__ import annotations

from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.headers import ResponseHeader, decode_response_header, encode_response
from kbroker.wire.messages import RESPONSES

from fuzz.seeds import filled
from fuzz.targets._codec import check_round_trip, compile_plans

KEYS = sorted(RESPONSES)


def prepare() -> None:
    compile_plans([ResponseHeader, *RESPONSES.values()])


def seeds() -> list[bytes]:
    out = []
    for index, key in enumerate(KEYS):
        cls = RESPONSES[key]
        for version in range(cls.VALID_VERSIONS[1] + 1):
            for msg in (cls(), filled(cls, version)):
                frame = bytes(encode_response(7, key, version, msg))[4:]
                out.append(bytes([index, version]) + frame)
    return out


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    key = KEYS[data[0] % len(KEYS)]
    cls = RESPONSES[key]
    version = data[1] % (cls.VALID_VERSIONS[1] + 1)
    frame = memoryview(data)[2:]
    try:
        _header, body_offset = decode_response_header(frame, key, version)
        msg, _end = codec.decode_from(cls, version, frame, body_offset)
    except DecodeError:
        return
    check_round_trip(cls, version, msg)
