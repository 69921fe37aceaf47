"""SASL on the wire: SaslHandshake/SaslAuthenticate, the legacy exchange, PLAIN and SCRAM,
re-authentication, the gate before authentication and hostile input."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.api_versions_request import ApiVersionsRequest
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from kbroker.wire.messages.sasl_handshake_response import SaslHandshakeResponse
from security_harness import ScramClient

from kbroker.security.scram import ScramCredential, ScramStore
from kbroker.startup import StartupError
from kbroker.testing import BrokerThread

PLAIN_JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    'username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
)
SASL_SETTINGS = {
    "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
    "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
    "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
    "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
    "connection.failed.authentication.delay.ms": "0",
}


def seed(data_dir: Path, user: str = "alice", password: str = "alice-secret") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    store = ScramStore(data_dir)
    store.load()
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        store.upsert(user, mechanism, ScramCredential.from_password(mechanism, password))
    store.save()


def start(tmp_path: Path, **extra: str) -> BrokerThread:
    seed(tmp_path / "data")
    bt = BrokerThread(tmp_path / "data", {**SASL_SETTINGS, **extra}, listen="")
    bt.start()
    return bt


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerThread]:
    bt = start(tmp_path)
    try:
        yield bt
    finally:
        bt.close()


def sasl_client(bt: BrokerThread) -> RawClient:
    assert bt.broker is not None
    return RawClient(bt.broker.listen_addresses["SASL_PLAINTEXT"])


def principals(bt: BrokerThread) -> list[str]:
    async def read() -> list[str]:
        assert bt.broker is not None
        return sorted(c.session.principal for c in bt.broker._connections)

    return list(bt.call(read()))


def plain_token(user: str, password: str, authzid: str = "") -> bytes:
    return f"{authzid}\0{user}\0{password}".encode()


def scram_login(client: RawClient, mechanism: str, user: str = "alice", password: str = "alice-secret") -> tuple[int, str | None, bool]:
    assert client.request(SaslHandshakeRequest(mechanism=mechanism), 1).error_code == 0
    scram = ScramClient(mechanism, user, password)
    first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first()), 2)
    if first.error_code:
        return first.error_code, first.error_message, False
    final = client.request(SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes)), 2)
    return final.error_code, final.error_message, final.error_code == 0 and scram.verify(final.auth_bytes)


def test_plain_authenticates_then_everything_is_served(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    versions = client.request(ApiVersionsRequest(), 3)
    assert {k.api_key for k in versions.api_keys} >= {17, 36, 50, 51}
    handshake = client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1)
    assert (handshake.error_code, handshake.mechanisms) == (0, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    answer = client.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 2)
    assert answer.error_code == 0 and answer.session_lifetime_ms == 0
    assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
    assert "User:alice" in principals(broker)
    client.close()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_authenticates_and_the_server_proves_itself(broker: BrokerThread, mechanism: str) -> None:
    client = sasl_client(broker)
    assert scram_login(client, mechanism) == (0, None, True)
    assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
    assert "User:alice" in principals(broker)
    client.close()


@pytest.mark.parametrize(
    ("mechanism", "user", "password", "message"),
    [
        ("SCRAM-SHA-256", "alice", "wrong", "Authentication failed: Invalid user credentials"),
        ("SCRAM-SHA-512", "nobody", "x", "Authentication failed: Invalid user credentials"),
    ],
)
def test_scram_wrong_password_or_unknown_user_fail_alike_and_close(broker: BrokerThread, mechanism: str, user: str, password: str, message: str) -> None:
    client = sasl_client(broker)
    assert scram_login(client, mechanism, user, password) == (ErrorCode.SASL_AUTHENTICATION_FAILED, message, False)
    assert client.is_closed_by_peer()
    client.close()


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (plain_token("alice", "nope"), "Authentication failed: Invalid username or password"),
        (plain_token("mallory", "x"), "Authentication failed: Invalid username or password"),
        (plain_token("alice", "alice-secret", authzid="admin"), "different from username"),
        (b"no-nuls-at-all", "expected 3 tokens"),
        (b"\xff\0\xfe\0\xfd", "not UTF-8"),
        (b"", "expected 3 tokens"),
    ],
)
def test_plain_failures_are_answered_then_closed(broker: BrokerThread, token: bytes, message: str) -> None:
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    answer = client.request(SaslAuthenticateRequest(auth_bytes=token), 1)
    assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert message in answer.error_message
    assert client.is_closed_by_peer()
    client.close()


def test_unsupported_mechanism_lists_the_enabled_ones_and_closes(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    answer = client.request(SaslHandshakeRequest(mechanism="GSSAPI"), 1)
    assert answer.error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
    assert answer.mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
    assert client.is_closed_by_peer()
    client.close()


def test_no_other_request_before_authentication(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    client.request(MetadataRequest(topics=[]), 12, expect_response=False)
    assert client.recv_frame() is None
    client.close()
    client = sasl_client(broker)  # SaslAuthenticate before SaslHandshake
    client.request(SaslAuthenticateRequest(auth_bytes=b"x"), 1, expect_response=False)
    assert client.recv_frame() is None
    client.close()


@pytest.mark.parametrize(
    ("request_", "version"),
    [(SaslHandshakeRequest(mechanism="PLAIN"), 1), (ApiVersionsRequest(), 3), (SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 0)],
    ids=["second-handshake", "api-versions", "second-handshake-v0"],
)
def test_an_unexpected_request_during_the_exchange_is_answered_illegal_state_then_closed(
    broker: BrokerThread, request_: SaslHandshakeRequest | ApiVersionsRequest, version: int
) -> None:
    """After SaslHandshake v1 only SaslAuthenticate may come: anything else gets its own error
    response with ILLEGAL_SASL_STATE (Kafka's SaslServerAuthenticator), then the connection closes."""
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    answer = client.request(request_, version)
    assert answer.error_code == ErrorCode.ILLEGAL_SASL_STATE
    if isinstance(answer, SaslHandshakeResponse):
        assert answer.mechanisms == []
    assert client.is_closed_by_peer()
    client.close()
    other = sasl_client(broker)  # nothing else is affected
    assert other.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    assert other.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 2).error_code == 0
    other.close()


