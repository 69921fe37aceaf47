"""FrameDecoder: frames fed whole, byte by byte, with trailing data; size limits."""

from __future__ import annotations

import pytest
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.framing import FrameDecoder, FrameTooLarge, frame

PAYLOADS = [b"", b"a", b"hello world", bytes(range(256)) * 40]
STREAM = b"".join(frame(p) for p in PAYLOADS)


def _drain(dec: FrameDecoder) -> list[bytes]:
    out = []
    while (f := dec.next_frame()) is not None:
        out.append(bytes(f))
    return out


def test_whole_stream_at_once() -> None:
    dec = FrameDecoder(1 << 20)
    dec.feed(STREAM)
    assert _drain(dec) == PAYLOADS
    assert dec.buffered_bytes == 0


def test_one_byte_at_a_time() -> None:
    dec = FrameDecoder(1 << 20)
    got: list[bytes] = []
    for i in range(len(STREAM)):
        dec.feed(STREAM[i : i + 1])
        got += _drain(dec)
    assert got == PAYLOADS


def test_trailing_partial_frame_waits() -> None:
    dec = FrameDecoder(1 << 20)
    dec.feed(STREAM + frame(b"tail")[:6])
    assert _drain(dec) == PAYLOADS
    assert dec.buffered_bytes == 6
    dec.feed(b"il")
    assert _drain(dec) == [b"tail"]


def test_frames_stay_valid_after_more_data() -> None:
    dec = FrameDecoder(1 << 20)
    dec.feed(frame(b"first") + frame(b"second"))
    first = dec.next_frame()
    dec.feed(frame(b"x" * 100_000))
    assert _drain(dec) == [b"second", b"x" * 100_000]
    assert first is not None and bytes(first) == b"first"


def test_frame_above_the_limit_is_refused_before_buffering() -> None:
    dec = FrameDecoder(100)
    dec.feed(frame(b"x" * 100))
    assert dec.next_frame() is not None
    dec.feed(b"\x7f\xff\xff\xff")
    with pytest.raises(FrameTooLarge, match="exceeds the maximum 100"):
        dec.next_frame()


def test_negative_size_is_a_decode_error() -> None:
    dec = FrameDecoder(100)
    dec.feed(b"\xff\xff\xff\xfe")
    with pytest.raises(DecodeError, match="negative"):
        dec.next_frame()
