"""CLIENT_METRICS config resources and GetTelemetrySubscriptions (71) / PushTelemetry (72),
KIP-714, over the raw protocol."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_harness import RawClient
from kbroker.wire.api import ApiKey
from kbroker.wire.compression import compress
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_configs_request import (
    AlterableConfig,
    AlterConfigsRequest,
    AlterConfigsResource,
)
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.describe_configs_request import (
    DescribeConfigsRequest,
    DescribeConfigsResource,
)
from kbroker.wire.messages.get_telemetry_subscriptions_request import (
    GetTelemetrySubscriptionsRequest,
)
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterableConfig as IncrementalConfig,
)
from kbroker.wire.messages.incremental_alter_configs_request import (
    AlterConfigsResource as IncrementalResource,
)
from kbroker.wire.messages.incremental_alter_configs_request import IncrementalAlterConfigsRequest
from kbroker.wire.messages.list_config_resources_request import ListConfigResourcesRequest
from kbroker.wire.messages.push_telemetry_request import PushTelemetryRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.parser import text_string_to_metric_families

from kbroker.testing import BrokerThread

CLIENT_METRICS = 16
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
ZSTD, GZIP = 4, 1
TELEMETRY = {
    "kbroker.client.telemetry.enable": "true",
    "telemetry.max.bytes": "4096",
    "kbroker.http.listen": "127.0.0.1:0",
}


@pytest.fixture
def telemetry_broker(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = BrokerThread(tmp_path / "telemetry", TELEMETRY)
    bt.start()
    try:
        yield bt
    finally:
        bt.close()


def incremental(
    c: RawClient, name: str, *ops: tuple[str, int, str | None], validate_only: bool = False
) -> tuple[int, str | None]:
    req = IncrementalAlterConfigsRequest(
        resources=[
            IncrementalResource(
                resource_type=CLIENT_METRICS,
                resource_name=name,
                configs=[
                    IncrementalConfig(name=k, config_operation=op, value=v) for k, op, v in ops
                ],
            )
        ],
        validate_only=validate_only,
    )
    r = c.request(req, 1).responses[0]
    return r.error_code, r.error_message


def described(c: RawClient, name: str, *, defaults: bool = False, keys: list[str] | None = None) -> dict[str, tuple[str, int]] | int:
    """The subscription's configs set on it (with ``defaults``, also the others)."""
    resource = DescribeConfigsResource(resource_type=CLIENT_METRICS, resource_name=name, configuration_keys=keys)
    result = c.request(DescribeConfigsRequest(resources=[resource]), 4).results[0]
    if result.error_code:
        return int(result.error_code)
    return {e.name: (e.value, e.config_source) for e in result.configs if defaults or e.config_source == 7}


def test_subscriptions_are_set_described_listed_and_durable(broker_thread: BrokerThread) -> None:
    c = RawClient(broker_thread.address)
    try:
        assert described(c, "subs") == {}
        # every config is described, unset ones with their defaults (Kafka 4)
        assert described(c, "subs", defaults=True) == {"metrics": ("", 5), "interval.ms": ("300000", 5), "match": ("", 5)}
        assert described(c, "", defaults=True) == ErrorCode.INVALID_REQUEST
        assert (
            incremental(
                c,
                "subs",
                ("metrics", SET, "org.apache.kafka.producer."),
                ("interval.ms", SET, "1000"),
            )[0]
            == ErrorCode.NONE
        )
        assert (
            incremental(
                c,
                "subs",
                ("metrics", APPEND, "org.apache.kafka.consumer."),
                ("match", SET, "client_id=app-.*"),
            )[0]
            == ErrorCode.NONE
        )
        assert described(c, "subs") == {
            "metrics": ("org.apache.kafka.producer.,org.apache.kafka.consumer.", 7),
            "interval.ms": ("1000", 7),
            "match": ("client_id=app-.*", 7),
        }
        assert (
            incremental(
                c, "subs", ("metrics", SUBTRACT, "org.apache.kafka.producer."), validate_only=True
            )[0]
            == ErrorCode.NONE
        )
        assert (
            described(c, "subs")["metrics"][0]
            == "org.apache.kafka.producer.,org.apache.kafka.consumer."
        )  # type: ignore[index]
        # AlterConfigs replaces the whole subscription
        replace = AlterConfigsRequest(
            resources=[
                AlterConfigsResource(
                    resource_type=CLIENT_METRICS,
                    resource_name="other",
                    configs=[AlterableConfig(name="metrics", value="*")],
                )
            ]
        )
        assert c.request(replace, 2).responses[0].error_code == ErrorCode.NONE
        listed = c.request(ListConfigResourcesRequest(), 0).config_resources
        assert sorted(r.resource_name for r in listed) == ["other", "subs"]
    finally:
        c.close()
    broker_thread.restart()
    c = RawClient(broker_thread.address)
    try:
        assert described(c, "other") == {"metrics": ("*", 7)}
        assert described(c, "other", defaults=True, keys=["interval.ms"]) == {"interval.ms": ("300000", 5)}
        # deleting every config removes the subscription
        assert incremental(c, "other", ("metrics", DELETE, None))[0] == ErrorCode.NONE
        assert [
            r.resource_name for r in c.request(ListConfigResourcesRequest(), 0).config_resources
        ] == ["subs"]
    finally:
        c.close()


