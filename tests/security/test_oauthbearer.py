"""SASL/OAUTHBEARER with unsecured JWTs, Kafka's default validator."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from test_sasl import principals, sasl_client, start


def b64url(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def message(claims: dict[str, object], alg: str = "none") -> bytes:
    token = f"{b64url({'alg': alg})}.{b64url(claims)}."
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (message({"sub": "alice", "exp": 1}), "the token has expired"),
        (message({"exp": time.time() + 3600}), "no sub claim"),
        (message({"sub": "alice", "exp": time.time() + 3600}, alg="RS256"), "only unsecured JWTs"),
        (message({"sub": "alice", "exp": time.time() + 3600, "aud": "other"}), "audience is not expected"),
        (b"n,,\x01auth=Bearer not-a-jwt\x01\x01", "three dot-separated parts"),
        (b"\xff\xfe", "not UTF-8"),
        (b"", "invalid OAUTHBEARER client message"),
    ],
    ids=["expired", "no-sub", "signed", "audience", "not-jwt", "not-utf8", "empty"],
)
def test_bad_tokens_get_the_error_challenge_then_fail(tmp_path: Path, token: bytes, reason: str) -> None:
    bt = start(tmp_path, **{"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.oauthbearer.expected.audience": "kafka"})
    try:
        client = sasl_client(bt)
        assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER"), 1).error_code == 0
        challenge = client.request(SaslAuthenticateRequest(auth_bytes=token), 2)
        assert challenge.error_code == 0 and json.loads(challenge.auth_bytes) == {"status": "invalid_token"}
        answer = client.request(SaslAuthenticateRequest(auth_bytes=b"\x01"), 2)
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert reason in answer.error_message
        assert client.is_closed_by_peer()
        client.close()
    finally:
        bt.close()


def test_a_valid_unsecured_token_authenticates_its_subject(tmp_path: Path) -> None:
    bt = start(tmp_path, **{"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.oauthbearer.expected.issuer": "me"})
    try:
        client = sasl_client(bt)
        assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER"), 1).error_code == 0
        token = message({"sub": "alice", "exp": time.time() + 3600, "iat": time.time(), "iss": "me"})
        assert client.request(SaslAuthenticateRequest(auth_bytes=token), 2).error_code == 0
        assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
        assert "User:alice" in principals(bt)
        client.close()
    finally:
        bt.close()
