"""KIP-714 client telemetry against a real broker process: a CLIENT_METRICS subscription made
and described with kafka-python 3.0.12's KafkaAdminClient, and confluent-kafka 2.16.1
(librdkafka 2.16.0) producers that get their subscription and push their metrics, which
then show on the broker's /metrics (issue 12).
"""

from __future__ import annotations

import time
import urllib.request

import pytest
from broker_process import _free_port
from confluent_kafka import Producer
from helpers import unique_topic, wait_until
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from prometheus_client.parser import text_string_to_metric_families

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

PUSH_INTERVAL_MS = 500
# librdkafka's first push comes within an interval of its subscription; bounded generously.
PUSH_WAIT_S = 30.0


def scrape(url: str) -> list[tuple[str, dict[str, str], float]]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return [(s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text) for s in family.samples]


@pytest.mark.feature("telemetry", client="kafka-python")
@pytest.mark.feature("telemetry", client="confluent-kafka")
def test_confluent_producers_push_the_metrics_their_subscription_asks_for(broker_factory) -> None:  # type: ignore[no-untyped-def]
    http_port = _free_port()
    broker = broker_factory({"kbroker.client.telemetry.enable": "true", "kbroker.http.listen": f"127.0.0.1:{http_port}"})
    url = f"http://127.0.0.1:{http_port}"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-kp-telemetry", request_timeout_ms=10_000)
    try:
        subscription = ConfigResource(
            ConfigResourceType.CLIENT_METRICS,
            "producers",
            configs={"metrics": "org.apache.kafka.producer.", "interval.ms": str(PUSH_INTERVAL_MS), "match": "client_id=telemetry-.*"},
        )
        # the subscription is new, so kafka-python's check of known configs would refuse it
        assert admin.alter_configs([subscription], raise_on_unknown=False) == {"client_metrics": {"producers": "OK"}}
        described = admin.describe_configs([ConfigResource(ConfigResourceType.CLIENT_METRICS, "producers")])
        assert _configs(described) == {
            "metrics": "org.apache.kafka.producer.",
            "interval.ms": str(PUSH_INTERVAL_MS),
            "match": "client_id=telemetry-.*",
        }
        bad = ConfigResource(ConfigResourceType.CLIENT_METRICS, "bad", configs={"interval.ms": "10"})
        assert "InvalidRequest" in admin.alter_configs([bad], raise_on_unknown=False)["client_metrics"]["bad"]
    finally:
        admin.close()

    topic = unique_topic("telemetry")
    common = {"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4", "enable.metrics.push": True}
    matched = Producer({**common, "client.id": "telemetry-producer"})
    unmatched = Producer({**common, "client.id": "quiet-producer"})
    try:

        def pushed() -> bool:
            for producer in (matched, unmatched):
                producer.produce(topic, b"v")
                producer.poll(0)
            return any(
                name.startswith("org_apache_kafka_producer") and labels.get("client_id") == "telemetry-producer"
                for name, labels, _ in scrape(url)
            )

        wait_until(pushed, PUSH_WAIT_S, "the subscribed producer's pushed metrics on /metrics")
        time.sleep(3 * PUSH_INTERVAL_MS / 1000)  # a few more intervals: the unsubscribed one had its chances
        samples = scrape(url)
        mine = {name for name, labels, _ in samples if labels.get("client_id") == "telemetry-producer"}
        assert "org_apache_kafka_producer_node_request_latency_avg" in mine, sorted(mine)
        assert all(name.startswith("org_apache_kafka_producer") for name in mine), sorted(mine)
        # the other producer matches no subscription: asked for nothing, it pushes nothing
        assert not [s for s in samples if s[1].get("client_id") == "quiet-producer"]
    finally:
        for producer in (matched, unmatched):
            producer.flush(10)


def _configs(described: dict) -> dict[str, str]:
    """Name -> value of kafka-python's describe_configs answer for one CLIENT_METRICS resource,
    checking each entry's source is the subscription's."""
    (entries,) = described["client_metrics"].values()
    assert {e["config_source"] for e in entries.values()} == {"DYNAMIC_CLIENT_METRICS_CONFIG"}
    return {name: e["value"] for name, e in entries.items()}
