"""The connection layer, on the default asyncio loop and on uvloop (what ``python -m kbroker``
runs): framing, ordering, backpressure and shutdown with the protocol fed directly (no kernel
deciding how bytes are split), then pipelining, limits and long polls over a real socket
against the real broker."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_harness import RawClient
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.headers import RequestHeader, decode_response_header, encode_request
from kbroker.wire.messages import RESPONSES
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import decode_records, iter_batches, make_batch

from kbroker.connection import (
    DIRECT_FRAME_BYTES,
    READ_BUFFER_BYTES,
    CloseConnection,
    KafkaConnection,
)
from kbroker.limits import RequestMemory
from kbroker.testing import BrokerThread

# Every wait in these tests is bounded by this.
DEADLINE_S = 10.0


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "uvloop" and os.environ.get("CI") != "true":
        pytest.importorskip("uvloop")  # in CI a missing uvloop fails (below) instead
    return str(request.param)


def _run(loop_kind: str, coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on a fresh event loop of the given kind."""
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if loop_kind == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(asyncio.wait_for(coro, DEADLINE_S))


def _broker(tmp_path: Path, loop_kind: str, settings: dict[str, str] | None = None) -> BrokerThread:
    if loop_kind == "uvloop":
        import uvloop

        old = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        try:
            bt = BrokerThread(tmp_path / "data", settings)
        finally:
            asyncio.set_event_loop_policy(old)
    else:
        bt = BrokerThread(tmp_path / "data", settings)
    bt.start()
    return bt


@pytest.fixture
def bt(tmp_path: Path, loop_kind: str) -> Iterator[BrokerThread]:
    b = _broker(tmp_path, loop_kind)
    try:
        yield b
    finally:
        b.close()


def _frame(msg: Any, version: int, correlation_id: int) -> bytes:
    header = RequestHeader(request_api_key=msg.API_KEY, request_api_version=version, correlation_id=correlation_id, client_id="conn-test")
    return bytes(encode_request(header, msg))


def _read_answer(c: RawClient, msg: Any, version: int) -> tuple[int, Any]:
    frame = c.recv_frame()
    assert frame is not None, "broker closed the connection"
    header, offset = decode_response_header(frame, msg.API_KEY, version)
    return header.correlation_id, decode(RESPONSES[msg.API_KEY], version, memoryview(frame)[offset:])


def _create(c: RawClient, name: str) -> None:
    resp = c.request(CreateTopicsRequest(topics=[CreatableTopic(name=name, num_partitions=1, replication_factor=1)]), 5)
    assert resp.topics[0].error_code == ErrorCode.NONE, resp


def _produce_req(name: str, values: list[bytes], acks: int = -1) -> ProduceRequest:
    batch = make_batch(values)
    return ProduceRequest(
        acks=acks, timeout_ms=5000, topic_data=[TopicProduceData(name=name, partition_data=[PartitionProduceData(index=0, records=bytes(batch))])]
    )


def _fetch_req(name: str, offset: int, max_wait_ms: int, max_bytes: int = 1 << 20) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait_ms=max_wait_ms, min_bytes=1, max_bytes=max_bytes, isolation_level=0,
        topics=[FetchTopic(topic=name, partitions=[FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=max_bytes)])],
    )


def _connections(bt: BrokerThread) -> list[KafkaConnection]:
    assert bt.broker is not None
    return list(bt.broker._connections)


