"""Size-prefixed frames: a 4-byte big-endian length, then that many bytes.

:class:`FrameDecoder` is fed whatever arrived from the peer and hands back complete
frames.  Each frame is an independent ``memoryview`` (its own copy of the bytes), so
zero-copy slices taken from it (e.g. Produce records) stay valid after more data is
fed.  A length above ``max_frame_bytes`` (Kafka's ``socket.request.max.bytes``) or
below zero raises :class:`FrameTooLarge` / :class:`DecodeError` before anything is
buffered for it.
"""

from __future__ import annotations

import struct

from kbroker.wire.exceptions import DecodeError

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "FrameDecoder", "FrameTooLarge", "frame"]

DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024
"""Kafka's default ``socket.request.max.bytes`` (100 MiB)."""

_SIZE = struct.Struct(">i")


class FrameTooLarge(DecodeError):
    """A frame announced more bytes than the configured maximum."""


def frame(payload: bytes | bytearray | memoryview) -> bytes:
    """Prefix ``payload`` with its 4-byte size."""
    return _SIZE.pack(len(payload)) + bytes(payload)


class FrameDecoder:
    """Reassembles frames from a byte stream.  Not thread-safe (one per connection).

    Invariant: ``self._buf[self._pos:]`` holds the bytes received but not yet returned.
    """

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < 0:
            raise ValueError("max_frame_bytes must be >= 0")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._pos = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes received and not yet returned as a frame."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes received from the peer."""
        self._buf += data

    def next_frame(self) -> memoryview | None:
        """The next complete frame's payload (without the size), or None if incomplete.

        Raises FrameTooLarge / DecodeError on a bad size; the decoder is then unusable
        (the stream has lost its framing) and the connection should be closed.
        """
        start = self._pos
        if len(self._buf) - start < 4:
            return None
        (size,) = _SIZE.unpack_from(self._buf, start)
        if size < 0:
            raise DecodeError(f"negative frame size {size}")
        if size > self.max_frame_bytes:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the maximum {self.max_frame_bytes}")
        end = start + 4 + size
        if len(self._buf) < end:
            return None
        with memoryview(self._buf) as view:
            payload = bytes(view[start + 4 : end])
        if end == len(self._buf):
            self._buf.clear()
            self._pos = 0
        elif end > 65536 and end * 2 > len(self._buf):
            del self._buf[:end]
            self._pos = 0
        else:
            self._pos = end
        return memoryview(payload)