REFUSED = [
    ("unknown config", "s", ("push.everything", SET, "1"), ErrorCode.INVALID_REQUEST),
    ("empty name", "", ("metrics", SET, "*"), ErrorCode.INVALID_REQUEST),
    ("interval too short", "s", ("interval.ms", SET, "99"), ErrorCode.INVALID_REQUEST),
    ("interval too long", "s", ("interval.ms", SET, "3600001"), ErrorCode.INVALID_REQUEST),
    ("interval not a number", "s", ("interval.ms", SET, "soon"), ErrorCode.INVALID_CONFIG),
    ("unknown selector", "s", ("match", SET, "client_colour=red"), ErrorCode.INVALID_CONFIG),
    ("bad regex", "s", ("match", SET, "client_id=(unclosed"), ErrorCode.INVALID_CONFIG),
    ("not a pair", "s", ("match", SET, "client_id"), ErrorCode.INVALID_CONFIG),
    ("append to a non-list", "s", ("interval.ms", APPEND, "5"), ErrorCode.INVALID_CONFIG),
]


@pytest.mark.parametrize(("why", "name", "op", "code"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_subscription_changes(
    client: RawClient, why: str, name: str, op: tuple[str, int, str | None], code: ErrorCode
) -> None:
    assert incremental(client, name, op)[0] == code, why
    assert described(client, "s") == {}


def api_ranges(c: RawClient) -> dict[int, tuple[int, int]]:
    resp = c.request(
        ApiVersionsRequest(client_software_name="raw-sw", client_software_version="9.9"), 3
    )
    return {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}


def test_telemetry_apis_are_advertised_only_with_the_receiver(
    client: RawClient, telemetry_broker: BrokerThread
) -> None:
    assert ApiKey.GET_TELEMETRY_SUBSCRIPTIONS not in api_ranges(client)
    with_receiver = RawClient(telemetry_broker.address)
    try:
        ranges = api_ranges(with_receiver)
        assert ranges[ApiKey.GET_TELEMETRY_SUBSCRIPTIONS] == (0, 0) and ranges[
            ApiKey.PUSH_TELEMETRY
        ] == (0, 0)
    finally:
        with_receiver.close()


def metrics_payload(counter_delta: int, gauge: float) -> bytes:
    data = metrics_pb2.MetricsData()
    scope = data.resource_metrics.add().scope_metrics.add()
    total = scope.metrics.add(name="org.apache.kafka.producer.connection.creation.total")
    total.sum.aggregation_temporality = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA
    total.sum.is_monotonic = True
    total.sum.data_points.add(as_int=counter_delta)
    latency = scope.metrics.add(name="org.apache.kafka.producer.node.request.latency.avg")
    latency.gauge.data_points.add(
        as_double=gauge, attributes=[KeyValue(key="node.id", value=AnyValue(string_value="1"))]
    )
    return data.SerializeToString()


def push(
    c: RawClient,
    instance_id: uuid.UUID,
    subscription_id: int,
    payload: bytes,
    *,
    compression: int = ZSTD,
    terminating: bool = False,
) -> int:
    req = PushTelemetryRequest(
        client_instance_id=instance_id,
        subscription_id=subscription_id,
        terminating=terminating,
        compression_type=compression,
        metrics=compress(compression, payload) if compression in (1, 2, 3, 4) else payload,
    )
    return int(c.request(req, 0).error_code)


def scrape(bt: BrokerThread) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert bt.broker is not None and bt.broker.http is not None
    with urllib.request.urlopen(bt.broker.http.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def wait_interval() -> None:
    time.sleep(0.15)  # just past the subscription's 100 ms push interval


def test_a_matching_client_is_subscribed_and_its_pushes_reach_the_metrics(
    telemetry_broker: BrokerThread,
) -> None:
    c = RawClient(telemetry_broker.address)  # client id "raw-test"
    try:
        api_ranges(c)  # tells the broker its software name and version
        # before any subscription: no metrics, Kafka's default interval
        first = c.request(GetTelemetrySubscriptionsRequest(), 0)
        assert first.error_code == ErrorCode.NONE and first.client_instance_id != uuid.UUID(int=0)
        assert (first.requested_metrics, first.push_interval_ms) == ([], 300_000)
        assert (
            first.accepted_compression_types == [4, 3, 1, 2]
            and first.delta_temporality
            and first.telemetry_max_bytes == 4096
        )
        # asked again at once: too soon
        again = c.request(
            GetTelemetrySubscriptionsRequest(client_instance_id=first.client_instance_id), 0
        )
        assert again.error_code == ErrorCode.THROTTLING_QUOTA_EXCEEDED
        # subscriptions: one matching this client (software name from ApiVersions), one not
        assert (
            incremental(
                c,
                "mine",
                ("metrics", SET, "org.apache.kafka.producer."),
                ("interval.ms", SET, "100"),
                ("match", SET, "client_id=raw-.*,client_software_name=raw-sw"),
            )[0]
            == ErrorCode.NONE
        )
        assert (
            incremental(
                c, "theirs", ("metrics", SET, "*"), ("match", SET, "client_id=someone-else")
            )[0]
            == ErrorCode.NONE
        )
        # the change re-creates the instance: asked again, it gets the new subscription
        sub = c.request(
            GetTelemetrySubscriptionsRequest(client_instance_id=first.client_instance_id), 0
        )
        assert (
            sub.error_code == ErrorCode.NONE and sub.client_instance_id == first.client_instance_id
        )
        assert (sub.requested_metrics, sub.push_interval_ms) == (
            ["org.apache.kafka.producer."],
            100,
        )
        assert sub.subscription_id != first.subscription_id
        instance = sub.client_instance_id
        assert push(c, instance, sub.subscription_id, metrics_payload(2, 1.5)) == ErrorCode.NONE
        assert (
            push(c, instance, sub.subscription_id, metrics_payload(1, 2.5))
            == ErrorCode.THROTTLING_QUOTA_EXCEEDED
        )
        wait_interval()
        assert (
            push(c, instance, sub.subscription_id, metrics_payload(3, 2.5), compression=GZIP)
            == ErrorCode.NONE
        )
        figures = scrape(telemetry_broker)
        label = next(
            dict(labels)["client_instance_id"]
            for name, labels in figures
            if name.startswith("org_apache_kafka_producer")
        )
        who = {("client_instance_id", label), ("client_id", "raw-test")}
        # the delta sum adds up (2 + 3), the gauge is the last value
        assert (
            figures[("org_apache_kafka_producer_connection_creation_total_total", frozenset(who))]
            == 5
        )
        assert (
            figures[
                (
                    "org_apache_kafka_producer_node_request_latency_avg",
                    frozenset(who | {("node_id", "1")}),
                )
            ]
            == 2.5
        )
    finally:
        c.close()


def subscribed(c: RawClient) -> Any:
    assert (
        incremental(c, "all", ("metrics", SET, "*"), ("interval.ms", SET, "100"))[0]
        == ErrorCode.NONE
    )
    sub = c.request(GetTelemetrySubscriptionsRequest(), 0)
    assert sub.error_code == ErrorCode.NONE and sub.requested_metrics == ["*"]
    return sub


def test_refused_pushes(telemetry_broker: BrokerThread) -> None:
    c = RawClient(telemetry_broker.address)
    try:
        sub = subscribed(c)
        instance, sid = sub.client_instance_id, sub.subscription_id
        good = metrics_payload(1, 1.0)
        assert push(c, uuid.UUID(int=0), sid, good) == ErrorCode.INVALID_REQUEST
        assert push(c, instance, sid + 1, good) == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
        wait_interval()
        assert push(c, instance, sid, good, compression=9) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        wait_interval()
        assert (
            push(c, instance, sid, b"\x00" * 5000, compression=0) == ErrorCode.TELEMETRY_TOO_LARGE
        )
        wait_interval()
        assert (
            push(c, instance, sid, b"not a protobuf at all \xff\xff\xff")
            == ErrorCode.INVALID_RECORD
        )
        wait_interval()
        # a terminating push is accepted however soon; nothing after it
        assert push(c, instance, sid, good) == ErrorCode.NONE
        assert push(c, instance, sid, good, terminating=True) == ErrorCode.NONE
        wait_interval()
        assert push(c, instance, sid, good) == ErrorCode.INVALID_REQUEST
    finally:
        c.close()


def test_a_push_from_an_unknown_instance_is_told_to_resubscribe(
    telemetry_broker: BrokerThread,
) -> None:
    c = RawClient(telemetry_broker.address)
    try:
        sub = subscribed(c)
        assert (
            push(c, uuid.uuid4(), sub.subscription_id, metrics_payload(1, 1.0))
            == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
        )
    finally:
        c.close()
