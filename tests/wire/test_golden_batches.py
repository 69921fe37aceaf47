"""Record batches from real clients, in every compression codec, parse and verify.

Each client (kafka-python, aiokafka, confluent-kafka, and kafkajs from the compat suite's
node_modules, installed from its lock file when missing) produces the same few records --
keys, values, headers -- to one topic per codec through the loopback recorder of
test_golden.py, which answers Produce with success.  For every captured Produce request, each partition's records blob must walk
(``iter_batches``) into whole batches that fill it exactly, every batch's CRC-32C must
verify, its compression attribute must be the codec asked for, and ``decode_records`` must
give back exactly the records sent, in order.

One records blob per (client, codec) is kept as a hex fixture in golden/batches/
(``<codec>_<client>.hex``) and checked the same way without the clients.  Regenerate with
``PYTHONPATH=. python tests/wire/test_golden_batches.py``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from kbroker.wire import ApiKey, codec
from kbroker.wire.headers import decode_request_header
from kbroker.wire.messages.produce_request import ProduceRequest
from kbroker.wire.records import BATCH_HEADER_SIZE, Compression, decode_records, iter_batches

HERE = Path(__file__).resolve().parent
FIXTURES_DIR = HERE / "golden" / "batches"

CODECS = {
    "none": Compression.NONE,
    "gzip": Compression.GZIP,
    "snappy": Compression.SNAPPY,
    "lz4": Compression.LZ4,
    "zstd": Compression.ZSTD,
}

Sent = list[tuple[bytes, bytes, list[tuple[str, bytes]]]]


def _load_golden() -> ModuleType:
    """test_golden.py's recorder (test modules are not a package under importlib mode)."""
    spec = importlib.util.spec_from_file_location("_wire_golden_recorder", HERE / "test_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


golden = _load_golden()
NODE_MODULES = golden.clients.NODE_MODULES


def topic_of(codec_name: str) -> str:
    return f"batches-{codec_name}"


def sent_records(client: str, codec_name: str) -> Sent:
    """What every client sends for one codec: keys, compressible values, headers."""
    return [
        (
            f"key-{i}".encode(),
            f"{client}/{codec_name}/record {i} ".encode() * (4 + 6 * i),
            [("trace", f"t-{i}".encode()), ("codec", codec_name.encode()), ("empty", b"")],
        )
        for i in range(3)
    ]


# -- the clients ------------------------------------------------------------------------


def drive_kafka_python(port: int, codecs: list[str]) -> None:
    from kafka import KafkaProducer

    for name in codecs:
        producer = KafkaProducer(
            bootstrap_servers=f"127.0.0.1:{port}",
            compression_type=None if name == "none" else name,
            linger_ms=50,
            request_timeout_ms=3000,
            max_block_ms=3000,
        )
        try:
            futures = [
                producer.send(topic_of(name), value=v, key=k, headers=h)
                for k, v, h in sent_records("kafka-python", name)
            ]
            producer.flush(timeout=5)
            for f in futures:
                f.get(timeout=1)
        finally:
            producer.close(timeout=2)


def drive_aiokafka(port: int, codecs: list[str]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        for name in codecs:
            producer = AIOKafkaProducer(
                bootstrap_servers=f"127.0.0.1:{port}",
                compression_type=None if name == "none" else name,
                linger_ms=50,
                request_timeout_ms=3000,
            )
            await asyncio.wait_for(producer.start(), 5)
            try:
                futures = [
                    await producer.send(topic_of(name), v, key=k, headers=h)
                    for k, v, h in sent_records("aiokafka", name)
                ]
                await asyncio.wait_for(asyncio.gather(*futures), 5)
            finally:
                await asyncio.wait_for(producer.stop(), 5)

    asyncio.run(run())


def drive_confluent(port: int, codecs: list[str]) -> None:
    from confluent_kafka import Producer

    for name in codecs:
        producer = Producer({
            "bootstrap.servers": f"127.0.0.1:{port}",
            "compression.type": name,
            "linger.ms": 50,
            "socket.timeout.ms": 3000,
            "message.timeout.ms": 4000,
        })
        # learn the partition first, so the records are enqueued together and batched
        producer.list_topics(topic_of(name), timeout=3)
        errors: list[Any] = []

        def delivered(err: Any, _msg: Any, errors: list[Any] = errors) -> None:
            if err is not None:
                errors.append(err)

        for k, v, h in sent_records("confluent", name):
            producer.produce(topic_of(name), v, k, headers=h, on_delivery=delivered)
        assert producer.flush(5) == 0
        assert not errors, errors


# kafkajs ships gzip only; snappy, lz4 and zstd need codec packages the suite does not install.
_KAFKAJS = r"""
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');
const [port, plan] = [process.argv[1], JSON.parse(process.argv[2])];
const types = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP };
(async () => {
  const kafka = new Kafka({ brokers: [`127.0.0.1:${port}`], clientId: 'golden',
    logLevel: logLevel.NOTHING, requestTimeout: 3000, connectionTimeout: 3000,
    retry: { retries: 1 } });
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  for (const [name, topic, records] of plan) {
    await producer.send({ topic, compression: types[name], acks: -1,
      messages: records.map(([k, v, h]) => ({ key: Buffer.from(k, 'hex'),
        value: Buffer.from(v, 'hex'),
        headers: Object.fromEntries(h.map(([hk, hv]) => [hk, Buffer.from(hv, 'hex')])) })) });
  }
  await producer.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
"""
KAFKAJS_CODECS = ("none", "gzip")


def drive_kafkajs(port: int, codecs: list[str]) -> None:
    plan = [
        [name, topic_of(name), [[k.hex(), v.hex(), [[hk, hv.hex()] for hk, hv in h]]
                                for k, v, h in sent_records("kafkajs", name)]]
        for name in codecs
    ]
    env = dict(os.environ, NODE_PATH=str(NODE_MODULES))
    node = shutil.which("node")
    assert node is not None
    subprocess.run([node, "-e", _KAFKAJS, str(port), json.dumps(plan)], env=env, check=True,
                   timeout=20, capture_output=True)


def _have_kafkajs() -> bool:
    return shutil.which("node") is not None and (NODE_MODULES / "kafkajs").is_dir()


CLIENTS: dict[str, tuple[Callable[[], bool], Callable[[int, list[str]], None], tuple[str, ...]]] = {
    "kafka-python": (lambda: golden._have("kafka"), drive_kafka_python, tuple(CODECS)),
    "aiokafka": (lambda: golden._have("aiokafka"), drive_aiokafka, tuple(CODECS)),
    "confluent": (lambda: golden._have("confluent_kafka"), drive_confluent, tuple(CODECS)),
    "kafkajs": (_have_kafkajs, drive_kafkajs, KAFKAJS_CODECS),
}


def record(client: str) -> list[bytes]:
    _, drive, codecs = CLIENTS[client]
    rec = golden.Recorder()
    try:
        drive(rec.port, list(codecs))
    finally:
        rec.close()
    assert not rec.errors, rec.errors
    return rec.frames


# -- the checks -------------------------------------------------------------------------


def produced_blobs(frames: list[bytes]) -> list[tuple[str, int, bytes]]:
    """(topic, partition, records blob) of every partition of every Produce request."""
    out = []
    for frame in frames:
        header, offset = decode_request_header(frame)
        if header.request_api_key != ApiKey.PRODUCE:
            continue
        req = codec.decode(ProduceRequest, header.request_api_version, memoryview(frame)[offset:])
        for t in req.topic_data:
            for p in t.partition_data:
                assert p.records is not None, f"{t.name}[{p.index}]: null records"
                out.append((t.name, p.index, bytes(p.records)))
    return out


def check_blob(blob: bytes, expected: Compression) -> Sent:
    """Walk a records blob into whole, valid batches of the expected codec; their records."""
    got: Sent = []
    end = 0
    for batch in iter_batches(blob):
        assert batch.position == end, "batches must be contiguous"
        end = batch.position + batch.size_bytes
        assert batch.magic == 2
        assert batch.is_valid(), f"CRC-32C mismatch: stored {batch.crc:#010x}, computed {batch.compute_crc():#010x}"
        assert batch.compression is expected, f"batch compressed with {batch.compression!r}"
        records = decode_records(batch)
        assert len(records) == batch.record_count == batch.last_offset_delta + 1
        assert [r.offset_delta for r in records] == list(range(len(records)))
        for r in records:
            assert r.key is not None and r.value is not None
            got.append((r.key, r.value, [(k, v if v is not None else b"\x00null") for k, v in r.headers]))
    assert end == len(blob), f"{len(blob) - end} trailing bytes are not a whole batch"
    assert end > BATCH_HEADER_SIZE
    return got


def check_client_frames(client: str, frames: list[bytes]) -> dict[str, bytes]:
    """Check every captured Produce; return one records blob per codec for fixtures."""
    _, _, codecs = CLIENTS[client]
    by_topic = {topic_of(name): name for name in codecs}
    got: dict[str, Sent] = {name: [] for name in codecs}
    first: dict[str, bytes] = {}
    for topic, _partition, blob in produced_blobs(frames):
        name = by_topic[topic]
        got[name] += check_blob(blob, CODECS[name])
        first.setdefault(name, blob)
    for name in codecs:
        assert got[name] == sent_records(client, name), f"{client}/{name}: records differ"
    return first


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_live_client_batches_parse_and_verify_in_every_codec(client: str) -> None:
    available, _, _ = CLIENTS[client]
    if client == "kafkajs":
        golden.clients.kafkajs_node_modules()  # installs it from the lock file when missing
    elif not available():
        golden.clients.missing(f"{client} is not installed (pip install -e '.[test]')")
    start = time.monotonic()
    frames = record(client)
    check_client_frames(client, frames)
    assert time.monotonic() - start < 25


FIXTURES = sorted(FIXTURES_DIR.glob("*.hex"))


def test_there_are_batch_fixtures_for_every_python_client_and_codec() -> None:
    have = {p.stem for p in FIXTURES}
    want = {f"{name}_{client}" for client in ("kafka-python", "aiokafka", "confluent") for name in CODECS}
    assert want <= have, sorted(want - have)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_batch_fixture_parses_and_verifies(path: Path) -> None:
    name, client = path.stem.split("_", 1)
    blob = bytes.fromhex(path.read_text().strip())
    assert check_blob(blob, CODECS[name]) == sent_records(client, name)
    # a flipped bit in the last (CRC-covered) byte is caught
    bad = bytearray(blob)
    bad[-1] ^= 0x01
    assert not all(batch.is_valid() for batch in iter_batches(bytes(bad)))


def write_fixtures() -> None:
    """Record every available client once; add the missing fixtures (a blob holding all
    the records of its codec)."""
    FIXTURES_DIR.mkdir(exist_ok=True)
    for client, (available, _, _) in CLIENTS.items():
        if not available():
            continue
        for name, blob in check_client_frames(client, record(client)).items():
            if check_blob(blob, CODECS[name]) != sent_records(client, name):
                print(f"{client}/{name}: records were split over requests; no fixture", file=sys.stderr)
                continue
            path = FIXTURES_DIR / f"{name}_{client}.hex"
            if not path.exists():
                path.write_text(blob.hex() + "\n")


if __name__ == "__main__":
    write_fixtures()
