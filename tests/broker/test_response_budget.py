"""kbroker.queued.max.response.bytes: the broker-wide budget of Fetch answer bytes not yet
taken by the kernel (kbroker.limits.ResponseMemory), against slow readers and fetch storms.

Slow readers are raw sockets with a small receive buffer that send one large Fetch and never
read.  The assertions are on the broker's own accounting (``broker.response_memory``), not
on wall-clock time; waits for the broker to get somewhere are bounded polls.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.headers import RequestHeader, encode_request
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import iter_batches, make_batch

from kbroker.metrics import exposition, new_registry
from kbroker.testing import BrokerThread

TOPIC = "budget"
VALUE_BYTES = 64 * 1024  # one record per batch: a batch is this plus its headers
BATCHES = 32  # 2 MiB in the log
BATCH_BYTES = len(make_batch([b"x" * VALUE_BYTES]))
BUDGET_BYTES = 512 * 1024
LARGE_FETCH_BYTES = 8 * 1024 * 1024  # more than the whole log: unbudgeted, one answer holds all of it
# An encoded answer's own bytes beyond its records (header, topic, partition fields).
ANSWER_OVERHEAD_BYTES = 1024
# How long a poll waits for the broker to reach a state (a bound for a loaded machine, not a timing).
POLL_S = 30.0


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + POLL_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _fetch_request(offset: int, max_bytes: int = LARGE_FETCH_BYTES) -> FetchRequest:
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=max_bytes,
        isolation_level=0,
        topics=[FetchTopic(topic=TOPIC, partitions=[FetchPartition(partition=0, fetch_offset=offset, partition_max_bytes=max_bytes)])],
    )


def _slow_reader(address: tuple[str, int]) -> socket.socket:
    """A client with a 4 KiB receive buffer that asks for everything and never reads."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(address)
    header = RequestHeader(request_api_key=ApiKey.FETCH, request_api_version=12, correlation_id=1, client_id="slow-reader")
    sock.sendall(encode_request(header, _fetch_request(0)))
    return sock


def _fetches_answered(bt: BrokerThread) -> int:
    assert bt.broker is not None
    stats = bt.broker.stats.requests.get(ApiKey.FETCH)
    return 0 if stats is None else stats.count


def _read_all(client: RawClient, max_bytes: int = LARGE_FETCH_BYTES) -> int:
    """Fetch from offset 0 to the end as a consumer does; the number of fetches it took."""
    offset, fetches = 0, 0
    while offset < BATCHES:
        fetches += 1
        assert fetches <= BATCHES, "a consumer made no progress"
        part = client.request(_fetch_request(offset, max_bytes), 12).responses[0].partitions[0]
        assert part.error_code == ErrorCode.NONE
        batches = list(iter_batches(bytes(part.records)))
        assert batches, "a Fetch returned no batch"  # the first-batch rule: never starved
        offset += len(batches)
    return fetches


@pytest.fixture
def budget_broker(tmp_path: Path) -> Iterator[BrokerThread]:
    # A small kernel send buffer, so what a slow reader does not read stays in the broker.
    bt = BrokerThread(tmp_path / "data", {"kbroker.queued.max.response.bytes": str(BUDGET_BYTES), "socket.send.buffer.bytes": "8192"})
    bt.start()
    try:
        c = RawClient(bt.address)
        resp = c.request(CreateTopicsRequest(topics=[CreatableTopic(name=TOPIC, num_partitions=1, replication_factor=-1)]), 7)
        assert resp.topics[0].error_code == ErrorCode.NONE
        for _ in range(BATCHES):
            batch = bytes(make_batch([os.urandom(VALUE_BYTES)]))
            req = ProduceRequest(
                acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=TOPIC, partition_data=[PartitionProduceData(index=0, records=batch)])]
            )
            assert c.request(req, 9).responses[0].partition_responses[0].error_code == ErrorCode.NONE
        c.close()
        yield bt
    finally:
        bt.close()


