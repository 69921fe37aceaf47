"""The HTTP listener (kbroker.http.listen): /healthz, /readyz and /metrics over real TCP."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.offset_commit_request import (
    OffsetCommitRequest,
    OffsetCommitRequestPartition,
    OffsetCommitRequestTopic,
)
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch
from prometheus_client.parser import text_string_to_metric_families

from kbroker.acceptor import Acceptor
from kbroker.config import ConfigError, build_config
from kbroker.server import Broker
from kbroker.testing import BrokerThread

HTTP = {"kbroker.http.listen": "127.0.0.1:0"}
WAIT_S = 10.0

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=WAIT_S) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _scrape(bt: BrokerThread) -> Samples:
    assert bt.broker is not None and bt.broker.http is not None
    status, text = _get(bt.broker.http.url + "/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def http_broker(tmp_path: Path):
    bt = BrokerThread(tmp_path / "data", HTTP)
    bt.start()
    try:
        yield bt
    finally:
        bt.close()


def _create(c: RawClient, name: str, partitions: int) -> None:
    topic = CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)
    assert c.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == ErrorCode.NONE


def _produce(c: RawClient, topic: str, partition: int, batch: bytes) -> int:
    req = ProduceRequest(
        acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=topic, partition_data=[PartitionProduceData(index=partition, records=batch)])]
    )
    return c.request(req, 9).responses[0].partition_responses[0].error_code


def _fetch(c: RawClient, topic: str, partition: int, offset: int):
    req = FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=1,
        max_bytes=1 << 20,
        isolation_level=0,
        topics=[FetchTopic(topic=topic, partitions=[FetchPartition(partition=partition, fetch_offset=offset, partition_max_bytes=1 << 20)])],
    )
    return c.request(req, 12).responses[0].partitions[0]


def _commit(c: RawClient, group: str, topic: str, offsets: dict[int, int]) -> None:
    parts = [OffsetCommitRequestPartition(partition_index=p, committed_offset=o) for p, o in offsets.items()]
    req = OffsetCommitRequest(group_id=group, topics=[OffsetCommitRequestTopic(name=topic, partitions=parts)])
    resp = c.request(req, 8)
    assert all(p.error_code == ErrorCode.NONE for t in resp.topics for p in t.partitions), resp


def test_listener_is_off_by_default(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data")
    bt.start()
    try:
        assert bt.broker is not None and bt.broker.http is None
    finally:
        bt.close()


def test_listen_must_be_host_port(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kbroker.http.listen"):
        build_config(listen="127.0.0.1:0", data_dir=str(tmp_path), overrides=["kbroker.http.listen=nonsense"], environ={})


def test_healthz_and_readyz_once_started(http_broker: BrokerThread) -> None:
    assert http_broker.broker is not None and http_broker.broker.http is not None
    url = http_broker.broker.http.url
    assert _get(url + "/healthz")[0] == 200
    assert _get(url + "/readyz")[0] == 200
    assert _get(url + "/nothing-here")[0] == 404


def test_readyz_is_503_until_the_kafka_listener_accepts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The HTTP listener binds first; with the Kafka listener's creation held (the loop stays
    free), the broker is healthy but not ready; released, it becomes ready."""
    config = build_config(listen="127.0.0.1:0", data_dir=str(tmp_path / "data"), overrides=[f"{k}={v}" for k, v in HTTP.items()], environ={})
    broker = Broker(config)
    loop = asyncio.new_event_loop()
    entered = threading.Event()
    gate = asyncio.Event()
    real_start = Acceptor.start

    async def held_start(self: Acceptor) -> None:  # the Kafka listener starts accepting
        entered.set()
        await gate.wait()
        await real_start(self)

    monkeypatch.setattr(Acceptor, "start", held_start)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        started = asyncio.run_coroutine_threadsafe(broker.start(), loop)
        assert entered.wait(WAIT_S)
        assert broker.http is not None
        url = broker.http.url
        assert _get(url + "/healthz")[0] == 200
        assert _get(url + "/readyz") == (503, "not ready\n")
        loop.call_soon_threadsafe(gate.set)
        started.result(WAIT_S)
        assert _get(url + "/readyz")[0] == 200
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(WAIT_S)
    finally:
        loop.call_soon_threadsafe(gate.set)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(WAIT_S)
        loop.close()


