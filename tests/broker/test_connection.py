"""The connection layer over a real socket: pipelining, fragmentation, backpressure, limits,
shutdown -- on the default asyncio loop and on uvloop (what ``python -m kbroker`` runs)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator
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

from kbroker.connection import DIRECT_FRAME_BYTES, READ_BUFFER_BYTES, KafkaConnection
from kbroker.testing import BrokerThread

# Every wait in these tests is bounded by this.
DEADLINE_S = 10.0


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "uvloop":
        pytest.importorskip("uvloop")
    return str(request.param)


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


def test_byte_at_a_time_frames_are_reassembled(bt: BrokerThread) -> None:
    c = RawClient(bt.address)
    try:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        data = _frame(ApiVersionsRequest(), 3, 7) + _frame(MetadataRequest(topics=None), 12, 8)
        for i in range(len(data)):
            c.send_raw(data[i : i + 1])
            if i % 8 == 0:
                time.sleep(0.001)  # let the broker see the pieces separately
        assert _read_answer(c, ApiVersionsRequest(), 3)[0] == 7
        assert _read_answer(c, MetadataRequest(topics=None), 12)[0] == 8
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
        # The reader: asks for the same MB again and again and never reads an answer.
        reader = socket.create_connection(bt.address, timeout=DEADLINE_S)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        reader.setblocking(False)
        frame = _frame(_fetch_req("big", 0, max_wait_ms=0), 12, 1)
        sent = 0
        last_progress = started = time.monotonic()
        # Send until the broker has taken nothing for 0.3 s (well inside its 2 s idle limit).
        while time.monotonic() - last_progress < 0.3:
            assert time.monotonic() - started < DEADLINE_S, "the broker kept reading"
            try:
                sent += reader.send(frame * 50)
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        # The broker stopped reading (else every send would have been taken): bounded count.
        conns = _connections(bt)
        assert len(conns) == 1
        conn = conns[0]
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
        started = time.monotonic()
        bt.stop()
        assert time.monotonic() - started < 3.0  # not the fetch's 30 s, not the 5 s grace
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