def test_slow_readers_hold_no_more_than_the_budget_and_give_it_back_when_they_close(budget_broker: BrokerThread) -> None:
    bt = budget_broker
    assert bt.broker is not None
    memory = bt.broker.response_memory
    slow = [_slow_reader(bt.address) for _ in range(8)]
    try:
        _wait_for(lambda: _fetches_answered(bt) >= len(slow), "the slow readers' fetches to be answered")
        held = memory.used_bytes
        # Unbudgeted, each would hold its whole 2 MiB answer (16 MiB); budgeted, the first takes
        # the room and every other one gets only its first batch.
        assert 0 < held <= BUDGET_BYTES + len(slow) * (BATCH_BYTES + ANSWER_OVERHEAD_BYTES)
        assert memory.peak_bytes <= 2 * BUDGET_BYTES + len(slow) * (BATCH_BYTES + ANSWER_OVERHEAD_BYTES)
        assert memory.trimmed >= len(slow) - 1
        # A normal consumer still reads the whole log, batch by batch while the budget is full.
        with_slow_readers = RawClient(bt.address)
        try:
            _read_all(with_slow_readers)
        finally:
            with_slow_readers.close()
        # What it was given went to its socket and was given back.
        _wait_for(lambda: memory.used_bytes <= held, "the consumer's answers to be given back")
    finally:
        for s in slow:
            s.close()
    _wait_for(lambda: memory.used_bytes == 0, "the budget to come back after the slow readers closed")
    # Once it has, a consumer gets large answers again (the budget's room, not one batch each).
    c = RawClient(bt.address)
    try:
        assert _read_all(c) <= BATCHES * BATCH_BYTES // BUDGET_BYTES + 2
    finally:
        c.close()
    # The client can read an answer's last bytes before the broker's loop has seen its write
    # buffer empty (resume_writing) or the close (connection_lost): give it that moment.
    _wait_for(lambda: memory.used_bytes == 0, "the last consumer's answers to be given back")


def test_a_fetch_storm_is_bounded_and_every_fetch_is_answered(budget_broker: BrokerThread) -> None:
    bt = budget_broker
    assert bt.broker is not None
    memory = bt.broker.response_memory
    clients = [RawClient(bt.address) for _ in range(16)]
    errors: list[BaseException] = []

    def consume(c: RawClient) -> None:
        try:
            _read_all(c)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=consume, args=(c,)) for c in clients]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(POLL_S)
    finally:
        for c in clients:
            c.close()
    assert not errors and not any(t.is_alive() for t in threads)
    # Every answer was bounded by the room left, or was a single first batch.
    assert memory.peak_bytes <= 2 * BUDGET_BYTES + len(clients) * 2 * (BATCH_BYTES + ANSWER_OVERHEAD_BYTES)
    _wait_for(lambda: memory.used_bytes == 0, "the budget to come back")


def test_an_answer_larger_than_the_budget_still_gets_its_first_batch(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"kbroker.queued.max.response.bytes": str(BATCH_BYTES // 4)})
    bt.start()
    try:
        c = RawClient(bt.address)
        c.request(CreateTopicsRequest(topics=[CreatableTopic(name=TOPIC, num_partitions=1, replication_factor=-1)]), 7)
        for _ in range(BATCHES):
            req = ProduceRequest(
                acks=-1,
                timeout_ms=5000,
                topic_data=[TopicProduceData(name=TOPIC, partition_data=[PartitionProduceData(index=0, records=bytes(make_batch([os.urandom(VALUE_BYTES)])))])],
            )
            c.request(req, 9)
        # One batch per answer: each is four times the budget, and none is refused.
        assert _read_all(c) == BATCHES
        c.close()
        assert bt.broker is not None
        memory = bt.broker.response_memory
        _wait_for(lambda: memory.used_bytes == 0, "the budget to come back")
        assert memory.peak_bytes >= BATCH_BYTES  # counted, though larger than the budget
    finally:
        bt.close()


def test_the_budget_is_in_metrics(budget_broker: BrokerThread) -> None:
    assert budget_broker.broker is not None
    text = exposition(new_registry(budget_broker.broker)[0]).decode()
    assert f"kbroker_queued_response_capacity_bytes {float(BUDGET_BYTES)}" in text
    assert "kbroker_queued_response_bytes 0.0" in text
    assert "kbroker_queued_request_capacity_bytes 5.36870912e+08" in text