def _wait_until(cond: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


# -- the protocol fed directly: framing without a kernel in between -------------------------
#
# These tests call the connection's BufferedProtocol methods themselves (get_buffer +
# buffer_updated, eof_received, pause_writing/resume_writing, connection_lost) with a fake
# transport and a fake broker, so how bytes are split is exactly what the test says.


class FakeConfig:
    def __init__(self, **values: int) -> None:
        self.values = {
            "connections.max.idle.ms": 600_000,
            "socket.request.max.bytes": 100 * 1024 * 1024,
            "queued.max.request.bytes": -1,
            "kbroker.connections.partial.request.timeout.ms": 30_000,
            "socket.send.buffer.bytes": -1,
        }
        self.values.update({k.replace("_", "."): v for k, v in values.items()})

    def get_int(self, name: str) -> int:
        return self.values[name]


class FakeBroker:
    """Answers every frame with ``b"re:" + frame``.  A frame starting with ``b"park"`` waits
    until the test releases it, using ``asyncio.timeout`` before its first wait (which needs
    a running task on Python 3.12+).  A frame starting with ``b"none"`` has no answer;
    ``b"boom"`` raises a bug, ``b"shut"`` raises CloseConnection."""

    def __init__(self, **config: int) -> None:
        self.config = FakeConfig(**config)
        self.request_memory = RequestMemory(self.config.get_int("queued.max.request.bytes"))
        self.closing = False
        self.in_flight = 0
        self.connections: set[KafkaConnection] = set()
        self.dispatched: list[bytes] = []
        self.release: asyncio.Event | None = None
        self.concurrent = 0
        self.max_concurrent = 0

    def accept_connection(self, conn: KafkaConnection) -> bool:
        self.connections.add(conn)
        return True

    def forget_connection(self, conn: KafkaConnection) -> None:
        self.connections.discard(conn)

    async def dispatch(self, frame: bytes | bytearray, peer: str, session: object = None) -> bytes | None:
        assert asyncio.current_task() is not None, "a handler must run inside a task"
        self.dispatched.append(bytes(frame))
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            if frame.startswith(b"park"):
                if self.release is None:
                    self.release = asyncio.Event()
                async with asyncio.timeout(DEADLINE_S):
                    await self.release.wait()
            if frame.startswith(b"none"):
                return None
            if frame.startswith(b"boom"):
                raise RuntimeError("a bug in dispatch")
            if frame.startswith(b"shut"):
                raise CloseConnection("Kafka would close here")
            return _sized(b"re:" + bytes(frame))
        finally:
            self.concurrent -= 1


class FakeTransport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.reading = True
        self.closed = False
        self.aborted = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else default

    def write(self, data: bytes | bytearray) -> None:
        assert not self.closed, "write after close"
        self.written += data

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True

    def is_closing(self) -> bool:
        return self.closed

    def answers(self) -> list[bytes]:
        out, data = [], bytes(self.written)
        while data:
            (size,) = struct.unpack_from(">i", data)
            out.append(data[4 : 4 + size])
            data = data[4 + size :]
        return out


def _sized(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _body(i: int, size: int, tag: bytes = b"req") -> bytes:
    """A frame body of exactly ``size`` bytes (>= 10, the smallest request) naming ``i``."""
    head = tag + b"%06d:" % i
    return head + bytes((i + k) % 251 for k in range(size - len(head)))


async def _connect(broker: FakeBroker) -> tuple[KafkaConnection, FakeTransport]:
    conn = KafkaConnection(broker)  # type: ignore[arg-type]
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def _settle() -> None:
    """Let the connection's task run until it waits again (bounded)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def _from_loop(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` from a plain event-loop callback, outside any task, as the event loop
    calls a protocol's methods (a test coroutine calling them directly would lend them its
    own task)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def callback() -> None:
        assert asyncio.current_task() is None
        try:
            done.set_result(fn())
        except Exception as exc:
            done.set_exception(exc)

    loop.call_soon(callback)
    return await done


async def _feed(conn: KafkaConnection, transport: FakeTransport, data: bytes, piece: int) -> None:
    """Deliver ``data`` in pieces of at most ``piece`` bytes, as the event loop would: from a
    loop callback, into the buffer ``get_buffer`` returns, never more than fits, nothing
    while reading is paused.  Up to 4 KiB per callback, then the loop runs other work."""
    pos = 0
    stalls = 0

    def deliver() -> None:
        nonlocal pos
        budget = 4096
        while pos < len(data) and budget > 0 and transport.reading and not transport.closed:
            buf = conn.get_buffer(-1)
            n = min(len(buf), piece, len(data) - pos)
            assert n > 0, "get_buffer returned no room while reading"
            buf[:n] = data[pos : pos + n]
            conn.buffer_updated(n)
            pos += n
            budget -= n

    while pos < len(data) and not transport.closed:
        before = pos
        await _from_loop(deliver)
        if pos == before:
            stalls += 1
            assert stalls < 10_000, "reading stayed paused"
            await asyncio.sleep(0)


SIZES = [10, DIRECT_FRAME_BYTES * 5, 13, DIRECT_FRAME_BYTES + 1, 100, READ_BUFFER_BYTES * 2, 17, DIRECT_FRAME_BYTES, 4096]


@pytest.mark.parametrize("piece", [1, 3, 4, 5, 4099, 1 << 20])
def test_framing_large_and_small_frames_in_any_pieces(loop_kind: str, piece: int) -> None:
    """Every frame is cut exactly, dispatched once, in order, and answered in order, however
    the bytes arrive: a byte at a time, across the size prefix, or all in one piece."""
    bodies = [_body(i, n) for i, n in enumerate(SIZES)]

    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        await _feed(conn, transport, b"".join(_sized(b) for b in bodies), piece)
        await _settle()
        assert broker.dispatched == bodies
        assert transport.answers() == [b"re:" + b for b in bodies]
        assert broker.max_concurrent == 1 and broker.in_flight == 0
        assert not transport.closed

    _run(loop_kind, scenario())


def test_framing_frames_pipelined_behind_a_parked_request_wait_in_order(loop_kind: str) -> None:
    """A request that waits (a long poll) runs in a task; the frames behind it are neither
    dispatched nor answered before it, and the read-ahead behind it is bounded: reading
    pauses once the receive buffer is full and resumes when the request is answered."""
    later = [_body(i, 1000) for i in range(1, 200)]  # ~200 KB: more than the receive buffer
    parked = _body(0, 50, tag=b"park")

    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        data = _sized(parked) + b"".join(_sized(b) for b in later)
        feeding = asyncio.ensure_future(_feed(conn, transport, data, 4096))
        for _ in range(1000):
            if not transport.reading:
                break
            await asyncio.sleep(0)
        assert not transport.reading, "reading did not pause behind the parked request"
        assert broker.dispatched == [parked] and transport.written == b""
        assert conn._end - conn._start <= READ_BUFFER_BYTES
        assert broker.release is not None
        broker.release.set()
        await feeding
        await _settle()
        assert broker.dispatched == [parked, *later]
        assert transport.answers() == [b"re:" + b for b in [parked, *later]]
        assert broker.max_concurrent == 1

    _run(loop_kind, scenario())


def test_framing_no_answer_requests_and_end_of_input(loop_kind: str) -> None:
    """Requests without an answer (Produce acks=0) keep the order of the others; end of
    input closes the connection only after every complete frame is answered."""
    bodies = [_body(0, 20), _body(1, 20, tag=b"none"), _body(2, DIRECT_FRAME_BYTES * 2), _body(3, 20, tag=b"none"), _body(4, 30)]

    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        await _feed(conn, transport, b"".join(_sized(b) for b in bodies), 7)
        await _from_loop(conn.eof_received)
        await _settle()
        assert broker.dispatched == bodies
        assert transport.answers() == [b"re:" + bodies[0], b"re:" + bodies[2], b"re:" + bodies[4]]
        assert transport.closed
        await _from_loop(lambda: conn.connection_lost(None))
        await _settle()
        assert not broker.connections

    _run(loop_kind, scenario())


@pytest.mark.parametrize("size", [40, DIRECT_FRAME_BYTES * 3])
def test_framing_a_half_frame_at_end_of_input_closes_without_dispatch(loop_kind: str, size: int) -> None:
    """Small or large (received into its own buffer), a frame cut short by end of input is
    dropped and the connection closed at once (not after connections.max.idle.ms)."""

    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        whole = _sized(_body(0, 40))
        await _feed(conn, transport, whole + _sized(_body(1, size))[: size // 2], 1)
        await _from_loop(conn.eof_received)
        await _settle()
        assert broker.dispatched == [_body(0, 40)]
        assert transport.closed

    _run(loop_kind, scenario())


@pytest.mark.parametrize("size", [-1, 0, 9, 1_000_001])
def test_framing_a_bad_size_closes_the_connection(loop_kind: str, size: int) -> None:
    """Sizes below the smallest request header or above socket.request.max.bytes close the
    connection; the good frame before it is still answered."""

    async def scenario() -> None:
        broker = FakeBroker(socket_request_max_bytes=1_000_000)
        conn, transport = await _connect(broker)
        good = _body(0, 10)
        await _feed(conn, transport, _sized(good) + struct.pack(">i", size) + b"x" * 20, 1)
        await _settle()
        assert broker.dispatched == [good]
        assert transport.answers() == [b"re:" + good]
        assert transport.closed and not transport.aborted

    _run(loop_kind, scenario())


@pytest.mark.parametrize("tag", [b"boom", b"shut"])
def test_framing_a_failing_dispatch_closes_only_its_connection(loop_kind: str, tag: bytes) -> None:
    """A bug in dispatch (logged) or a CloseConnection closes that connection after the
    answers before it; the frames behind it are not dispatched; another connection serves on."""

    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        other, other_transport = await _connect(broker)
        bodies = [_body(0, 20), _body(1, 20, tag=tag), _body(2, 20)]
        await _feed(conn, transport, b"".join(_sized(b) for b in bodies), 1 << 20)
        await _settle()
        assert broker.dispatched == bodies[:2]
        assert transport.answers() == [b"re:" + bodies[0]]
        assert transport.closed and broker.in_flight == 0
        await _from_loop(lambda: conn.connection_lost(None))
        await _settle()
        assert broker.connections == {other}
        await _feed(other, other_transport, _sized(_body(3, 20)), 1 << 20)
        await _settle()
        assert other_transport.answers() == [b"re:" + _body(3, 20)]

    _run(loop_kind, scenario())


def test_framing_a_full_send_buffer_stops_dispatch_until_it_drains(loop_kind: str) -> None:
    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        bodies = [_body(i, 100) for i in range(5)]
        await _feed(conn, transport, _sized(bodies[0]), 1 << 20)
        await _settle()
        await _from_loop(conn.pause_writing)  # the transport says: above the high-water mark
        await _feed(conn, transport, b"".join(_sized(b) for b in bodies[1:]), 1 << 20)
        await _settle()
        assert broker.dispatched == bodies[:1]
        await _from_loop(conn.resume_writing)
        await _settle()
        assert broker.dispatched == bodies
        assert transport.answers() == [b"re:" + b for b in bodies]

    _run(loop_kind, scenario())


def test_framing_connection_lost_during_a_request_drops_its_answer(loop_kind: str) -> None:
    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        await _feed(conn, transport, _sized(_body(0, 40, tag=b"park")) + _sized(_body(1, 40)), 1 << 20)
        await _settle()
        assert broker.in_flight == 1 and broker.connections
        transport.closed = True
        await _from_loop(lambda: conn.connection_lost(ConnectionResetError()))
        assert broker.release is not None
        broker.release.set()
        await _settle()
        assert broker.dispatched == [_body(0, 40, tag=b"park")]  # the frame behind it: never
        assert transport.written == b""
        assert broker.in_flight == 0 and not broker.connections

    _run(loop_kind, scenario())


def test_framing_shutdown_closes_idle_at_once_and_busy_after_its_answer(loop_kind: str) -> None:
    async def scenario() -> None:
        broker = FakeBroker()
        idle, idle_transport = await _connect(broker)
        busy, busy_transport = await _connect(broker)
        await _feed(busy, busy_transport, _sized(_body(0, 40, tag=b"park")) + _sized(_body(1, 40)), 1 << 20)
        await _settle()
        broker.closing = True
        idle.shutdown()
        busy.shutdown()
        assert idle_transport.closed and not busy_transport.closed
        assert broker.release is not None
        broker.release.set()
        await _settle()
        assert busy_transport.answers() == [b"re:" + _body(0, 40, tag=b"park")]  # not the one behind
        assert busy_transport.closed

    _run(loop_kind, scenario())


def test_framing_abort_cancels_the_request_in_handling(loop_kind: str) -> None:
    async def scenario() -> None:
        broker = FakeBroker()
        conn, transport = await _connect(broker)
        await _feed(conn, transport, _sized(_body(0, 40, tag=b"park")), 1 << 20)
        await _settle()
        task = conn.abort()
        assert task is not None and transport.aborted
        with pytest.raises(asyncio.CancelledError):
            await task
        assert broker.in_flight == 0 and not broker.connections and transport.written == b""

    _run(loop_kind, scenario())


# -- over a real socket, with the real broker ----------------------------------------------


def test_pipelined_requests_are_answered_in_order(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    try:
        _create(c, "pipe")
        # One write: produces, a long-polling fetch (answered from a task), acks=0 produces
        # (no answer), metadata, api versions; the answers must come back in request order.
        plan: list[tuple[Any, int, bool]] = []
        for i in range(20):
            plan.append((_produce_req("pipe", [b"v%d" % i]), 9, True))
        plan.append((_fetch_req("pipe", 25, max_wait_ms=200), 12, True))  # parks: offset 25 not there yet
        plan.append((_produce_req("pipe", [b"fire-and-forget"], acks=0), 9, False))
        plan.append((MetadataRequest(topics=None), 12, True))
        plan.append((ApiVersionsRequest(), 3, True))
        data = b"".join(_frame(msg, v, 100 + i) for i, (msg, v, _) in enumerate(plan))
        c.send_raw(data)
        answered = [(100 + i, msg, v) for i, (msg, v, answers) in enumerate(plan) if answers]
        offsets = []
        for corr, msg, v in answered:
            got_corr, resp = _read_answer(c, msg, v)
            assert got_corr == corr
            if isinstance(msg, ProduceRequest):
                offsets.append(resp.responses[0].partition_responses[0].base_offset)
        assert offsets == list(range(20))
        # The acks=0 produce was stored, after the fetch answered.
        c.send_raw(_frame(_fetch_req("pipe", 20, max_wait_ms=0), 12, 999))
        corr, resp = _read_answer(c, _fetch_req("pipe", 20, 0), 12)
        assert corr == 999 and resp.responses[0].partitions[0].high_watermark == 21
    finally:
        c.close()


def test_large_and_small_frames_interleaved_and_fragmented(bt: BrokerThread) -> None:
    """Frames above DIRECT_FRAME_BYTES are received into their own buffer; mixed with small
    ones, in one write or in odd-sized pieces, each is stored and answered in order."""
    c = RawClient(bt.address)
    try:
        _create(c, "mix")
        sizes = [10, DIRECT_FRAME_BYTES * 5, 3, DIRECT_FRAME_BYTES + 1, 100, READ_BUFFER_BYTES * 2, 7]
        values = [bytes([i]) * n for i, n in enumerate(sizes)]
        data = b"".join(_frame(_produce_req("mix", [v]), 9, 10 + i) for i, v in enumerate(values))
        half = len(data) // 2
        c.send_raw(data[:half])
        for k in range(len(sizes)):
            corr, resp = _read_answer(c, _produce_req("mix", []), 9)
            assert corr == 10 + k and resp.responses[0].partition_responses[0].base_offset == k
            if k == 2:  # the rest, in pieces of a prime size, while answers flow
                for i in range(half, len(data), 7919):
                    c.send_raw(data[i : i + 7919])
        got = []
        offset = 0
        while offset < len(sizes):
            fetched = c.request(_fetch_req("mix", offset, 0, max_bytes=8 << 20), 12)
            for view in iter_batches(fetched.responses[0].partitions[0].records):
                got.extend(r.value for r in decode_records(view))
            offset = len(got)
        assert got == values
    finally:
        c.close()


def test_a_client_that_never_reads_is_bounded_in_memory_and_time(tmp_path: Path, loop_kind: str) -> None:
    bt = _broker(tmp_path, loop_kind, {"connections.max.idle.ms": "2000"})
    try:
        setup = RawClient(bt.address)
        _create(setup, "big")
        value = bytes(range(256)) * 1000  # ~256 KB per record: every fetch answer is ~1 MB
        for _ in range(4):
            setup.request(_produce_req("big", [value]), 9)
        setup.close()
        _wait_until(lambda: not _connections(bt), "the setup connection to be forgotten")
        # The reader: asks for the same MB again and again and never reads an answer.
        reader = socket.create_connection(bt.address, timeout=DEADLINE_S)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        reader.setblocking(False)
        frame = _frame(_fetch_req("big", 0, max_wait_ms=0), 12, 1)
        _wait_until(lambda: len(_connections(bt)) == 1, "the reader's connection")
        conn = _connections(bt)[0]
        started = time.monotonic()
        # Send until the broker says it stopped reading (its send buffer full, its receive
        # buffer full): the kernel's buffers then fill too and sends stop being taken.
        while conn._reading or not conn._write_blocked:
            assert time.monotonic() - started < DEADLINE_S, "the broker kept reading"
            try:
                reader.send(frame * 50)
            except BlockingIOError:
                time.sleep(0.01)
        assert conn._end - conn._start <= READ_BUFFER_BYTES and conn._frame is None
        assert conn._write_blocked
        # What it holds unsent: the answers since the send buffer filled, i.e. one (~1 MB)
        # beyond the transport's high-water mark; the rest waits in the kernel's buffers.
        assert conn._transport is not None
        assert conn._transport.get_write_buffer_size() <= 2 * len(value) * 4
        # ... and drops the connection once its answers have not moved for max.idle.ms.
        _wait_until(lambda: not _connections(bt), "the stuck connection to be dropped")
        reader.close()
        check = RawClient(bt.address)
        assert check.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        check.close()
    finally:
        bt.close()


def test_max_connections_refuses_the_extra_one(tmp_path: Path, loop_kind: str) -> None:
    bt = _broker(tmp_path, loop_kind, {"max.connections": "2"})
    try:
        a, b = RawClient(bt.address), RawClient(bt.address)
        assert a.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        assert b.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        extra = RawClient(bt.address)
        extra.send_raw(_frame(ApiVersionsRequest(), 3, 1))
        assert extra.recv_frame() is None
        extra.close()
        a.close()
        _wait_until(lambda: len(_connections(bt)) == 1, "the closed connection to be forgotten")
        again = RawClient(bt.address)
        assert again.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        for c in (again, b):
            c.close()
    finally:
        bt.close()


def test_shutdown_answers_a_parked_fetch_then_closes(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    idle = RawClient(bt.address)
    try:
        _create(c, "park")
        assert idle.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
        c.send_raw(_frame(_fetch_req("park", 0, max_wait_ms=30_000), 12, 5))
        _wait_until(lambda: bt.broker is not None and bt.broker.in_flight == 1, "the fetch to park")
        bt.stop()
        # Answered (by the shutdown's wake-up of parked fetches), not cancelled after the
        # grace period: a cancelled request gets no answer at all.
        corr, resp = _read_answer(c, _fetch_req("park", 0, 0), 12)
        assert corr == 5 and resp.responses[0].partitions[0].error_code == ErrorCode.NONE
        assert c.recv_frame() is None
        assert idle.recv_frame() is None
    finally:
        c.close()
        idle.close()


def test_eof_after_pipelined_requests_still_answers_them(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    try:
        c.send_raw(_frame(ApiVersionsRequest(), 3, 1) + _frame(MetadataRequest(topics=None), 12, 2))
        c.sock.shutdown(socket.SHUT_WR)
        assert _read_answer(c, ApiVersionsRequest(), 3)[0] == 1
        assert _read_answer(c, MetadataRequest(topics=None), 12)[0] == 2
        assert c.recv_frame() is None
    finally:
        c.close()


def test_a_bad_frame_after_good_ones_closes_only_that_connection(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    other = RawClient(bt.address)
    try:
        c.send_raw(_frame(ApiVersionsRequest(), 3, 1) + struct.pack(">i", 3))
        assert _read_answer(c, ApiVersionsRequest(), 3)[0] == 1
        assert c.recv_frame() is None
        assert other.request(ApiVersionsRequest(), 3).error_code == ErrorCode.NONE
    finally:
        c.close()
        other.close()


def test_a_fetch_parks_until_data_arrives(bt: BrokerThread) -> None:
    """A Fetch with nothing to return parks for its max_wait_ms and answers when a produce
    arrives.  On Python 3.12+ this needs the handler to run inside a real task (the long
    poll's timeout is ``asyncio.timeout``/``wait_for``), which coroutine stepping was not."""
    c = RawClient(bt.address)
    producer = RawClient(bt.address)
    try:
        _create(c, "parked")
        c.send_raw(_frame(_fetch_req("parked", 0, max_wait_ms=30_000), 12, 41))
        _wait_until(lambda: bt.broker is not None and bt.broker.in_flight == 1, "the fetch to park")
        resp = producer.request(_produce_req("parked", [b"wake"]), 9)
        assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        corr, fetched = _read_answer(c, _fetch_req("parked", 0, 0), 12)
        assert corr == 41
        part = fetched.responses[0].partitions[0]
        assert fetched.error_code == ErrorCode.NONE and part.error_code == ErrorCode.NONE
        assert [r.value for view in iter_batches(part.records) for r in decode_records(view)] == [b"wake"]
    finally:
        c.close()
        producer.close()


def test_a_parked_fetch_answers_empty_when_its_wait_ends(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    try:
        _create(c, "quiet")
        for corr in (51, 52):  # twice: the connection serves on after a long poll times out
            c.send_raw(_frame(_fetch_req("quiet", 0, max_wait_ms=50), 12, corr))
            got_corr, fetched = _read_answer(c, _fetch_req("quiet", 0, 0), 12)
            part = fetched.responses[0].partitions[0]
            assert got_corr == corr
            assert fetched.error_code == ErrorCode.NONE and part.error_code == ErrorCode.NONE
            assert part.high_watermark == 0 and not part.records
    finally:
        c.close()


def test_queued_max_request_bytes_holds_a_large_frame_until_room_is_given_back(loop_kind: str) -> None:
    """queued.max.request.bytes: a frame larger than a receive buffer that does not fit in
    the pool waits unread
    (its connection stops reading) until another request is answered and gives its bytes
    back; then it is received, answered, and the pool ends empty."""
    parked = _body(0, 100_000, tag=b"park")  # larger than the receive buffer
    second = _body(1, 100_000)

    async def scenario() -> None:
        broker = FakeBroker(queued_max_request_bytes=150_000)
        a, ta = await _connect(broker)
        b, tb = await _connect(broker)
        await _feed(a, ta, _sized(parked), 1 << 20)
        await _settle()
        assert broker.dispatched == [parked] and broker.request_memory.used_bytes == 100_000
        feeding = asyncio.ensure_future(_feed(b, tb, _sized(second), 1 << 20))
        for _ in range(1000):
            if not tb.reading:
                break
            await asyncio.sleep(0)
        assert not tb.reading, "the connection kept reading a frame the pool has no room for"
        assert broker.dispatched == [parked] and broker.request_memory.denied == 1
        assert broker.release is not None
        broker.release.set()
        await feeding
        await _settle()
        assert broker.dispatched == [parked, second]
        assert ta.answers() == [b"re:" + parked] and tb.answers() == [b"re:" + second]
        assert broker.request_memory.used_bytes == 0

    _run(loop_kind, scenario())


def test_a_frame_larger_than_the_whole_pool_still_passes_alone(loop_kind: str) -> None:
    big = _body(0, 100_000)

    async def scenario() -> None:
        broker = FakeBroker(queued_max_request_bytes=70_000)
        conn, transport = await _connect(broker)
        await _feed(conn, transport, _sized(big), 4099)
        await _settle()
        assert transport.answers() == [b"re:" + big]
        assert broker.request_memory.used_bytes == 0

    _run(loop_kind, scenario())


def test_a_closed_connection_gives_back_its_partial_frame_and_its_turn(loop_kind: str) -> None:
    async def scenario() -> None:
        broker = FakeBroker(queued_max_request_bytes=120_000)
        a, ta = await _connect(broker)
        b, tb = await _connect(broker)
        first = _sized(_body(0, 80_000))
        await _feed(a, ta, first[:10_000], 1 << 20)  # a large frame, partly received
        await _settle()
        assert broker.request_memory.used_bytes == 80_000
        second = _body(1, 80_000)
        feeding = asyncio.ensure_future(_feed(b, tb, _sized(second), 1 << 20))
        for _ in range(1000):
            if not tb.reading:
                break
            await asyncio.sleep(0)
        assert not tb.reading
        a.connection_lost(None)  # a's client went away mid-frame
        await feeding
        await _settle()
        assert tb.answers() == [b"re:" + second]
        assert broker.request_memory.used_bytes == 0

    _run(loop_kind, scenario())


def test_a_stalled_partial_request_is_closed_after_its_timeout(loop_kind: str) -> None:
    """kbroker.connections.partial.request.timeout.ms: two bytes of a size prefix and then
    nothing close the connection, long before connections.max.idle.ms; a connection that
    sent nothing at all (idle between requests) stays open."""

    async def scenario() -> None:
        broker = FakeBroker(kbroker_connections_partial_request_timeout_ms=200)
        stalled, ts = await _connect(broker)
        idle, ti = await _connect(broker)
        await _feed(idle, ti, _sized(_body(0, 20)), 1 << 20)
        await _feed(stalled, ts, b"\x00\x00", 1 << 20)
        for _ in range(300):  # bounded: 3 s at most
            if ts.closed:
                break
            await asyncio.sleep(0.01)
        assert ts.closed and not ti.closed
        assert ti.answers() == [b"re:" + _body(0, 20)]

    _run(loop_kind, scenario())
