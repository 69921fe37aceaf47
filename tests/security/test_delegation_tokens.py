"""Delegation tokens over the wire (keys 38-41, every served version) and SCRAM with the
tokenauth=true extension: the token authenticates as its owner."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.create_delegation_token_request import (
    CreatableRenewers,
    CreateDelegationTokenRequest,
)
from kbroker.wire.messages.describe_delegation_token_request import (
    DescribeDelegationTokenOwner,
    DescribeDelegationTokenRequest,
)
from kbroker.wire.messages.expire_delegation_token_request import ExpireDelegationTokenRequest
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.renew_delegation_token_request import RenewDelegationTokenRequest
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from security_harness import ScramClient
from test_sasl import plain_token, principals, sasl_client, scram_login, start

from kbroker.testing import BrokerThread

SECRET = "a-secret-only-the-broker-knows"
TOKENS = {
    "delegation.token.secret.key": SECRET,
    "delegation.token.max.lifetime.ms": "7200000",
    "delegation.token.expiry.time.ms": "3600000",
}
# Bound of the wait for a token expired "now" to be past its expiry (polled).
EXPIRY_WAIT_S = 10.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = start(tmp_path, **TOKENS)
    try:
        yield bt
    finally:
        bt.close()


def as_alice(bt: BrokerThread) -> RawClient:
    client = sasl_client(bt)
    assert scram_login(client, "SCRAM-SHA-256")[0] == 0
    return client


def as_admin(bt: BrokerThread) -> RawClient:
    client = sasl_client(bt)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    assert client.request(SaslAuthenticateRequest(auth_bytes=plain_token("admin", "admin-secret")), 2).error_code == 0
    return client


def token_login(bt: BrokerThread, token_id: str, mac: bytes, mechanism: str = "SCRAM-SHA-512") -> tuple[RawClient, int, str | None]:
    """SCRAM with tokenauth=true: the token id as user, the base64 HMAC as password."""
    client = sasl_client(bt)
    assert client.request(SaslHandshakeRequest(mechanism=mechanism), 1).error_code == 0
    scram = ScramClient(mechanism, token_id, base64.b64encode(mac).decode())
    scram.client_first_bare += ",tokenauth=true"
    first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first()), 2)
    if first.error_code:
        return client, first.error_code, first.error_message
    final = client.request(SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes)), 2)
    if final.error_code == 0:
        assert scram.verify(final.auth_bytes)
    return client, final.error_code, final.error_message


def create(client: RawClient, version: int = 3, **fields: Any) -> Any:
    return client.request(CreateDelegationTokenRequest(**fields), version)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_create_answers_the_token_and_its_times(broker: BrokerThread, version: int) -> None:
    client = as_alice(broker)
    answer = create(client, version, renewers=[CreatableRenewers(principal_type="User", principal_name="admin")], max_lifetime_ms=10**12)
    assert answer.error_code == 0
    assert (answer.principal_type, answer.principal_name) == ("User", "alice")
    if version >= 3:
        assert (answer.token_requester_principal_type, answer.token_requester_principal_name) == ("User", "alice")
    assert answer.expiry_timestamp_ms - answer.issue_timestamp_ms == 3600000
    assert answer.max_timestamp_ms - answer.issue_timestamp_ms == 7200000  # capped by the config
    assert len(answer.token_id) == 22 and len(answer.hmac) == 64  # base64url UUID, HmacSHA512
    shorter = create(client, version, max_lifetime_ms=600000)
    assert shorter.max_timestamp_ms - shorter.issue_timestamp_ms == 600000 == shorter.expiry_timestamp_ms - shorter.issue_timestamp_ms
    client.close()


def test_a_token_authenticates_as_its_owner_and_may_not_manage_tokens(broker: BrokerThread) -> None:
    owner = as_alice(broker)
    token = create(owner)
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        client, error, message = token_login(broker, token.token_id, token.hmac, mechanism)
        assert (error, message) == (0, None)
        assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
        assert create(client).error_code == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
        assert client.request(DescribeDelegationTokenRequest(owners=None), 3).error_code == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
        client.close()
    # The owner's own connection is alice's; the token connections (closed above, which the
    # broker sees a moment later) were alice's too.
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while principals(broker).count("User:alice") > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert principals(broker).count("User:alice") == 1
    wrong, error, message = token_login(broker, token.token_id, b"\0" * 64)
    assert error == ErrorCode.SASL_AUTHENTICATION_FAILED and message is not None
    wrong.close()
    # Without tokenauth=true the token id is just an unknown user.
    client = sasl_client(broker)
    assert scram_login(client, "SCRAM-SHA-512", token.token_id, base64.b64encode(token.hmac).decode())[0] == ErrorCode.SASL_AUTHENTICATION_FAILED
    client.close()
    owner.close()


def test_renew_and_expire_follow_kafka(broker: BrokerThread) -> None:
    alice, admin = as_alice(broker), as_admin(broker)
    token = create(alice, renewers=[CreatableRenewers(principal_type="User", principal_name="admin")])
    other = create(alice)
    for version in (1, 2):
        renewed = admin.request(RenewDelegationTokenRequest(hmac=token.hmac, renew_period_ms=60000), version)
        assert renewed.error_code == 0 and renewed.expiry_timestamp_ms <= token.max_timestamp_ms
        assert admin.request(RenewDelegationTokenRequest(hmac=other.hmac, renew_period_ms=60000), version).error_code == ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH
        assert admin.request(RenewDelegationTokenRequest(hmac=b"nope", renew_period_ms=1), version).error_code == ErrorCode.DELEGATION_TOKEN_NOT_FOUND
    # A renewal never passes the max time; -1 is the default expiry time.
    far = alice.request(RenewDelegationTokenRequest(hmac=token.hmac, renew_period_ms=10**12), 2)
    assert far.expiry_timestamp_ms == token.max_timestamp_ms
    default = alice.request(RenewDelegationTokenRequest(hmac=token.hmac, renew_period_ms=-1), 2)
    assert 3500000 < default.expiry_timestamp_ms - int(time.time() * 1000) <= 3600000
    for version in (1, 2):
        assert admin.request(ExpireDelegationTokenRequest(hmac=other.hmac, expiry_time_period_ms=-1), version).error_code == ErrorCode.DELEGATION_TOKEN_OWNER_MISMATCH
    later = alice.request(ExpireDelegationTokenRequest(hmac=other.hmac, expiry_time_period_ms=120000), 1)
    assert later.error_code == 0 and later.expiry_timestamp_ms <= other.max_timestamp_ms
    gone = alice.request(ExpireDelegationTokenRequest(hmac=token.hmac, expiry_time_period_ms=-1), 2)
    assert gone.error_code == 0
    assert alice.request(RenewDelegationTokenRequest(hmac=token.hmac, renew_period_ms=1), 2).error_code == ErrorCode.DELEGATION_TOKEN_NOT_FOUND
    client, error, _message = token_login(broker, token.token_id, token.hmac)
    assert error == ErrorCode.SASL_AUTHENTICATION_FAILED
    client.close()
    # Expired "now" (period 0): gone once its expiry has passed.
    assert alice.request(ExpireDelegationTokenRequest(hmac=other.hmac, expiry_time_period_ms=0), 2).error_code == 0
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while alice.request(RenewDelegationTokenRequest(hmac=other.hmac, renew_period_ms=1), 2).error_code == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alice.request(RenewDelegationTokenRequest(hmac=other.hmac, renew_period_ms=1), 2).error_code == ErrorCode.DELEGATION_TOKEN_NOT_FOUND
    alice.close()
    admin.close()


@pytest.mark.parametrize("version", [1, 2, 3])
def test_describe_filters_by_owner(broker: BrokerThread, version: int) -> None:
    alice = as_alice(broker)
    token = create(alice, renewers=[CreatableRenewers(principal_type="User", principal_name="admin")])

    def describe(owners: list[DescribeDelegationTokenOwner] | None) -> list[Any]:
        answer = alice.request(DescribeDelegationTokenRequest(owners=owners), version)
        assert answer.error_code == 0
        return list(answer.tokens)

    [described] = describe(None)
    assert (described.token_id, described.hmac, described.principal_name) == (token.token_id, token.hmac, "alice")
    assert (described.expiry_timestamp, described.max_timestamp) == (token.expiry_timestamp_ms, token.max_timestamp_ms)
    assert [(r.principal_type, r.principal_name) for r in described.renewers] == [("User", "admin")]
    if version >= 3:
        assert described.token_requester_principal_name == "alice"
    assert describe([]) == []
    assert [t.token_id for t in describe([DescribeDelegationTokenOwner(principal_type="User", principal_name="alice")])] == [token.token_id]
    assert describe([DescribeDelegationTokenOwner(principal_type="User", principal_name="nobody")]) == []
    alice.close()


def test_tokens_survive_a_restart_and_a_new_secret_voids_them(tmp_path: Path) -> None:
    bt = start(tmp_path, **TOKENS)
    try:
        alice = as_alice(bt)
        token = create(alice)
        alice.close()
        bt.restart()
        client, error, _ = token_login(bt, token.token_id, token.hmac)
        assert error == 0
        client.close()
    finally:
        bt.close()
    bt = start(tmp_path, **{**TOKENS, "delegation.token.secret.key": "another-secret"})
    try:
        client, error, _ = token_login(bt, token.token_id, token.hmac)
        assert error == ErrorCode.SASL_AUTHENTICATION_FAILED
        client.close()
    finally:
        bt.close()


def test_refusals_before_anything_else(tmp_path: Path) -> None:
    bt = start(tmp_path)  # no delegation.token.secret.key
    try:
        alice = as_alice(bt)
        assert create(alice).error_code == ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED
        assert alice.request(DescribeDelegationTokenRequest(owners=None), 3).error_code == ErrorCode.DELEGATION_TOKEN_AUTH_DISABLED
        client, error, _ = token_login(bt, "any", b"x")  # tokenauth with tokens off: a failed login
        assert error == ErrorCode.SASL_AUTHENTICATION_FAILED
        client.close()
        alice.close()
        plaintext = RawClient(bt.address)
        assert create(plaintext).error_code == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
        assert plaintext.request(RenewDelegationTokenRequest(hmac=b"x", renew_period_ms=1), 2).error_code == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
        plaintext.close()
    finally:
        bt.close()


def test_another_owner_needs_create_tokens_and_user_principals_only(broker: BrokerThread) -> None:
    alice = as_alice(broker)
    assert create(alice, renewers=[CreatableRenewers(principal_type="Group", principal_name="x")]).error_code == ErrorCode.INVALID_PRINCIPAL_TYPE
    assert create(alice, owner_principal_type="Group", owner_principal_name="x").error_code == ErrorCode.INVALID_PRINCIPAL_TYPE
    # No authorizer: allowed, as Kafka without one; the token is bob's, requested by alice.
    answer = create(alice, owner_principal_type="User", owner_principal_name="bob")
    assert answer.error_code == 0 and answer.principal_name == "bob" and answer.token_requester_principal_name == "alice"
    client, error, _ = token_login(broker, answer.token_id, answer.hmac)
    assert error == 0 and "User:bob" in principals(broker)
    client.close()
    alice.close()