def test_metrics_count_exactly_the_workload(http_broker: BrokerThread) -> None:
    c = RawClient(http_broker.address)
    try:
        _create(c, "m", 2)
        before = _scrape(http_broker)
        batches = [make_batch([b"a", b"b", b"c"]), make_batch([b"d"]), make_batch([b"e", b"f"])]
        partitions = [0, 1, 0]
        for partition, batch in zip(partitions, batches):
            assert _produce(c, "m", partition, bytes(batch)) == ErrorCode.NONE
        for _ in range(4):
            c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
        fetched = _fetch(c, "m", 0, 0)
        out_of_range = _fetch(c, "m", 1, 99)
        after = _scrape(http_broker)
    finally:
        c.close()

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("kafka_network_requestmetrics_requests_total", request="Produce") == 3
    assert delta("kafka_network_requestmetrics_requests_total", request="ApiVersions") == 4
    assert delta("kafka_network_requestmetrics_requests_total", request="Fetch") == 2
    assert delta("kafka_network_requestmetrics_totaltime_seconds_count", request="Produce") == 3
    assert delta("kafka_network_requestmetrics_totaltime_seconds_bucket", request="Produce", le="+Inf") == 3
    assert out_of_range.error_code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert delta("kafka_network_requestmetrics_errors_total", request="Fetch", error="OFFSET_OUT_OF_RANGE") == 1
    assert delta("kafka_server_brokertopicmetrics_messagesin_total", topic="m") == 6
    assert delta("kafka_server_brokertopicmetrics_bytesin_total", topic="m") == sum(len(b) for b in batches)
    assert delta("kafka_server_brokertopicmetrics_bytesout_total", topic="m") == len(fetched.records)
    assert len(fetched.records) == len(batches[0]) + len(batches[2])
    # per-partition log figures, read at scrape time
    assert _value(after, "kafka_log_log_logendoffset", topic="m", partition="0") == 5
    assert _value(after, "kafka_log_log_logendoffset", topic="m", partition="1") == 1
    assert _value(after, "kafka_log_log_logstartoffset", topic="m", partition="0") == 0
    assert _value(after, "kafka_log_log_size", topic="m", partition="0") == len(batches[0]) + len(batches[2])
    assert _value(after, "kafka_log_log_numlogsegments", topic="m", partition="0") == 1
    assert _value(after, "kafka_server_socketservermetrics_connection_count") == 1


def test_consumer_group_lag_after_commits(http_broker: BrokerThread) -> None:
    c = RawClient(http_broker.address)
    try:
        _create(c, "lagged", 2)
        for partition, count in ((0, 5), (1, 2)):
            assert _produce(c, "lagged", partition, bytes(make_batch([b"x"] * count))) == ErrorCode.NONE
        _commit(c, "g1", "lagged", {0: 1, 1: 2})  # a group with no members, as simple consumers commit
        first = _scrape(http_broker)
        _commit(c, "g1", "lagged", {0: 4})
        assert _produce(c, "lagged", 1, bytes(make_batch([b"y"] * 3))) == ErrorCode.NONE
        second = _scrape(http_broker)
    finally:
        c.close()
    lag = "kafka_consumergroup_lag"
    assert _value(first, lag, consumergroup="g1", topic="lagged", partition="0") == 4
    assert _value(first, lag, consumergroup="g1", topic="lagged", partition="1") == 0
    assert _value(second, lag, consumergroup="g1", topic="lagged", partition="0") == 1
    assert _value(second, lag, consumergroup="g1", topic="lagged", partition="1") == 3


def test_two_brokers_in_one_process_keep_their_own_figures(tmp_path: Path) -> None:
    a, b = BrokerThread(tmp_path / "a", HTTP), BrokerThread(tmp_path / "b", HTTP)
    a.start()
    b.start()
    try:
        c = RawClient(a.address)
        try:
            c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), 3)
        finally:
            c.close()
        deadline = time.monotonic() + WAIT_S
        while _value(_scrape(a), "kafka_network_requestmetrics_requests_total", request="ApiVersions") != 1:
            assert time.monotonic() < deadline
        assert _value(_scrape(b), "kafka_network_requestmetrics_requests_total", request="ApiVersions") == 0
    finally:
        a.close()
        b.close()
