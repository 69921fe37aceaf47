"""Test harness: an in-process broker on 127.0.0.1:0 (its event loop in a thread) and a raw client built on wire."""

from __future__ import annotations

import socket
import struct
from typing import Any

from kbroker.wire.codec import decode
from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
from kbroker.wire.messages import RESPONSES

CLIENT_TIMEOUT_S = 10.0


class RawClient:
    """A blocking Kafka client of one connection: send a message object, get the decoded answer."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=CLIENT_TIMEOUT_S)
        self.correlation_id = 0

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_frame(self) -> bytes | None:
        """One response frame, or None if the broker closed the connection."""
        head = self._recv_exactly(4)
        if head is None:
            return None
        (size,) = struct.unpack(">i", head)
        return self._recv_exactly(size)

    def _recv_exactly(self, n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            try:
                chunk = self.sock.recv(n - len(chunks))
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            chunks += chunk
        return bytes(chunks)

    def is_closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def request(self, msg: Any, version: int, *, expect_response: bool = True) -> Any:
        self.correlation_id += 1
        header = RequestHeader(
            request_api_key=msg.API_KEY, request_api_version=version, correlation_id=self.correlation_id, client_id="raw-test"
        )
        self.send_raw(encode_request(header, msg))
        if not expect_response:
            return None
        frame = self.recv_frame()
        assert frame is not None, "broker closed the connection"
        resp_header, offset = decode_response_header(frame, msg.API_KEY, version)
        assert resp_header.correlation_id == self.correlation_id
        return decode(RESPONSES[msg.API_KEY], version, memoryview(frame)[offset:])


