"""Finalized features with kafka-python's admin client (describe_features reads ApiVersions
v3+, update_features sends UpdateFeatures to the controller).  confluent-kafka, aiokafka and
kafkajs have neither call."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.errors import InvalidUpdateVersionError

pytestmark = [pytest.mark.compat, pytest.mark.timeout(60)]


def admin_for(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="compat-features", request_timeout_ms=10_000)


def test_kafka_python_describes_and_updates_features(broker) -> None:
    admin = admin_for(broker.bootstrap)
    try:
        features = admin.describe_features()
        # Kafka 4.2's metadata.version range and level; transaction.version 0-2, finalized
        # at 2 (KIP-890 part 2: EndTxn v5 served), as Kafka 4.2 reports them.
        assert features["metadata.version"]["supported"] == (7, 29)
        assert features["metadata.version"]["finalized"] == (29, 29)
        assert features["transaction.version"] == {"supported": (0, 2), "finalized": (2, 2), "finalized_epoch": 0}
        assert admin.update_features({"transaction.version": ("SAFE_DOWNGRADE", 0)}) == {"transaction.version": "OK"}
        after = admin.describe_features()
        assert "finalized" not in after["transaction.version"]
        assert after["metadata.version"]["finalized_epoch"] == 1
        with pytest.raises(InvalidUpdateVersionError, match="only supports versions 0-2"):
            admin.update_features({"transaction.version": 3}, validate_only=True)
    finally:
        admin.close()
    # durable
    broker.restart()
    admin = admin_for(broker.bootstrap)
    try:
        again = admin.describe_features()
        assert "finalized" not in again["transaction.version"]
        assert again["metadata.version"]["finalized_epoch"] == 1
    finally:
        admin.close()


def test_an_emulated_3_6_has_no_features(broker_factory) -> None:
    b = broker_factory({"kbroker.emulate.version": "3.6"})
    admin = admin_for(b.bootstrap)
    try:
        assert admin.describe_features() == {}
    finally:
        admin.close()
