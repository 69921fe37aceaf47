"""Fuzz: random and mutated inputs either decode or raise DecodeError, quickly."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kbroker.wire import codec
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.framing import FrameDecoder
from kbroker.wire.headers import decode_request_header
from kbroker.wire.messages import REQUESTS, RESPONSES
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.produce_request import ProduceRequest

pytestmark = pytest.mark.timeout(30)  # no input may hang the decoder

GOLDEN = sorted((Path(__file__).resolve().parent / "golden").glob("*.hex"))
SEEDS = [bytes.fromhex(p.read_text().strip()) for p in GOLDEN]
KEYS = sorted(REQUESTS)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _decode_frame(frame: bytes) -> None:
    """The broker's path: header, then body; only DecodeError may escape."""
    try:
        header, offset = decode_request_header(frame)
        cls = REQUESTS[header.request_api_key]
        if header.request_api_version <= cls.VALID_VERSIONS[1]:
            codec.decode(cls, header.request_api_version, memoryview(frame)[offset:])
    except DecodeError:
        pass


@FUZZ
@given(st.binary(max_size=200))
def test_random_frames(data: bytes) -> None:
    _decode_frame(data)


@FUZZ
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6), st.integers(0, 10_000))
def test_mutated_golden_frames(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    frame = bytearray(seed)
    for pos, value in flips:
        frame[pos % len(frame)] = value
    _decode_frame(bytes(frame[: max(8, len(frame) - cut % len(frame))]))


@FUZZ
@given(st.sampled_from(KEYS), st.booleans(), st.integers(0, 20), st.binary(max_size=120))
def test_random_bodies_for_every_api(key: int, response: bool, version: int, body: bytes) -> None:
    cls = (RESPONSES if response else REQUESTS)[key]
    version = version % (cls.VALID_VERSIONS[1] + 1)
    with contextlib.suppress(DecodeError):
        codec.decode(cls, version, body)


@pytest.mark.parametrize("version", [0, 9])
def test_hostile_array_length_allocates_nothing(version: int) -> None:
    # ProduceRequest with topic_data length 2**31 - 1 (classic) / 2**32 - 1 (compact varint)
    if version < 9:
        body = struct.pack(">hi", 1, 1000) + struct.pack(">i", 2**31 - 1)
    else:
        body = b"\x00" + struct.pack(">hi", 1, 1000) + b"\xff\xff\xff\xff\x0f"
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="exceeds"):
            codec.decode(ProduceRequest, version, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # nothing was allocated for the announced 2**31 elements: the length is refused first
    assert peak < 1 << 20


@pytest.mark.parametrize(
    "body",
    [
        struct.pack(">i", 2**31 - 1),  # topics array
        struct.pack(">ih", 1, 0x7FFF),  # a string longer than the input
        struct.pack(">ih", 1, -2),  # an impossible string length
        struct.pack(">i", -5),  # an impossible array length
    ],
)
def test_hostile_lengths_say_what_was_wrong(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        codec.decode(MetadataRequest, 1, body)
    assert "MetadataRequest" in str(info.value)


def test_overlong_varint_is_rejected() -> None:
    with pytest.raises(DecodeError, match="varint"):
        codec.decode(MetadataRequest, 9, b"\xff" * 20)


@FUZZ
@given(st.binary(max_size=64), st.integers(1, 16))
def test_frame_decoder_never_raises_anything_else(data: bytes, chunk: int) -> None:
    dec = FrameDecoder(1000)
    try:
        for i in range(0, len(data), chunk):
            dec.feed(data[i : i + chunk])
            while dec.next_frame() is not None:
                pass
    except DecodeError:
        pass
