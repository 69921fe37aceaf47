"""Test harness: an in-process broker on 127.0.0.1:0 (its event loop in a thread) and a raw client built on wire."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from kbroker.config import build_config
from kbroker.server import Broker
from wire.codec import decode
from wire.headers import RequestHeader, decode_response_header, encode_request
from wire.messages import RESPONSES

CLIENT_TIMEOUT_S = 10.0


class BrokerThread:
    """A Broker serving from its own event loop in a daemon thread."""

    def __init__(self, data_dir: Path, overrides: list[str]) -> None:
        self.data_dir = data_dir
        self.overrides = overrides
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.broker: Broker | None = None

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        config = build_config(listen="127.0.0.1:0", data_dir=str(self.data_dir), overrides=self.overrides, environ={})
        self.broker = Broker(config)
        self.call(self.broker.start())

    def stop(self) -> None:
        if self.broker is not None:
            self.call(self.broker.shutdown())
            self.broker = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def address(self) -> tuple[str, int]:
        assert self.broker is not None
        return self.broker.listen_address


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


