"""SASL/OAUTHBEARER with signed JWTs checked against sasl.oauthbearer.jwks.endpoint.url
(file:, http: and https: on loopback): algorithms per key, claims, refresh and rotation."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.metadata_request import MetadataRequest
from kbroker.wire.messages.sasl_authenticate_request import SaslAuthenticateRequest
from kbroker.wire.messages.sasl_handshake_request import SaslHandshakeRequest
from test_sasl import principals, sasl_client, start

from kbroker.security.devcerts import Pki
from kbroker.startup import StartupError
from kbroker.testing import BrokerThread

# How long a test waits for a refresh it started to be seen (polled, never asserted as a time).
REFRESH_WAIT_S = 15.0


class Key:
    """A signing key of the test identity provider and its public JWK."""

    def __init__(self, kid: str, alg: str) -> None:
        self.kid, self.alg = kid, alg
        if alg.startswith(("RS", "PS")):
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
            self.private = ec.generate_private_key(curve)
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def token(self, alg: str | None = None, kid: str | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"sub": "alice", "iat": now, "exp": now + 3600, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm=alg or self.alg, headers={"kid": kid or self.kid})


def write_jwks(path: Path, *keys: Key) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.jwk for k in keys]}))
    tmp.replace(path)


def message(token: str) -> bytes:
    return f"n,,\x01auth=Bearer {token}\x01\x01".encode()


def login(bt: BrokerThread, token: str, principal: str | None = None) -> tuple[int, str | None]:
    """(error code, message) of one OAUTHBEARER authentication on a new connection; once
    authenticated, checks (while connected) that the broker holds ``principal`` if given."""
    client = sasl_client(bt)
    try:
        assert client.request(SaslHandshakeRequest(mechanism="OAUTHBEARER"), 1).error_code == 0
        first = client.request(SaslAuthenticateRequest(auth_bytes=message(token)), 2)
        if first.error_code == 0 and first.auth_bytes == b"":
            assert len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1
            if principal is not None:
                assert principal in principals(bt)
            return 0, None
        assert json.loads(first.auth_bytes) == {"status": "invalid_token"}
        answer = client.request(SaslAuthenticateRequest(auth_bytes=b"\x01"), 2)
        assert client.is_closed_by_peer()
        return answer.error_code, answer.error_message
    finally:
        client.close()


def settings(url: str, **extra: str) -> dict[str, str]:
    return {"sasl.enabled.mechanisms": "OAUTHBEARER", "sasl.oauthbearer.jwks.endpoint.url": url, **extra}


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Key]:
    return {alg: Key(f"kid-{alg.lower()}", alg) for alg in ("RS256", "PS384", "ES256", "ES512", "EdDSA")}


@pytest.fixture
def jwks_broker(tmp_path: Path, keys: dict[str, Key]) -> Iterator[BrokerThread]:
    path = tmp_path / "jwks.json"
    write_jwks(path, *keys.values())
    extra = {
        "sasl.oauthbearer.expected.audience": "kafka,other",
        "sasl.oauthbearer.expected.issuer": "https://idp.test",
    }
    bt = start(tmp_path, **settings(path.as_uri(), **extra))
    try:
        yield bt
    finally:
        bt.close()


GOOD = {"aud": "kafka", "iss": "https://idp.test"}


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES512", "EdDSA"])
def test_a_token_signed_by_a_key_of_the_set_authenticates_its_subject(jwks_broker: BrokerThread, keys: dict[str, Key], alg: str) -> None:
    assert login(jwks_broker, keys[alg].token(sub=f"user-{alg.lower()}", **GOOD), f"User:user-{alg.lower()}") == (0, None)


def _forged(keys: dict[str, Key]) -> str:
    """Signed by a key not in the set, under the kid of one that is."""
    return Key("kid-rs256", "RS256").token(**GOOD)


def _unsecured(keys: dict[str, Key]) -> str:
    now = int(time.time())
    return jwt.encode({"sub": "alice", "iat": now, "exp": now + 60, **GOOD}, None, algorithm="none", headers={"kid": "kid-rs256"})


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda k: k["RS256"].token(exp=int(time.time()) - 120, **GOOD), "the token has expired"),
        (_forged, "Signature verification failed"),
        (_unsecured, "is not its key's"),
        (lambda k: k["ES256"].token(kid="kid-rs256", **GOOD), "is not its key's"),
        (lambda k: k["RS256"].token(alg="PS256", **GOOD), "is not its key's"),
        (lambda k: k["RS256"].token(kid="nobody", **GOOD), "no key in the JWKS has the token's kid"),
        (lambda k: k["RS256"].token(aud="elsewhere", iss="https://idp.test"), "Audience"),
        (lambda k: k["RS256"].token(aud="kafka", iss="https://evil.test"), "issuer"),
        (lambda k: k["RS256"].token(iat=None, **GOOD), "iat"),
        (lambda k: k["RS256"].token(iat=int(time.time()) + 3600, **GOOD), "not yet valid"),
        (lambda k: k["RS256"].token(sub=None, **GOOD), "no sub claim"),
        (lambda k: k["RS256"].token(scope={"a": 1}, **GOOD), "scope claim is neither"),
    ],
    ids=["expired", "forged", "unsecured", "es256-under-an-rsa-kid", "alg-ps256", "unknown-kid", "audience", "issuer", "no-iat", "future-iat", "no-sub", "scope"],
)
def test_bad_signed_tokens_get_the_error_challenge_then_fail(
    jwks_broker: BrokerThread, keys: dict[str, Key], make: Callable[[dict[str, Key]], str], reason: str
) -> None:
    error, text = login(jwks_broker, make(keys))
    assert error == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert text is not None and reason in text


def test_skew_sub_and_scope_claim_names(tmp_path: Path) -> None:
    key = Key("k1", "ES256")
    write_jwks(tmp_path / "jwks.json", key)
    extra = {
        "sasl.oauthbearer.clock.skew.seconds": "300",
        "sasl.oauthbearer.sub.claim.name": "client_id",
        "sasl.oauthbearer.scope.claim.name": "scp",
    }
    bt = start(tmp_path, **settings((tmp_path / "jwks.json").as_uri(), **extra))
    try:
        # Expired 2 minutes ago: inside the 5 minutes of skew.  The subject is client_id.
        token = key.token(sub=None, client_id="svc-orders", scp=["read", "write"], exp=int(time.time()) - 120)
        assert login(bt, token, "User:svc-orders") == (0, None)
        error, text = login(bt, key.token(client_id="svc", scp=7))
        assert error == ErrorCode.SASL_AUTHENTICATION_FAILED and text is not None and "scp claim" in text
        error, text = login(bt, key.token())  # sub only: the configured claim is missing
        assert error == ErrorCode.SASL_AUTHENTICATION_FAILED and text is not None and "no client_id claim" in text
    finally:
        bt.close()


def test_a_rotated_in_key_is_found_after_the_unknown_kid_starts_a_refresh(tmp_path: Path) -> None:
    old, new = Key("old", "RS256"), Key("new", "ES256")
    path = tmp_path / "jwks.json"
    write_jwks(path, old)
    extra = {"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "0"}
    bt = start(tmp_path, **settings(path.as_uri(), **extra))
    try:
        assert login(bt, old.token()) == (0, None)
        write_jwks(path, old, new)
        deadline, result = time.monotonic() + REFRESH_WAIT_S, login(bt, new.token())
        assert result[0] == ErrorCode.SASL_AUTHENTICATION_FAILED  # unknown until the refresh is read
        while result != (0, None) and time.monotonic() < deadline:
            time.sleep(0.1)
            result = login(bt, new.token())
        assert result == (0, None)
    finally:
        bt.close()


def test_the_set_is_read_again_every_refresh_interval(tmp_path: Path) -> None:
    """A key removed at the identity provider stops working once the set is read again."""
    kept, dropped = Key("kept", "RS256"), Key("dropped", "ES256")
    path = tmp_path / "jwks.json"
    write_jwks(path, kept, dropped)
    bt = start(tmp_path, **settings(path.as_uri(), **{"sasl.oauthbearer.jwks.endpoint.refresh.ms": "200"}))
    try:
        assert login(bt, dropped.token()) == (0, None)
        write_jwks(path, kept)
        deadline = time.monotonic() + REFRESH_WAIT_S
        while login(bt, dropped.token()) == (0, None) and time.monotonic() < deadline:
            time.sleep(0.1)
        error, text = login(bt, dropped.token())
        assert error == ErrorCode.SASL_AUTHENTICATION_FAILED and text is not None and "'dropped'" in text
        assert login(bt, kept.token()) == (0, None)
    finally:
        bt.close()


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    requests = 0
    failures_left = 0  # answer 503 this many times first

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        type(self).requests += 1
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[tuple[http.server.ThreadingHTTPServer, type[_JwksHandler]]]:
    handler = type("Handler", (_JwksHandler,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_an_http_endpoint_on_loopback(tmp_path: Path, jwks_server: tuple[http.server.ThreadingHTTPServer, type[_JwksHandler]]) -> None:
    server, handler = jwks_server
    key = Key("k1", "RS256")
    handler.body = json.dumps({"keys": [key.jwk]}).encode()
    bt = start(tmp_path, **settings(f"http://127.0.0.1:{server.server_address[1]}/jwks.json"))
    try:
        assert handler.requests == 1  # read at start-up
        assert login(bt, key.token()) == (0, None)
    finally:
        bt.close()


def test_the_first_read_is_retried_with_backoff(tmp_path: Path, jwks_server: tuple[http.server.ThreadingHTTPServer, type[_JwksHandler]]) -> None:
    server, handler = jwks_server
    key = Key("k1", "ES256")
    handler.body, handler.failures_left = json.dumps({"keys": [key.jwk]}).encode(), 2
    extra = {"sasl.oauthbearer.jwks.endpoint.retry.backoff.ms": "50", "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "10000"}
    bt = start(tmp_path, **settings(f"http://127.0.0.1:{server.server_address[1]}/jwks.json", **extra))
    try:
        assert handler.requests == 3  # two 503s, then the set
        assert login(bt, key.token()) == (0, None)
    finally:
        bt.close()


def test_an_https_endpoint_trusted_through_the_jaas_options(
    tmp_path: Path, pki: Pki, jwks_server: tuple[http.server.ThreadingHTTPServer, type[_JwksHandler]]
) -> None:
    server, handler = jwks_server
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_keystore)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    key = Key("k1", "ES256")
    handler.body = json.dumps({"keys": [key.jwk]}).encode()
    url = f"https://127.0.0.1:{server.server_address[1]}/jwks.json"
    jaas = (
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        f'ssl.truststore.location="{pki.ca_cert}";'
    )
    extra = {
        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config": jaas,
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        ),
    }
    bt = start(tmp_path, **settings(url, **extra))
    try:
        assert login(bt, key.token()) == (0, None)
    finally:
        bt.close()


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "No such file"), ("not json", "not JSON"), ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "no RSA, EC or OKP signing key")],
    ids=["missing", "not-json", "hmac-only"],
)
def test_an_unusable_set_is_a_startup_error(tmp_path: Path, content: str | None, reason: str) -> None:
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    extra = {"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms": "0"}
    with pytest.raises(StartupError, match=reason):
        start(tmp_path, **settings(path.as_uri(), **extra))