def test_a_request_without_a_top_level_error_during_the_exchange_closes_unanswered(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    client.request(MetadataRequest(topics=[]), 12, expect_response=False)
    assert client.recv_frame() is None
    client.close()


def test_sasl_requests_on_a_listener_without_sasl_are_illegal_state(broker: BrokerThread) -> None:
    client = RawClient(broker.address)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    assert client.request(SaslAuthenticateRequest(auth_bytes=b"x"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
    client.close()


def test_a_second_authentication_without_reauth_is_illegal_state(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    assert scram_login(client, "SCRAM-SHA-256")[0] == 0
    assert client.request(SaslAuthenticateRequest(auth_bytes=b"x"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    client.close()


def test_scram_nonce_rules(tmp_path: Path) -> None:
    """Default: the client-final nonce must end with the server's (Kafka 3.8.1-3.9);
    kbroker.sasl.scram.exact.nonce=true: it must be exactly client + server nonce."""
    for exact, accepted in (("false", True), ("true", False)):
        bt = start(tmp_path / exact, **{"kbroker.sasl.scram.exact.nonce": exact})
        try:
            client = sasl_client(bt)
            assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
            scram = ScramClient("SCRAM-SHA-256", "alice", "alice-secret")
            first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first()), 1)
            server_nonce = first.auth_bytes.decode().split(",")[0][2:][len(scram.nonce) :]
            final = client.request(SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes, nonce="other" + server_nonce)), 1)
            assert (final.error_code == 0) is accepted
            client.close()
            client = sasl_client(bt)  # a nonce without the server's part is refused either way
            assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
            first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first()), 1)
            final = client.request(SaslAuthenticateRequest(auth_bytes=scram.final(first.auth_bytes, nonce=scram.nonce)), 1)
            assert final.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
            assert "Invalid client nonce" in final.error_message
            client.close()
        finally:
            bt.close()


@pytest.mark.parametrize(
    "tokens",
    [
        [b"garbage"],
        [b"n,,n=alice"],  # truncated: no nonce
        [b"p=tls-unique,,n=alice,r=abc"],  # channel binding
        [b"n,,n=al=ZZice,r=abc"],  # bad saslname escape
        [b"n,,n=alice,r=abc", b"c=biws,r=abc"],  # no proof
        [b"n,,n=alice,r=abc", b"c=biws,r=abc,p=!!notbase64"],
        [b"n,,n=alice,r=abc", b"c=eSws,r=abc,p=AAAA"],  # channel binding changed
        [b"n,,n=alice,r=" + b"x" * 9000],  # over the SCRAM message limit
    ],
)
def test_hostile_scram_tokens_get_an_error_and_nothing_else_breaks(broker: BrokerThread, tokens: list[bytes]) -> None:
    bystander = sasl_client(broker)
    assert scram_login(bystander, "SCRAM-SHA-512")[0] == 0
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == 0
    codes = [client.request(SaslAuthenticateRequest(auth_bytes=t), 1).error_code for t in tokens]
    assert codes[-1] == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert client.is_closed_by_peer()
    client.close()
    assert len(bystander.request(MetadataRequest(topics=[]), 12).brokers) == 1
    bystander.close()


