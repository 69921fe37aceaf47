"""One client connection: read a frame, dispatch it, write the answer, repeat.

Theory of operation
-------------------
Each connection is one coroutine that reads top to bottom:

1. ``readexactly(4)``: the frame size.  A negative size, one below the smallest possible
   request header, or one above ``socket.request.max.bytes`` closes the connection.
2. ``readexactly(size)``: the frame; both reads are bounded by ``connections.max.idle.ms``,
   so an idle or stalled peer is dropped.
3. Dispatch to the registered handler (``Broker.dispatch``).
4. ``write`` the response and ``await drain()``.

Only after the response is written is the next frame read: one request in flight per
connection, as Kafka's SocketServer does by muting the channel.  Responses therefore
leave in request order, and a client that does not read its responses stops being read
from (backpressure by drain).  A frame that cannot be decoded closes this connection
only; no exception escapes to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# The smallest request: api_key(2) + api_version(2) + correlation_id(4) + client_id length(2).
MIN_REQUEST_FRAME_BYTES = 10


class CloseConnection(Exception):
    """Raised by dispatch when Kafka would close the connection rather than answer."""


async def serve_connection(broker: Broker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peername = writer.get_extra_info("peername")
    peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
    max_frame_bytes = broker.config.get_int("socket.request.max.bytes")
    idle_timeout_s = broker.config.get_int("connections.max.idle.ms") / 1000
    debug = logger.isEnabledFor(logging.DEBUG)  # per-request lines: --log-level DEBUG
    try:
        while not broker.closing:
            try:
                # asyncio.timeout, unlike wait_for, creates no task per read (hot path).
                async with asyncio.timeout(idle_timeout_s):
                    head = await reader.readexactly(4)
                    size = int.from_bytes(head, "big", signed=True)
                    if size < MIN_REQUEST_FRAME_BYTES or size > max_frame_bytes:
                        logger.warning(
                            "%s: frame size %d outside [%d, %d], closing", peer, size, MIN_REQUEST_FRAME_BYTES, max_frame_bytes
                        )
                        return
                    frame = await reader.readexactly(size)
            except TimeoutError:
                logger.info("%s: idle or stalled for %.0f s, closing", peer, idle_timeout_s)
                return
            broker.in_flight += 1
            started = time.monotonic()
            try:
                response = await broker.dispatch(frame, peer)
            finally:
                broker.in_flight -= 1
            if response is not None:
                writer.write(response)
                await writer.drain()
            if debug:
                key, version, correlation_id = struct.unpack_from(">hhi", frame)
                logger.debug(
                    "%s: key %d v%d corr %d answered %s in %.1f ms",
                    peer, key, version, correlation_id,
                    "-" if response is None else f"{len(response)} bytes", (time.monotonic() - started) * 1000,
                )
    except CloseConnection as exc:
        logger.info("%s: closing: %s", peer, exc)
    except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
        pass  # the peer went away mid-frame or stalled: nothing to answer
    finally:
        writer.close()
        with contextlib.suppress(Exception):  # socket edge: the peer may already be gone
            await writer.wait_closed()
