"""One client connection: buffer bytes, cut frames, dispatch one at a time, write answers.

Theory of operation
-------------------
A :class:`KafkaConnection` is an ``asyncio.BufferedProtocol``: the event loop asks it for a
buffer (``get_buffer``), receives into it and reports how much came (``buffer_updated``), and
tells it when the socket's send buffer fills and drains (``pause_writing``/``resume_writing``).
There is no per-connection reader coroutine and no await per frame; the connection is a
small state machine over these facts:

- ``_scratch[_start:_end]``: bytes received and not yet cut into a frame, in a fixed
  ``READ_BUFFER_BYTES`` buffer that is never resized (pending bytes move to its front when
  the free tail runs out).  Frames up to ``DIRECT_FRAME_BYTES`` are cut from it with one copy;
- ``_frame``: a larger frame being received.  Once its size is known it gets its own
  ``bytearray`` and the socket reads straight into it (``_filled`` bytes so far), so a 1 MB
  Produce is not copied at all on the way in; it is dispatched as that ``bytearray``, which
  nothing writes to afterwards;
- ``_busy``: a request is being answered (one in flight, as Kafka's SocketServer mutes the
  channel): later frames stay in ``_scratch`` until its answer has been handed to the transport;
- ``_write_blocked``: the transport's send buffer is above its high-water mark (a client
  that does not read its answers): no further request is dispatched until it drains;
- ``_reading``: whether the transport is delivering bytes.  Reading stops while the
  connection cannot dispatch (busy or write-blocked) and ``_scratch`` is full; it resumes
  when a frame can be dispatched again.  So a connection holds at most ``READ_BUFFER_BYTES``
  of read-ahead plus one frame being received (bounded by ``socket.request.max.bytes``; a
  large frame is only started while the connection is free), one request in handling and
  one transport write buffer.

Cutting frames (``_advance``): the 4-byte size comes first.  A negative size, one below the
smallest possible request header, or one above ``socket.request.max.bytes`` closes the
connection.  A complete frame is dispatched with ``await broker.dispatch(frame, peer)``: the
coroutine is first run inline (``send(None)``), so a request that never waits (Produce,
Metadata, most others) is answered within ``buffer_updated`` with no task; one that does wait
(a Fetch long poll, a JoinGroup) continues in a task (``_finish_in_task``), which waits on
what the coroutine yielded exactly as a task running it from the start would.  Hence the one
rule for handlers: nothing before their first real wait may need ``asyncio.current_task()``
(``asyncio.timeout`` does; ``wait_for`` and futures do not).  Its answer is
written with ``transport.write``; Produce acks=0 has none.  Then the next buffered frame is
cut, so pipelined requests are answered in order.

Time limits: ``connections.max.idle.ms`` bounds the wait for a complete frame, counted from
when the connection became ready for it (so a stalled half-frame is dropped too), and the
time the send buffer stays full.  A handler's own wait (Fetch ``max_wait_ms``, a rebalance)
is not bounded by it.  One timer per connection checks the deadline lazily.

A frame that cannot be decoded, an unknown API key and other ``CloseConnection`` cases close
this connection only.  End of input closes the connection once the buffered complete
frames are answered.  Shutdown (``Broker.shutdown`` calls :meth:`KafkaConnection.shutdown`):
an idle connection closes at once, a busy one after writing the answer it is preparing;
whatever is still running after the grace period is cancelled (:meth:`abort`).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import types
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# The smallest request: api_key(2) + api_version(2) + correlation_id(4) + client_id length(2).
MIN_REQUEST_FRAME_BYTES = 10
# The receive buffer, and so the read-ahead while a request is being answered.  Clients
# pipeline small requests (Metadata, Heartbeat, small Produce/Fetch); 64 KiB holds many of
# them, so the next is ready to dispatch, and the kernel's socket buffers hold the rest.
# Every connection has one (filled with zeros, so resident): 100 connections cost 6.4 MB.
READ_BUFFER_BYTES = 64 * 1024
# Frames above this are received straight into their own buffer (no copy); below it, one
# copy out of the receive buffer is cheaper than an extra recv call per frame.
DIRECT_FRAME_BYTES = 16 * 1024

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")

Response = bytes | bytearray | None


class CloseConnection(Exception):
    """Raised by dispatch when Kafka would close the connection rather than answer."""


class KafkaConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "broker", "peer", "_loop", "_transport", "_scratch", "_start", "_end", "_frame", "_filled", "_busy", "_write_blocked", "_reading",
        "_eof", "_closed", "_idle_since", "_idle_timer", "_idle_timeout_s", "_max_frame_bytes",
        "_task", "_debug",
    )

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.peer = "?"
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._scratch = bytearray(READ_BUFFER_BYTES)
        self._start = 0
        self._end = 0
        self._frame: bytearray | None = None
        self._filled = 0
        self._busy = False
        self._write_blocked = False
        self._reading = True
        self._eof = False
        self._closed = False  # the transport is closing or gone: nothing more is read or written
        self._idle_since: float | None = None  # loop time the current wait began; None: not waiting
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_timeout_s = broker.config.get_int("connections.max.idle.ms") / 1000
        self._max_frame_bytes = broker.config.get_int("socket.request.max.bytes")
        self._task: asyncio.Task[None] | None = None
        self._debug = logger.isEnabledFor(logging.DEBUG)  # per-request lines: --log-level DEBUG

    # -- transport callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if not self.broker.accept_connection(self):
            self._closed = True
            transport.close()
            return
        self._idle_since = self._loop.time()
        self._idle_timer = self._loop.call_at(self._idle_since + self._idle_timeout_s, self._check_idle)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._frame is not None:
            return memoryview(self._frame)[self._filled :]
        if self._end == len(self._scratch):
            self._compact()  # never full here: reading pauses first (buffer_updated)
        return memoryview(self._scratch)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        frame = self._frame
        if frame is not None:
            self._filled += nbytes
            if self._filled == len(frame):
                self._frame = None
                if self._dispatch(frame):
                    self._advance()
            return
        self._end += nbytes
        if self._busy or self._write_blocked:
            if self._end - self._start >= len(self._scratch):
                self._pause_reading()
            return
        self._advance()

    def _compact(self) -> None:
        """Move the pending bytes to the front of the receive buffer (same size: no resize,
        so it is safe while the transport still holds a view of it)."""
        start, end = self._start, self._end
        if start:
            self._scratch[: end - start] = memoryview(self._scratch)[start:end]
            self._start, self._end = 0, end - start

    def eof_received(self) -> bool:
        self._eof = True
        if not self._busy and not self._write_blocked:
            self._advance()
        return True  # keep the transport open to write pending answers; we close it

    def pause_writing(self) -> None:
        self._write_blocked = True
        if not self._busy:
            self._idle_since = self._loop.time()  # bounded: a peer that never reads is dropped

    def resume_writing(self) -> None:
        self._write_blocked = False
        if not self._busy:
            self._advance()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._frame = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self._busy:
            self.broker.forget_connection(self)
        # else: the request in handling finishes (its answer is dropped) and then forgets us.

    # -- the state machine ---------------------------------------------------------------

    def _advance(self) -> None:
        """Cut the next complete frame from the buffer and dispatch it, or wait for bytes."""
        if self._closed:
            return
        if self.broker.closing:
            self._close()
            return
        scratch = self._scratch
        while self._end - self._start >= 4:
            start = self._start
            size = _SIZE.unpack_from(scratch, start)[0]
            if size < MIN_REQUEST_FRAME_BYTES or size > self._max_frame_bytes:
                logger.warning(
                    "%s: frame size %d outside [%d, %d], closing", self.peer, size, MIN_REQUEST_FRAME_BYTES, self._max_frame_bytes
                )
                self._close()
                return
            end = start + 4 + size
            if self._end < end:
                if size > DIRECT_FRAME_BYTES:
                    # Receive the rest straight into the frame's own buffer.
                    have = self._end - start - 4
                    frame = bytearray(size)
                    frame[:have] = memoryview(scratch)[start + 4 : self._end]
                    self._frame, self._filled = frame, have
                    self._start = self._end = 0
                elif end > len(scratch):
                    self._compact()
                break
            frame_bytes = bytes(memoryview(scratch)[start + 4 : end])
            if end == self._end:
                self._start = self._end = 0
            else:
                self._start = end
            if not self._dispatch(frame_bytes):
                return  # answered later (in a task), or the connection is closing
            if self._write_blocked or self._closed:
                return
        # Waiting for (the rest of) a frame.
        if self._eof:
            self._close()
            return
        self._idle_since = self._loop.time()
        if not self._reading:
            self._reading = True
            assert self._transport is not None
            self._transport.resume_reading()

    def _dispatch(self, frame: bytes | bytearray) -> bool:
        """Answer ``frame``; True if that is done (answered or nothing to answer), False if
        the answer comes later from a task or the connection was closed."""
        self._busy = True
        self._idle_since = None
        broker = self.broker
        broker.in_flight += 1
        started = time.monotonic()
        coro = broker.dispatch(frame, self.peer)
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return self._answered(frame, stop.value, started)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001  (CloseConnection, or a bug: close this one only)
            self._failed(exc)
            return False
        # The handler waits (long poll, rebalance): continue in a task.
        self._task = self._loop.create_task(self._finish_in_task(coro, waiting_on, frame, started))
        return False

    async def _finish_in_task(
        self, coro: Coroutine[Any, Any, Response], waiting_on: Any, frame: bytes | bytearray, started: float
    ) -> None:
        try:
            response = await _resume(coro, waiting_on)
        except BaseException as exc:  # noqa: BLE001
            self._task = None
            self._failed(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._task = None
        if self._answered(frame, response, started):
            self._advance()

    def _answered(self, frame: bytes | bytearray, response: Response, started: float) -> bool:
        self.broker.in_flight -= 1
        self._busy = False
        if self._closed:
            self.broker.forget_connection(self)
            return False
        if response is not None:
            assert self._transport is not None
            self._transport.write(response)  # may call pause_writing
        if self._debug:
            key, version, correlation_id = _HEADER.unpack_from(frame)
            logger.debug(
                "%s: key %d v%d corr %d answered %s in %.1f ms",
                self.peer, key, version, correlation_id,
                "-" if response is None else f"{len(response)} bytes", (time.monotonic() - started) * 1000,
            )
        if self.broker.closing:
            self._close()
            return False
        if self._write_blocked:
            self._idle_since = self._loop.time()
        return True

    def _failed(self, exc: BaseException) -> None:
        self.broker.in_flight -= 1
        self._busy = False
        if isinstance(exc, CloseConnection):
            logger.info("%s: closing: %s", self.peer, exc)
        elif not isinstance(exc, (asyncio.CancelledError, ConnectionError)):
            logger.error("%s: request failed, closing the connection", self.peer, exc_info=exc)
        if self._closed:
            self.broker.forget_connection(self)
        else:
            self._close()

    def _pause_reading(self) -> None:
        if self._reading and not self._closed:
            self._reading = False
            assert self._transport is not None
            self._transport.pause_reading()

    def _check_idle(self) -> None:
        self._idle_timer = None
        if self._closed:
            return
        now = self._loop.time()
        since = self._idle_since
        if since is not None and now - since >= self._idle_timeout_s:
            logger.info("%s: idle, stalled or not reading for %.0f s, closing", self.peer, self._idle_timeout_s)
            self._close(abort=self._write_blocked)
            return
        due = (since if since is not None else now) + self._idle_timeout_s
        self._idle_timer = self._loop.call_at(due, self._check_idle)

    def _close(self, abort: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        assert self._transport is not None
        if abort:
            self._transport.abort()
        else:
            self._transport.close()  # sends what is buffered first

    # -- shutdown --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Close now if idle; a busy connection closes after writing its answer."""
        if not self._busy:
            self._close()

    def abort(self) -> asyncio.Task[None] | None:
        """End the connection now: cancel its request, drop unsent bytes.  Returns the
        cancelled task (to await), if a request was running in one."""
        task = self._task
        if task is not None:
            task.cancel()
        if not self._closed:
            self._close(abort=True)
        return task


@types.coroutine
def _yield(value: Any) -> Generator[Any, None, None]:
    """Hand ``value`` (what the inline step yielded) to the running task."""
    yield value


async def _resume(coro: Coroutine[Any, Any, Response], waiting_on: Any) -> Response:
    """Drive ``coro``, whose first step ran outside any task and yielded ``waiting_on``,
    to its end inside the current task, as the task would have: the task waits on what the
    coroutine yields, and cancelling the task throws ``CancelledError`` into it."""
    while True:
        try:
            await _yield(waiting_on)
        except BaseException as exc:  # the task's cancellation: pass it to the coroutine
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