def test_a_huge_frame_before_authentication_is_refused_at_its_size(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
    client.send_raw(struct.pack(">i", 100 * 1024 * 1024) + b"\0" * 1024)  # 100 MB announced
    assert client.recv_frame() is None
    client.close()


def test_legacy_v0_exchange_with_plain_and_scram(broker: BrokerThread) -> None:
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 0).error_code == 0
    token = plain_token("a", "b")  # shorter than any Kafka request header
    client.send_raw(struct.pack(">i", len(token)) + token)
    assert client.recv_frame() is None  # a failed legacy exchange just closes
    client.close()
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 0).error_code == 0
    token = plain_token("alice", "alice-secret")
    client.send_raw(struct.pack(">i", len(token)) + token)
    assert client.recv_frame() == b""
    assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
    client.close()
    client = sasl_client(broker)
    assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-512"), 0).error_code == 0
    scram = ScramClient("SCRAM-SHA-512", "alice", "alice-secret")
    client.send_raw(struct.pack(">i", len(scram.first())) + scram.first())
    server_first = client.recv_frame()
    assert server_first is not None
    final = scram.final(server_first)
    client.send_raw(struct.pack(">i", len(final)) + final)
    server_final = client.recv_frame()
    assert server_final is not None and scram.verify(server_final)
    assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
    client.close()


def test_reauthentication_keeps_the_principal_and_expired_sessions_close(tmp_path: Path) -> None:
    bt = start(tmp_path, **{"connections.max.reauth.ms": "3600000"})
    try:
        client = sasl_client(bt)
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        answer = client.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 1)
        assert (answer.error_code, answer.session_lifetime_ms) == (0, 3600000)
        # Re-authenticate as the same user: fine, the lifetime starts again.
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        answer = client.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 2)
        assert (answer.error_code, answer.session_lifetime_ms) == (0, 3600000)
        # Another mechanism: refused.
        assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256"), 1).error_code == ErrorCode.UNSUPPORTED_SASL_MECHANISM
        client.close()
        client = sasl_client(bt)
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        assert client.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 1).error_code == 0
        # Re-authenticating as someone else is refused.
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        answer = client.request(SaslAuthenticateRequest(auth_bytes=plain_token("admin", "admin-secret")), 1)
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert "Cannot change principals" in answer.error_message
        client.close()
        # An expired session: the next request that is not a re-authentication closes it.
        client = sasl_client(bt)
        assert client.request(SaslHandshakeRequest(mechanism="PLAIN"), 1).error_code == 0
        assert client.request(SaslAuthenticateRequest(auth_bytes=plain_token("alice", "alice-secret")), 1).error_code == 0

        async def expire() -> None:
            assert bt.broker is not None
            for conn in bt.broker._connections:
                if conn.session.sasl is not None:
                    conn.session.sasl._expires_at = 0.0

        bt.call(expire())
        client.request(MetadataRequest(topics=[]), 12, expect_response=False)
        assert client.recv_frame() is None
        client.close()
    finally:
        bt.close()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sasl.enabled.mechanisms": "GSSAPI"}, "GSSAPI, Kafka's default, is not served"),
        ({"listener.name.sasl_plaintext.plain.sasl.jaas.config": None}, "PLAIN is enabled but"),
        ({"listener.name.sasl_plaintext.plain.sasl.jaas.config": "PlainLoginModule required user_a=\"b\""}, "must end with ';'"),
        ({"listener.name.sasl_plaintext.plain.sasl.jaas.config": "PlainLoginModule always;"}, "control flag 'always'"),
    ],
)
def test_unusable_sasl_settings_are_startup_errors(tmp_path: Path, settings: dict[str, str | None], message: str) -> None:
    merged = {k: v for k, v in {**SASL_SETTINGS, **settings}.items() if v is not None}
    bt = BrokerThread(tmp_path / "data", merged, listen="")
    try:
        with pytest.raises(StartupError, match=message):
            bt.start()
    finally:
        bt.close()
