"""Helpers for the control API tests: JSON over HTTP with urllib, and raw Kafka requests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.fetch_request import FetchPartition, FetchRequest, FetchTopic
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread

HTTP_TIMEOUT_S = 10.0


def control_url(bt: BrokerThread) -> str:
    assert bt.broker is not None and bt.broker.http is not None
    return f"http://127.0.0.1:{bt.broker.http.port}/v1"


def http(
    bt: BrokerThread, method: str, path: str, body: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """(status, parsed JSON body) of one control request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(control_url(bt) + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        payload = exc.read()
        return exc.code, json.loads(payload) if payload.startswith(b"{") else payload.decode()


def add_rule(bt: BrokerThread, rule: dict[str, Any]) -> int:
    status, body = http(bt, "POST", "/faults", rule)
    assert status == 201, body
    return int(body["id"])


def rule_state(bt: BrokerThread, rule_id: int) -> dict[str, Any]:
    status, body = http(bt, "GET", f"/faults/{rule_id}")
    assert status == 200, body
    return dict(body)


def create(c: RawClient, name: str, partitions: int = 1) -> None:
    resp = c.request(
        CreateTopicsRequest(
            topics=[CreatableTopic(name=name, num_partitions=partitions, replication_factor=-1)]
        ),
        7,
    )
    assert resp.topics[0].error_code == ErrorCode.NONE, resp


def produce(c: RawClient, name: str, values: dict[int, bytes], version: int = 9) -> dict[int, Any]:
    """One Produce of one batch per partition; partition -> its answer."""
    data = [
        PartitionProduceData(index=p, records=bytes(make_batch([v]))) for p, v in values.items()
    ]
    resp = c.request(
        ProduceRequest(
            acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=name, partition_data=data)]
        ),
        version,
    )
    return {p.index: p for t in resp.responses for p in t.partition_responses}


def produce_batch(c: RawClient, name: str, batch: bytes, partition: int = 0) -> Any:
    """One Produce v9 of ``batch``; the partition's answer."""
    data = [PartitionProduceData(index=partition, records=bytes(batch))]
    req = ProduceRequest(
        acks=-1, timeout_ms=5000, topic_data=[TopicProduceData(name=name, partition_data=data)]
    )
    return c.request(req, 9).responses[0].partition_responses[0]


def fetch(c: RawClient, name: str, partitions: list[int], version: int = 12) -> dict[int, Any]:
    """One Fetch from offset 0 without waiting; partition -> its answer."""
    req = FetchRequest(
        replica_id=-1, max_wait_ms=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        topics=[FetchTopic(topic=name, partitions=[FetchPartition(partition=p, fetch_offset=0, partition_max_bytes=1 << 20) for p in partitions])],
    )  # fmt: skip
    resp = c.request(req, version)
    return {p.partition_index: p for t in resp.responses for p in t.partitions}


def high_watermark(c: RawClient, name: str, partition: int = 0) -> int:
    hw: int = fetch(c, name, [partition])[partition].high_watermark
    return hw
