"""Client quotas key on the session's principal: a user quota applies to a SASL-authenticated
user's connections only, and PLAINTEXT connections are the user ANONYMOUS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_client_quotas_request import (
    AlterClientQuotasRequest,
    EntityData,
    EntryData,
    OpData,
)
from kbroker.wire.messages.create_topics_request import CreatableTopic, CreateTopicsRequest
from kbroker.wire.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from kbroker.wire.records import make_batch

from kbroker.testing import BrokerThread

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="bob-secret";'
SETTINGS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms": "PLAIN",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
}
QUOTA_BYTES_PER_S = 1000.0
# ~12,000 bytes: 1,200 B/s over a new sensor's 10 s, throttled about 2 s by a 1,000 B/s quota
VALUE_BYTES = 11_900


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = BrokerThread(tmp_path / "data", SETTINGS, listen="")
    bt.start()
    try:
        yield bt
    finally:
        bt.close()


def connect(bt: BrokerThread, user: str | None) -> RawClient:
    """A PLAINTEXT client (user None) or a SASL/PLAIN one logged in as ``user``."""
    assert bt.broker is not None
    if user is None:
        return RawClient(bt.broker.listen_addresses["PLAINTEXT"])
    client = RawClient(bt.broker.listen_addresses["SASL_PLAINTEXT"])
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    token = f"\0{user}\0{user}-secret".encode()
    assert client.request(SaslAuthenticateRequest(auth_bytes=token), 2).error_code == 0
    return client


def set_quota(client: RawClient, user: str | None) -> None:
    entry = EntryData(
        entity=[EntityData(entity_type="user", entity_name=user)], ops=[OpData(key="producer_byte_rate", value=QUOTA_BYTES_PER_S)]
    )
    assert [e.error_code for e in client.request(AlterClientQuotasRequest(entries=[entry]), 1).entries] == [ErrorCode.NONE]


def produce_throttle_ms(client: RawClient, topic: str) -> Any:
    batch = bytes(make_batch([b"p" * VALUE_BYTES]))
    req = ProduceRequest(
        acks=1, timeout_ms=5000, topic_data=[TopicProduceData(name=topic, partition_data=[PartitionProduceData(index=0, records=batch)])]
    )
    resp = client.request(req, 9)
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    return resp.throttle_time_ms


def test_a_user_quota_follows_the_authenticated_principal(broker: BrokerThread) -> None:
    admin = connect(broker, None)
    alice, bob, anonymous = connect(broker, "alice"), connect(broker, "bob"), connect(broker, None)
    try:
        topic = CreatableTopic(name="users", num_partitions=1, replication_factor=-1)
        assert admin.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == ErrorCode.NONE
        set_quota(admin, "alice")
        assert produce_throttle_ms(alice, "users") > 1_000
        assert produce_throttle_ms(bob, "users") == 0
        assert produce_throttle_ms(anonymous, "users") == 0
    finally:
        for c in (admin, alice, bob, anonymous):
            c.close()


def test_the_default_user_quota_measures_each_user_apart_anonymous_included(broker: BrokerThread) -> None:
    admin = connect(broker, None)
    clients = {"alice": connect(broker, "alice"), "bob": connect(broker, "bob"), "ANONYMOUS": connect(broker, None)}
    try:
        topic = CreatableTopic(name="default-users", num_partitions=1, replication_factor=-1)
        assert admin.request(CreateTopicsRequest(topics=[topic]), 7).topics[0].error_code == ErrorCode.NONE
        set_quota(admin, None)
        # each user's first ~12 kB is its own: every one is throttled the same, none sooner
        throttles = {user: produce_throttle_ms(c, "default-users") for user, c in clients.items()}
        assert all(1_500 <= t <= 2_500 for t in throttles.values()), throttles
        quotas = broker.broker.quotas  # type: ignore[union-attr]
        assert quotas is not None
        assert {(kind, user) for kind, user, _ in quotas.throttles} == {("Produce", u) for u in clients}
    finally:
        admin.close()
        for c in clients.values():
            c.close()
