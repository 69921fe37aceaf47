"""Golden bytes from real clients: every request they send decodes and re-encodes identically.

A tiny loopback recorder (127.0.0.1:0, built on wire/) answers ApiVersions, Metadata and
enough else for kafka-python, aiokafka and confluent-kafka to send Produce, CreateTopics,
ListOffsets, InitProducerId...; it keeps every request frame.  Captured frames are also kept
as hex fixtures in golden/ (``<api>_v<ver>_<client>.hex``) so the check runs without clients.
Regenerate fixtures with ``PYTHONPATH=. python tests/wire/test_golden.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kbroker.wire import ApiKey, codec
from kbroker.wire.framing import FrameDecoder
from kbroker.wire.headers import decode_request_header, encode_request, encode_response
from kbroker.wire.messages import REQUESTS, RESPONSES
from kbroker.wire.messages.api_versions_response import ApiVersion, ApiVersionsResponse
from kbroker.wire.messages.metadata_response import (
    MetadataResponse,
    MetadataResponseBroker,
    MetadataResponsePartition,
    MetadataResponseTopic,
)

GOLDEN = Path(__file__).resolve().parent / "golden"
TOPIC = "golden"
TOPIC_ID = uuid.UUID("6b8b4567-327b-23c6-6431-7b8c3a4c1f8e")


def check_frame(frame: bytes) -> tuple[int, int]:
    """Decode a request frame (no size prefix) and re-encode it; must be byte-identical."""
    header, offset = decode_request_header(frame)
    cls = REQUESTS[header.request_api_key]
    body = codec.decode(cls, header.request_api_version, memoryview(frame)[offset:])
    again = encode_request(header, body)[4:]
    assert again == frame, f"{cls.__name__} v{header.request_api_version} re-encodes differently"
    return header.request_api_key, header.request_api_version


# -- the recorder ---------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.frames: list[bytes] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        self.sock.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        frames = FrameDecoder(1 << 24)
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                frames.feed(data)
                while (frame := frames.next_frame()) is not None:
                    self.frames.append(bytes(frame))
                    try:
                        reply = self.answer(bytes(frame))
                    except Exception as e:  # a bad answer must fail the test, not hang it
                        self.errors.append(repr(e))
                        return
                    if reply is not None:
                        try:
                            conn.sendall(reply)
                        except OSError:  # the client hung up first (a producer closing)
                            return

    def answer(self, frame: bytes) -> bytes | None:
        header, offset = decode_request_header(frame)
        key, ver = header.request_api_key, header.request_api_version
        if key == ApiKey.API_VERSIONS and ver > REQUESTS[key].VALID_VERSIONS[1]:
            return encode_response(header.correlation_id, key, 0, self._api_versions(35))
        req = codec.decode(REQUESTS[key], ver, memoryview(frame)[offset:])
        if key == ApiKey.PRODUCE and req.acks == 0:
            return None
        resp = self.respond(key, req)
        return encode_response(header.correlation_id, key, ver, resp)

    def _api_versions(self, error: int = 0) -> ApiVersionsResponse:
        keys = [
            ApiVersion(api_key=k, min_version=0, max_version=REQUESTS[k].VALID_VERSIONS[1])
            for k in sorted(REQUESTS)
            if k not in (71, 72)  # telemetry: never advertise what we cannot serve
        ]
        return ApiVersionsResponse(error_code=error, api_keys=keys)

    def respond(self, key: int, req: Any) -> Any:
        R: Callable[..., Any] = RESPONSES[key]
        mod = __import__(R.__module__, fromlist=["*"])
        if key == ApiKey.API_VERSIONS:
            return self._api_versions()
        if key == ApiKey.METADATA:
            names = [t.name for t in req.topics or []] or [TOPIC]
            return MetadataResponse(
                brokers=[MetadataResponseBroker(node_id=0, host="127.0.0.1", port=self.port)],
                cluster_id="golden-cluster",
                controller_id=0,
                topics=[
                    MetadataResponseTopic(
                        name=n or TOPIC,
                        topic_id=TOPIC_ID,
                        partitions=[
                            MetadataResponsePartition(
                                partition_index=0, leader_id=0, leader_epoch=0,
                                replica_nodes=[0], isr_nodes=[0],
                            )
                        ],
                    )
                    for n in names
                ],
            )
        if key == ApiKey.PRODUCE:
            return R(responses=[
                mod.TopicProduceResponse(name=t.name, topic_id=t.topic_id, partition_responses=[
                    mod.PartitionProduceResponse(index=p.index, base_offset=0)
                    for p in t.partition_data
                ])
                for t in req.topic_data
            ])
        if key == ApiKey.INIT_PRODUCER_ID:
            return R(producer_id=1000, producer_epoch=0)
        if key == ApiKey.FIND_COORDINATOR:
            return R(node_id=0, host="127.0.0.1", port=self.port, coordinators=[
                mod.Coordinator(key=k, node_id=0, host="127.0.0.1", port=self.port)
                for k in req.coordinator_keys
            ])
        if key == ApiKey.CREATE_TOPICS:
            return R(topics=[
                mod.CreatableTopicResult(name=t.name, num_partitions=1, replication_factor=1)
                for t in req.topics
            ])
        if key == ApiKey.LIST_OFFSETS:
            return R(topics=[
                mod.ListOffsetsTopicResponse(name=t.name, partitions=[
                    mod.ListOffsetsPartitionResponse(
                        partition_index=p.partition_index, offset=0, timestamp=-1
                    )
                    for p in t.partitions
                ])
                for t in req.topics
            ])
        return R()


# -- the clients ------------------------------------------------------------------------


def _have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _load_clients() -> Any:
    """compat-tests/clients.py: what a missing client means (skip locally, fail in CI)."""
    path = Path(__file__).resolve().parents[2] / "compat-tests" / "clients.py"
    spec = importlib.util.spec_from_file_location("_compat_clients", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clients = _load_clients()


def drive_kafka_python(port: int) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic

    boot = f"127.0.0.1:{port}"
    producer = KafkaProducer(bootstrap_servers=boot, request_timeout_ms=3000, max_block_ms=3000)
    producer.send(TOPIC, b"value", key=b"key", headers=[("h", b"1")]).get(timeout=5)
    producer.close(timeout=2)
    admin = KafkaAdminClient(bootstrap_servers=boot, request_timeout_ms=3000)
    admin.create_topics([NewTopic("created", 1, 1)], timeout_ms=3000)
    admin.close()
    consumer = KafkaConsumer(bootstrap_servers=boot, request_timeout_ms=3000)
    consumer.end_offsets([TopicPartition(TOPIC, 0)])
    consumer.close()


def drive_aiokafka(port: int) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000)
        await asyncio.wait_for(producer.start(), 5)
        try:
            await asyncio.wait_for(producer.send_and_wait(TOPIC, b"value", key=b"k"), 5)
        finally:
            await asyncio.wait_for(producer.stop(), 5)

    asyncio.run(run())


def drive_confluent(port: int) -> None:
    from confluent_kafka import Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    boot = f"127.0.0.1:{port}"
    producer = Producer({"bootstrap.servers": boot, "socket.timeout.ms": 3000, "message.timeout.ms": 4000})
    producer.produce(TOPIC, b"value", b"key", headers=[("h", b"1")])
    assert producer.flush(5) == 0
    admin = AdminClient({"bootstrap.servers": boot})
    for fut in admin.create_topics([NewTopic("created", 1, 1)], request_timeout=3).values():
        fut.result(timeout=5)
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": boot, "group.id": "g"})
    consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=3)
    consumer.close()


CLIENTS = {
    "kafka-python": ("kafka", drive_kafka_python),
    "aiokafka": ("aiokafka", drive_aiokafka),
    "confluent": ("confluent_kafka", drive_confluent),
}


def record(client: str) -> list[bytes]:
    module, drive = CLIENTS[client]
    rec = Recorder()
    try:
        drive(rec.port)
    finally:
        rec.close()
    assert not rec.errors, rec.errors
    return rec.frames


# -- the tests ----------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_live_client_requests_re_encode_byte_identically(client: str) -> None:
    module, _ = CLIENTS[client]
    if not _have(module):
        clients.missing(f"{module} is not installed (pip install -e '.[test]')")
    start = time.monotonic()
    frames = record(client)
    seen = {check_frame(f) for f in frames}
    keys = {k for k, _ in seen}
    assert {ApiKey.API_VERSIONS, ApiKey.METADATA, ApiKey.PRODUCE} <= keys, sorted(seen)
    assert time.monotonic() - start < 25


FIXTURES = sorted(GOLDEN.glob("*.hex"))


def test_there_are_golden_fixtures_from_every_client() -> None:
    clients = {p.stem.split("_")[-1] for p in FIXTURES}
    assert clients >= {"kafka-python", "aiokafka", "confluent"}, clients


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_golden_fixture_re_encodes_byte_identically(path: Path) -> None:
    frame = bytes.fromhex(path.read_text().strip())
    key, version = check_frame(frame)
    api, ver, _client = path.stem.rsplit("_", 2)
    assert ApiKey(key).name.lower() == api and ver == f"v{version}"


def write_fixtures() -> None:
    """Record every client once and keep one frame per (api, version, client)."""
    for client, (module, _) in CLIENTS.items():
        if not _have(module):
            continue
        for frame in record(client):
            key, version = check_frame(frame)
            path = GOLDEN / f"{ApiKey(key).name.lower()}_v{version}_{client}.hex"
            if not path.exists():
                path.write_text(frame.hex() + "\n")


if __name__ == "__main__":
    write_fixtures()
