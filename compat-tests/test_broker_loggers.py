"""kafka-python's admin client on BROKER_LOGGER resources (describe_configs, alter_configs
through IncrementalAlterConfigs) and list_config_resources.  The broker's log level is
changed live: its log shows DEBUG lines afterwards."""

from __future__ import annotations

import pytest
from helpers import wait_until
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]


def test_kafka_python_reads_and_sets_broker_logger_levels(broker) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-loggers", request_timeout_ms=10_000)
    try:
        resource = ConfigResource(ConfigResourceType.BROKER_LOGGER, "1")
        before = admin.describe_configs([resource], config_filter="all")
        loggers = before["broker_logger"]["1"]
        assert "root" in loggers and "kbroker.server" in loggers, sorted(loggers)[:10]
        assert loggers["kbroker.server"]["value"] in ("INFO", "WARN")
        result = admin.alter_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1", {"kbroker.server": "DEBUG"})])
        assert result == {"broker_logger": {"1": "OK"}}, result
        after = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1", {"kbroker.server": None})], config_filter="all")
        assert after["broker_logger"]["1"]["kbroker.server"]["value"] == "DEBUG"
        admin.create_topics([NewTopic("loggers-listed", num_partitions=1, replication_factor=1)], timeout_ms=10_000)
        listed = admin.list_config_resources(["TOPIC", "BROKER_LOGGER"])
        assert "loggers-listed" in listed["topic"] and listed["broker_logger"] == ["1"]
    finally:
        admin.close()
    # live: kbroker.connection at DEBUG makes new connections log every request they answer
    assert "answered" not in broker.log_tail(400)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-loggers", request_timeout_ms=10_000)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "1", {"kbroker.connection": "DEBUG"})])
    finally:
        admin.close()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="compat-loggers", request_timeout_ms=10_000)
    try:
        admin.list_topics()
    finally:
        admin.close()
    wait_until(lambda: "answered" in broker.log_tail(400), 10, "per-request DEBUG lines in the broker log")
