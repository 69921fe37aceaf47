"""kbroker.emulate.version with real clients: each client's version probing lands on the
emulated Kafka release, and producing and consuming still work at the versions it chose.

kafka-python infers the broker's release from ApiVersions (``check_version()``); librdkafka
(confluent-kafka) negotiates each API's version from the same answer, so for it the check is
that a produce and a consume by assignment work under every emulated release.
"""

from __future__ import annotations

import pytest
from helpers import PARTITIONS, check_acks, check_roundtrip, make_messages, unique_topic
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from test_confluent import consume_all as ck_consume_all
from test_confluent import produce as ck_produce
from test_kafka_python import consume_all as kp_consume_all
from test_kafka_python import produce as kp_produce

pytestmark = [pytest.mark.compat, pytest.mark.timeout(120)]

# The releases the issue names, and the default (the newest, 4.2).
RELEASES = ("2.1", "2.8", "3.6", "4.1")
NEWEST = "4.2"


def _release(version: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in version[:2])


def _start(broker_factory, release: str | None):  # type: ignore[no-untyped-def]
    return broker_factory({"kbroker.emulate.version": release} if release else None)


@pytest.mark.parametrize("release", [*RELEASES, None])
def test_kafka_python_probes_the_emulated_release_and_round_trips(broker_factory, release: str | None) -> None:
    b = _start(broker_factory, release)
    admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="compat-emulate", request_timeout_ms=10_000)
    try:
        assert _release(admin._client.check_version()) == (release or NEWEST)
        topic = unique_topic("kp-emu")
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)], timeout_ms=10_000)
    finally:
        admin.close()
    sent = make_messages("kp-emu", count=30)
    acked = kp_produce(b.bootstrap, topic, sent, acks="all", linger_ms=5)
    got = kp_consume_all(b.bootstrap, topic, len(sent))
    by_partition = check_roundtrip(sent, got)
    check_acks(acked, by_partition)


@pytest.mark.parametrize("release", [*RELEASES, None])
def test_confluent_negotiates_and_round_trips(broker_factory, release: str | None) -> None:
    b = _start(broker_factory, release)
    topic = unique_topic("ck-emu")
    sent = make_messages("ck-emu", count=30)
    # auto-created by the producer's Metadata request (num.partitions=3 in the compat settings)
    acked = ck_produce(b.bootstrap, topic, sent, "zstd")
    got = ck_consume_all(b.bootstrap, topic, len(sent))
    by_partition = check_roundtrip(sent, got)
    check_acks(acked, by_partition)
