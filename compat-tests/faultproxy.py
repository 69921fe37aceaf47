"""A Kafka-frame-aware TCP proxy on 127.0.0.1 that can lose or delay responses.

Used to make a real client retry a produce request that the broker already
appended: the request is forwarded, the broker's response is swallowed and the
client connection is cut.  It can also hold back the answers to one API (say
SyncGroup) for a while, as a loaded broker or network would, to put a client's
timers in the order a test needs.  The broker is started with ``--advertise`` pointing at
the proxy, so every client connection (bootstrap and leader) goes through it.

Only the 4-byte frame length, the request header's api_key (int16 at 0) and the
correlation id (int32 at 4 in requests, at 0 in responses) are read; everything
else is forwarded byte for byte.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time

PRODUCE = 0


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except OSError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    body = _read_exact(sock, size)
    return None if body is None else head + body


class FaultProxy:
    """Forward 127.0.0.1:<port> to the broker; drop the next ``n`` produce responses, or
    hold back the responses to one API."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.target_port = 0
        self._lock = threading.Lock()
        self._drop_left = 0
        self.dropped = 0
        # api_key -> [seconds to hold its responses, requests of it to pass undelayed first]
        self._delays: dict[int, list[float]] = {}
        self.delayed = 0
        self.produce_requests = 0
        self._conns: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="faultproxy-accept", daemon=True).start()

    def drop_produce_responses(self, n: int) -> None:
        with self._lock:
            self._drop_left = n

    def delay_responses(self, api_key: int, seconds: float, after: int = 0) -> None:
        """Hold each response to ``api_key`` for ``seconds`` (all later responses on that
        connection wait behind it, so order is kept), except for the first ``after``
        requests of that API."""
        with self._lock:
            self._delays[api_key] = [seconds, after]

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for c in self._conns:
                c.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            doomed: set[int] = set()  # correlation ids whose responses must be lost
            held: dict[int, float] = {}  # correlation id -> seconds to hold its response
            threading.Thread(
                target=self._requests, args=(client, upstream, doomed, held), daemon=True
            ).start()
            threading.Thread(
                target=self._responses, args=(upstream, client, doomed, held), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, doomed: set[int], held: dict[int, float]
    ) -> None:
        while (frame := _read_frame(client)) is not None:
            api_key, _version, correlation_id = struct.unpack(">hhi", frame[4:12])
            with self._lock:
                delay = self._delays.get(api_key)
                if delay is not None:
                    if delay[1] > 0:
                        delay[1] -= 1
                    else:
                        held[correlation_id] = delay[0]
            if api_key == PRODUCE:
                with self._lock:
                    self.produce_requests += 1
                    if self._drop_left > 0:
                        self._drop_left -= 1
                        doomed.add(correlation_id)
            try:
                upstream.sendall(frame)
            except OSError:
                break
        self._cut(client, upstream)

    def _responses(
        self, upstream: socket.socket, client: socket.socket, doomed: set[int], held: dict[int, float]
    ) -> None:
        while (frame := _read_frame(upstream)) is not None:
            (correlation_id,) = struct.unpack(">i", frame[4:8])
            with self._lock:
                hold = held.pop(correlation_id, 0.0)
                if hold:
                    self.delayed += 1
            if hold:
                time.sleep(hold)
            if correlation_id in doomed:
                # The broker has answered (so it appended); the client never hears it.
                with self._lock:
                    self.dropped += 1
                break
            try:
                client.sendall(frame)
            except OSError:
                break
        self._cut(client, upstream)

    @staticmethod
    def _cut(*socks: socket.socket) -> None:
        for s in socks:
            # The other direction may have closed it already: nothing left to do then.
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
