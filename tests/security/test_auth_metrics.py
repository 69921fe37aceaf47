"""/metrics counts SASL authentications per listener, failed and successful."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from prometheus_client.parser import text_string_to_metric_families

from kbroker.testing import BrokerThread

JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_alice="alice-secret";'
)
SETTINGS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms": "PLAIN",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    "connection.failed.authentication.delay.ms": "0",
    "kbroker.http.listen": "127.0.0.1:0",
}


def _auth_counts(bt: BrokerThread) -> dict[tuple[str, str], float]:
    assert bt.broker is not None and bt.broker.http is not None
    with urllib.request.urlopen(bt.broker.http.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        (s.name, s.labels.get("listener", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_authentication_total")
    }


def _login(bt: BrokerThread, password: str) -> int:
    assert bt.broker is not None
    client = RawClient(bt.broker.listen_addresses["SASL_PLAINTEXT"])
    try:
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == ErrorCode.NONE
        token = f"\0alice\0{password}".encode()
        return client.request(SaslAuthenticateRequest(auth_bytes=token), 2).error_code
    finally:
        client.close()


def test_authentications_are_counted_per_listener(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", SETTINGS, listen="")
    bt.start()
    try:
        assert _login(bt, "alice-secret") == ErrorCode.NONE
        assert _login(bt, "wrong") == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert _login(bt, "wrong-again") == ErrorCode.SASL_AUTHENTICATION_FAILED
        counts = _auth_counts(bt)
        ok = "kafka_server_socketservermetrics_successful_authentication_total"
        failed = "kafka_server_socketservermetrics_failed_authentication_total"
        assert counts[(ok, "SASL_PLAINTEXT")] == 1
        assert counts[(failed, "SASL_PLAINTEXT")] == 2
    finally:
        bt.close()
