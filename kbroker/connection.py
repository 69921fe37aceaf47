"""One client connection: a protocol that buffers bytes and cuts frames, and one task that answers them.

Theory of operation
-------------------
Two halves, as in uvicorn or hypercorn: the event loop's callbacks (an
``asyncio.BufferedProtocol``) receive bytes and cut request frames; one task per connection
(:meth:`KafkaConnection._serve`, created in ``connection_made``) takes the frames one at a
time, awaits ``broker.dispatch`` for each and writes the answer.  Every handler therefore
runs inside a real task, on every Python version and event loop: a Fetch long poll, a
parked JoinGroup, anything that uses ``asyncio.timeout`` or ``asyncio.current_task()``.

Protocol state (changed only by the loop's callbacks and by the task between awaits):

- ``_scratch[_start:_end]``: bytes received and not yet cut into a frame, in a fixed
  ``READ_BUFFER_BYTES`` buffer that is never resized (pending bytes move to its front when
  the free tail runs out).  Frames up to ``DIRECT_FRAME_BYTES`` are cut from it with one copy;
- ``_frame``: a larger frame being received.  Once its size is known it gets its own
  ``bytearray`` and the socket reads straight into it (``_filled`` bytes so far), so a 1 MB
  Produce is not copied at all on the way in; it is dispatched as that ``bytearray``, which
  nothing writes to afterwards;
- ``_ready``: a complete frame cut for the task and not yet taken by it;
- ``_busy``: the task is answering a request (one in flight, as Kafka's SocketServer mutes
  the channel): later frames stay uncut in ``_scratch`` until its answer has been handed to
  the transport, so requests of one connection are answered in order;
- ``_muted``: a client quota throttled the request just answered (``Session.throttle_ms``,
  set by ``Broker.dispatch``): as Kafka mutes the channel (KIP-219), the task waits out the
  throttle time before it cuts the next frame; the answer itself went at once;
- ``_write_blocked``: the transport's send buffer is above its high-water mark (a client
  that does not read its answers): the task cuts no further frame until it drains;
- ``_held_bytes``: what the answer being sent holds of the broker-wide response budget
  (``kbroker.queued.max.response.bytes``, ``kbroker.limits.ResponseMemory``): a Fetch's
  record bytes, then its encoded answer until the transport's buffer is empty.  While it is
  not, the write limits are lowered to (0, 0) so ``resume_writing`` says when it empties;
  ``connection_lost`` gives it back too;
- ``_reading``: whether the transport is delivering bytes.  Reading stops while no frame can
  be cut (busy, muted, write-blocked or a frame ready) and ``_scratch`` is full; it resumes when the
  task waits for a frame again.  So a connection holds at most ``READ_BUFFER_BYTES`` of
  read-ahead plus one frame being received (bounded by ``socket.request.max.bytes``; a large
  frame is only started while the connection is free), one request in handling and one
  transport write buffer.

The task's loop: cut the next frame (``_advance``); if there is none, wait on ``_wakeup``, a
future that ``buffer_updated`` (a frame became complete), ``eof_received``,
``resume_writing`` and ``connection_lost`` resolve.  With a frame, await the dispatch, write
the answer (Produce acks=0 has none) and loop: pipelined frames already buffered are
answered one after another without a wake-up in between.

Cutting frames (``_advance``): the 4-byte size comes first.  A negative size, one below the
smallest possible request header, or one above ``socket.request.max.bytes`` closes the
connection (a TLS ClientHello on a PLAINTEXT listener is one: it is logged as such).

Security (``kbroker.security``): a TLS listener's connection is already decrypted by the
transport.  On a SASL listener the connection has a ``_gate``, its authenticator: until
authentication succeeds every frame goes to the gate instead of ``broker.dispatch``
(frames are bounded by ``sasl.server.max.receive.size`` meanwhile), and the gate may ask
for the connection to be closed after its answer.  Authenticated, the gate is gone and the
loop is the PLAINTEXT one.

Time limits: ``connections.max.idle.ms`` bounds the wait for a complete frame, counted from
when the connection became ready for it (so a stalled half-frame is dropped too), and the
time the send buffer stays full.  A partial request -- even part of its 4-byte size --
after which nothing arrives for ``kbroker.connections.partial.request.timeout.ms`` closes
the connection sooner (a slow-header client holds a descriptor and a receive buffer).

Memory: a frame above ``DIRECT_FRAME_BYTES`` takes its size from the broker's
``queued.max.request.bytes`` pool (``kbroker.limits.RequestMemory``) before its buffer is
allocated and gives it back once answered; while the pool has no room the connection
reads nothing (``_waiting_memory``) and is woken when some is given back.  A handler's own wait (Fetch ``max_wait_ms``, a rebalance)
is not bounded by it.  One timer per connection checks the deadline lazily.

A frame that cannot be decoded, an unknown API key and other ``CloseConnection`` cases close
this connection only.  A ``Blackhole`` (a fault rule, ``kbroker.control.faults``) leaves it
open: the task drops every later frame unanswered until the peer or the idle timer closes it.  End of input closes the connection once the buffered complete
frames are answered.  When the transport is lost during a request, the request finishes
(its answer is dropped) and the task ends.  Shutdown (``Broker.shutdown`` calls
:meth:`KafkaConnection.shutdown`): an idle connection closes at once, a busy one after
writing the answer it is preparing; whatever is still running after the grace period is
cancelled (:meth:`abort`).  The task removes its connection from the broker when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import socket
import struct
import time
from typing import TYPE_CHECKING, cast

from kbroker.session import Session

if TYPE_CHECKING:
    from kbroker.security.listener import ListenerSecurity
    from kbroker.security.sasl import Authenticator
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# The smallest request: api_key(2) + api_version(2) + correlation_id(4) + client_id length(2).
MIN_REQUEST_FRAME_BYTES = 10
# The receive buffer, and so the read-ahead while a request is being answered.  Clients
# pipeline small requests (Metadata, Heartbeat, small Produce/Fetch); 64 KiB holds many of
# them, so the next is ready to dispatch, and the kernel's socket buffers hold the rest.
# Every connection has one, in anonymous memory: only the pages it has touched are
# resident (an idle client that sent a few small requests: one or two 4 KiB pages).
READ_BUFFER_BYTES = 64 * 1024
# Frames above this are received straight into their own buffer (no copy); below it, one
# copy out of the receive buffer is cheaper than an extra recv call per frame.
DIRECT_FRAME_BYTES = 16 * 1024

# The first byte of a TLS ClientHello (a handshake record, then version major 3): what a
# TLS client sends to a PLAINTEXT listener, read there as a size of about 369 million.
TLS_HANDSHAKE_RECORD = 0x16

_SIZE = struct.Struct(">i")
_HEADER = struct.Struct(">hhi")

Response = bytes | bytearray | None
# What the task answers a blackholed request with: nothing, now or later (see Blackhole).
SILENCE = b""


class CloseConnection(Exception):
    """Raised by dispatch when Kafka would close the connection rather than answer."""


class Blackhole(CloseConnection):
    """Raised by dispatch (a fault rule): keep the connection open, take its requests and
    never answer again, as a node cut off by the network looks to its client."""


class KafkaConnection(asyncio.BufferedProtocol):
    __slots__ = (
        "broker", "peer", "session", "_loop", "_transport", "_scratch", "_start", "_end", "_frame", "_filled", "_ready",
        "_busy", "_muted", "_write_blocked", "_reading", "_eof", "_closed", "_idle_since", "_idle_timer",
        "_idle_timeout_s", "_max_frame_bytes", "_min_frame_bytes", "_task", "_wakeup", "_debug", "security", "_gate",
        "node_id",
        "_memory", "_reserved_bytes", "_waiting_memory", "_last_byte_s", "_partial_timeout_s",
        "_held_bytes", "_write_limits",
    )

    def __init__(self, broker: Broker, security: ListenerSecurity | None = None, node_id: int | None = None) -> None:
        self.broker = broker
        self.peer = "?"
        self.security = security
        self.session = Session() if security is None else security.new_session()
        # The node whose listener accepted it: the configured node.id, or a virtual cluster's
        # node (kbroker.cluster); the broker's connection factory always says which.
        if node_id is not None:
            self.session.node_id = node_id
        self.node_id = self.session.node_id
        self._gate: Authenticator | None = None  # SASL authentication pending (kbroker.security.sasl)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        # Anonymous memory: pages are zero until touched, so an idle connection keeps only
        # the few it has used resident (a bytearray would be 64 KiB resident from the start).
        self._scratch = mmap.mmap(-1, READ_BUFFER_BYTES)
        self._start = 0
        self._end = 0
        self._frame: bytearray | None = None
        self._filled = 0
        self._ready: bytes | bytearray | None = None
        self._busy = False
        self._muted = False  # throttled by a client quota: no frame is cut (see _mute)
        self._write_blocked = False
        self._reading = True
        self._eof = False
        self._closed = False  # the transport is closing or gone: nothing more is read or written
        self._idle_since: float | None = None  # loop time the current wait began; None: not waiting
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_timeout_s = broker.config.get_int("connections.max.idle.ms") / 1000
        self._max_frame_bytes = broker.config.get_int("socket.request.max.bytes")
        self._min_frame_bytes = MIN_REQUEST_FRAME_BYTES
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None  # what the task waits on between frames
        self._debug = logger.isEnabledFor(logging.DEBUG)  # per-request lines: --log-level DEBUG
        self._memory = broker.request_memory  # queued.max.request.bytes (kbroker.limits)
        self._reserved_bytes = 0  # taken from it for the large frame received or in handling
        self._waiting_memory = False  # a large frame waits for room in it; reading paused
        self._last_byte_s = 0.0  # loop time bytes last arrived (the partial-request timeout)
        self._partial_timeout_s = broker.config.get_int("kbroker.connections.partial.request.timeout.ms") / 1000
        self._held_bytes = 0  # of the response budget (kbroker.queued.max.response.bytes), for the answer being sent
        self._write_limits: tuple[int, int] | None = None  # the transport's (high, low) while lowered to (0, 0)

    # -- transport callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCPTransport implements asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        self.peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        self.session.client_host = str(peername[0]) if isinstance(peername, tuple) else ""
        send_buffer_bytes = self.broker.config.get_int("socket.send.buffer.bytes")
        sock = transport.get_extra_info("socket")
        if send_buffer_bytes > 0 and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
        if (self.security is not None and self.security.listener.protocol != "PLAINTEXT" and not self._secure()) or not self.broker.accept_connection(self):
            self._closed = True
            transport.close()
            return
        self._idle_since = self._loop.time()
        self._idle_timer = self._loop.call_at(self._idle_since + self._idle_timeout_s, self._check_idle)
        self._task = self._loop.create_task(self._serve())

    def _secure(self) -> bool:
        """TLS principal or SASL authenticator for a new connection; False: refuse it."""
        security = self.security
        assert security is not None and self._transport is not None
        if security.sasl is not None:
            self._gate = security.sasl.authenticator(self)
            self._max_frame_bytes = min(self._max_frame_bytes, security.sasl.max_receive_bytes)
            return True
        try:
            self.session.principal = security.tls_principal(self._transport)
        except ValueError as exc:  # NoMatchingRule, or a certificate that does not parse
            logger.warning("%s: refusing the TLS client: %s", self.peer, exc)
            return False
        return True

    def authenticated(self, keep_gate: bool = False) -> None:
        """SASL authentication succeeded: frames go to ``broker.dispatch`` from now on (or
        still through the gate, which then only checks the session's expiry)."""
        if not keep_gate:
            self._gate = None
        self._max_frame_bytes = self.broker.config.get_int("socket.request.max.bytes")
        self._min_frame_bytes = MIN_REQUEST_FRAME_BYTES

    def expect_raw_tokens(self) -> None:
        """SaslHandshake v0: the next frames are bare SASL tokens, however short."""
        self._min_frame_bytes = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._frame is not None:
            return memoryview(self._frame)[self._filled :]
        if self._end == len(self._scratch):
            self._compact()  # never full here: reading pauses first (buffer_updated)
        return memoryview(self._scratch)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._closed:
            return
        self._last_byte_s = self._loop.time()
        frame = self._frame
        if frame is not None:
            self._filled += nbytes
            if self._filled == len(frame):
                self._frame = None
                self._ready = frame
                self._wake()
            return
        self._end += nbytes
        if self._busy or self._muted or self._write_blocked or self._ready is not None:
            if self._end - self._start >= len(self._scratch):
                self._pause_reading()
            return
        if self._advance():
            self._wake()

    def _compact(self) -> None:
        """Move the pending bytes to the front of the receive buffer (same size: no resize,
        so it is safe while the transport still holds a view of it)."""
        start, end = self._start, self._end
        if start:
            self._scratch.move(0, start, end - start)
            self._start, self._end = 0, end - start

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return True  # keep the transport open to write pending answers; we close it

    def pause_writing(self) -> None:
        self._write_blocked = True

    def resume_writing(self) -> None:
        self._write_blocked = False
        if self._held_bytes and self._transport is not None and not self._transport.get_write_buffer_size():
            self._release_response()
            if self._write_limits is not None:
                high, low = self._write_limits
                self._write_limits = None
                self._transport.set_write_buffer_limits(high, low)
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._frame = None
        self._ready = None
        self._release_response()  # the unsent answer is gone with the transport
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._wake()  # a waiting task ends; a busy one ends after its request (answer dropped)

    # -- the task --------------------------------------------------------------------------

    def _wake(self) -> None:
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    async def _serve(self) -> None:
        """Answer this connection's frames one at a time, in order, until it closes."""
        broker = self.broker
        try:
            while not self._closed:
                frame = self._ready
                if frame is None and self._advance():
                    frame = self._ready
                if frame is None:
                    if self._closed:
                        return
                    self._wakeup = self._loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                self._ready = None
                self._busy = True
                self._idle_since = None
                broker.in_flight += 1
                started = time.monotonic() if self._debug else 0.0
                gate = self._gate
                try:
                    if gate is None:
                        response = await broker.dispatch(frame, self.peer, self.session)
                    else:
                        response = await gate.handle(frame)
                except Blackhole as exc:
                    logger.info("%s: %s: no more answers on this connection", self.peer, exc)
                    response = SILENCE
                except CloseConnection as exc:
                    logger.info("%s: closing: %s", self.peer, exc)
                    self._close()
                    return
                except ConnectionError:
                    self._close()
                    return
                except Exception:  # a bug: close this connection only (CancelledError passes)
                    logger.exception("%s: request failed, closing the connection", self.peer)
                    self._close()
                    return
                finally:
                    broker.in_flight -= 1
                    self._busy = False
                    if self._reserved_bytes:
                        self._give_back_memory()
                taken = self.session.response_bytes
                if taken:  # a Fetch answer's record bytes, taken from the response budget
                    self.session.response_bytes = 0
                    self._held_bytes += taken
                if self._closed:
                    return
                if response is not None:
                    if response is SILENCE:
                        await self._swallow()
                        return
                    assert self._transport is not None
                    self._transport.write(response)  # may call pause_writing
                    if self._held_bytes:
                        self._hold_until_written(len(response))
                if gate is not None and gate.close_after_write:
                    self._close_later(gate.close_delay_s)  # a failed authentication: the answer, then the end
                    return
                if self.session.throttle_ms:
                    await self._mute(self.session.throttle_ms)
                    self.session.throttle_ms = 0
                if self._debug:
                    key, version, correlation_id = _HEADER.unpack_from(frame)
                    logger.debug(
                        "%s: key %d v%d corr %d answered %s in %.1f ms",
                        self.peer, key, version, correlation_id,
                        "-" if response is None else f"{len(response)} bytes", (time.monotonic() - started) * 1000,
                    )
                del frame, response
        finally:
            self._wakeup = None
            self._release_response()
            self._memory.forget(self)
            if self._reserved_bytes:
                self._give_back_memory()
            broker.forget_connection(self)

    def _hold_until_written(self, encoded_bytes: int) -> None:
        """The answer has gone to the transport: its records' own copy is freed, the encoded
        bytes stay held until the transport's buffer is empty (see kbroker.limits)."""
        memory = self.broker.response_memory
        memory.take(encoded_bytes)  # records and encoded answer coexisted until now
        memory.give_back(self._held_bytes)
        self._held_bytes = encoded_bytes
        transport = self._transport
        assert transport is not None
        if not transport.get_write_buffer_size():
            self._release_response()  # the kernel took it all: the usual case
        elif self._write_limits is None:
            # Be told (resume_writing) when the buffer is empty: pause at any byte, resume at 0.
            self._write_limits = transport.get_write_buffer_limits()[::-1]  # (low, high) -> (high, low)
            transport.set_write_buffer_limits(0, 0)  # calls pause_writing

    def _release_response(self) -> None:
        held = self._held_bytes + self.session.response_bytes
        if held:
            self._held_bytes = self.session.response_bytes = 0
            self.broker.response_memory.give_back(held)

    async def _swallow(self) -> None:
        """A blackholed connection: cut and drop frames, answer nothing, until it closes."""
        while not self._closed:
            self._ready = None
            if self._advance():
                continue
            if self._closed:
                return
            self._wakeup = self._loop.create_future()
            await self._wakeup
            self._wakeup = None
    async def _mute(self, throttle_ms: int) -> None:
        """Read no request for ``throttle_ms`` (a client quota throttled the last one; KIP-219).
        Bytes that arrive meanwhile stay uncut; reading pauses once the buffer is full.  A
        close or shutdown ends the wait at once."""
        self._muted = True
        deadline = self._loop.time() + throttle_ms / 1000
        try:
            while not self._closed and not self.broker.closing and self._loop.time() < deadline:
                self._wakeup = self._loop.create_future()
                timer = self._loop.call_at(deadline, self._wake)
                try:
                    await self._wakeup
                finally:
                    timer.cancel()
                    self._wakeup = None
        finally:
            self._muted = False

    def _advance(self) -> bool:
        """Cut the next complete frame into ``_ready`` (True), or get ready to receive it
        (False: the task waits).  Closes the connection on a bad size, at end of input and
        when the broker shuts down."""
        if self._closed:
            return False
        if self.broker.closing:
            self._close()
            return False
        if self._write_blocked:
            self._idle_since = self._loop.time()  # bounded: a peer that never reads is dropped
            return False
        if self._frame is not None:  # a large frame is still arriving
            if self._eof:
                self._close()  # ... and never will
            return False
        scratch = self._scratch
        if self._end - self._start >= 4:
            start = self._start
            size = _SIZE.unpack_from(scratch, start)[0]
            if size < self._min_frame_bytes or size > self._max_frame_bytes:
                if scratch[start] == TLS_HANDSHAKE_RECORD and scratch[start + 1] == 3 and self.session.security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
                    logger.warning(
                        "%s: a TLS handshake on %s listener %s (the client uses TLS, the listener does not), closing",
                        self.peer, self.session.security_protocol, self.session.listener_name,
                    )
                else:
                    logger.warning(
                        "%s: frame size %d outside [%d, %d], closing", self.peer, size, self._min_frame_bytes, self._max_frame_bytes
                    )
                self._close()
                return False
            end = start + 4 + size
            if self._end >= end:
                self._ready = bytes(memoryview(scratch)[start + 4 : end])
                if end == self._end:
                    self._start = self._end = 0
                else:
                    self._start = end
                return True
            if size > DIRECT_FRAME_BYTES:
                # Receive the rest straight into the frame's own buffer, once the pool
                # (queued.max.request.bytes) has room for it; until then nothing is read.
                if not self._memory.try_take(self, size, self._memory_freed):
                    self._waiting_memory = True
                    self._idle_since = None  # we keep the client waiting, not it us
                    self._pause_reading()
                    return False
                self._waiting_memory = False
                self._reserved_bytes = size
                have = self._end - start - 4
                frame = bytearray(size)
                frame[:have] = memoryview(scratch)[start + 4 : self._end]
                self._frame, self._filled = frame, have
                self._start = self._end = 0
            elif end > len(scratch):
                self._compact()
        # Waiting for (the rest of) a frame.
        if self._eof:
            self._close()
            return False
        now = self._idle_since = self._loop.time()
        if (self._frame is not None or self._end > self._start) and self._idle_timer is not None:
            # A partial request: make sure the timer looks at it within the partial timeout.
            due = now + self._partial_timeout_s
            if self._idle_timer.when() > due:
                self._idle_timer.cancel()
                self._idle_timer = self._loop.call_at(due, self._check_idle)
        if not self._reading:
            self._reading = True
            assert self._transport is not None
            self._transport.resume_reading()
        return False

    def _memory_freed(self) -> None:
        """The request pool may have room for the large frame this connection waits with."""
        if self._closed or not self._waiting_memory:
            return
        if not self._busy and self._ready is None and self._advance():
            self._wake()

    def _give_back_memory(self) -> None:
        size, self._reserved_bytes = self._reserved_bytes, 0
        self._memory.give_back(size)

    def _stalled_partial(self, now: float) -> float | None:
        """When a partial request (the task waits for its rest) stalls past its timeout:
        that deadline, or None if no partial request is pending."""
        if self._idle_since is None or self._write_blocked or self._waiting_memory:
            return None
        if self._frame is None and self._end <= self._start:
            return None
        return max(self._last_byte_s, self._idle_since) + self._partial_timeout_s

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
        partial_due = self._stalled_partial(now)
        if partial_due is not None and now >= partial_due:
            logger.info(
                "%s: sent part of a request, then nothing for %.0f s, closing", self.peer, self._partial_timeout_s
            )
            self._close()
            return
        due = (since if since is not None else now) + self._idle_timeout_s
        if partial_due is not None:
            due = min(due, partial_due)
        self._idle_timer = self._loop.call_at(due, self._check_idle)

    def _close_later(self, delay_s: float) -> None:
        """Stop reading and close after ``delay_s`` (the answer already written goes first)."""
        if delay_s <= 0:
            self._close()
            return
        self._pause_reading()
        self._loop.call_later(delay_s, self._close)

    def _close(self, abort: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake()
        assert self._transport is not None
        if abort:
            self._transport.abort()
        else:
            self._transport.close()  # sends what is buffered first

    # -- shutdown --------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Close now if idle (or muted by a quota); a busy connection closes after writing its answer."""
        if not self._busy:
            self._close()

    def abort(self) -> asyncio.Task[None] | None:
        """End the connection now: cancel its task (and so its request), drop unsent bytes.
        Returns the cancelled task (to await), if it is still running."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
        else:
            task = None
        if not self._closed:
            self._close(abort=True)
        return task
