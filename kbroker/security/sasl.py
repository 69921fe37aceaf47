"""SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners, as Kafka's SaslServerAuthenticator.

Theory of operation
-------------------
Each connection of a SASL listener gets an :class:`Authenticator` (the connection's
``_gate``, and ``Session.sasl`` for the handlers).  Until authentication succeeds every
frame goes through :meth:`Authenticator.handle`, which lets a request reach
``broker.dispatch`` only if the state allows its API key (the table ``ALLOWED``); any other
request closes the connection, as Kafka's IllegalSaslStateException does: before the
SaslHandshake without an answer, after it (state AUTHENTICATE) once the request's own error
response with ILLEGAL_SASL_STATE is written.  Frames are
bounded by ``sasl.server.max.receive.size`` meanwhile (a 100 MB SaslAuthenticate is
refused at its size prefix, before a byte of it is read).

State table (request or event -> next state)::

    HANDSHAKE_OR_VERSIONS  ApiVersions -> HANDSHAKE;  SaslHandshake v1 -> AUTHENTICATE;
                           SaslHandshake v0 -> LEGACY_TOKEN
    HANDSHAKE              SaslHandshake as above (ApiVersions is still answered)
    AUTHENTICATE           SaslAuthenticate: a challenge (stay), success -> AUTHENTICATED,
                           failure -> FAILED
    LEGACY_TOKEN           a raw size-prefixed SASL token, no Kafka header (SaslHandshake v0's
                           exchange); answered with a raw token; success -> AUTHENTICATED
    AUTHENTICATED          everything (through the normal dispatch); with re-authentication
                           (KIP-368) SaslHandshake v1 + SaslAuthenticate start a new exchange
                           for the same mechanism and must end with the same principal
    FAILED                 the answer is written, then the connection is closed

Mechanisms: PLAIN (users from the listener's ``plain.sasl.jaas.config``: ``user_<name>=
"<password>"``), SCRAM-SHA-256/512 (:mod:`kbroker.security.scram`, credentials from the
broker's store, or a delegation token's with the ``tokenauth=true`` extension:
:mod:`kbroker.security.delegation`) and OAUTHBEARER with unsecured or JWKS-signed JWTs
(:mod:`kbroker.security.oauthbearer`, :mod:`kbroker.security.jwks`).  An unsupported mechanism is answered UNSUPPORTED_SASL_MECHANISM with the
enabled list, and the connection closed.  A failed authentication is answered
SASL_AUTHENTICATION_FAILED with a message at once, and the connection is closed
``connection.failed.authentication.delay.ms`` later (nothing more is read meanwhile).

Re-authentication: with ``connections.max.reauth.ms`` > 0 the SaslAuthenticate answer
carries ``session_lifetime_ms``; the gate stays, and once the session has expired any
request but SaslHandshake/SaslAuthenticate closes the connection (Kafka's rule).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import struct
import time
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from kbroker.config import BrokerConfig, ConfigError, ServedListener
from kbroker.connection import CloseConnection
from kbroker.security.jaas import parse_jaas
from kbroker.security.scram import MECHANISMS as SCRAM_MECHANISMS
from kbroker.security.scram import ScramError, ScramExchange, ScramStore
from kbroker.wire.api import ApiKey
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.headers import peek_request_header

if TYPE_CHECKING:
    from kbroker.connection import KafkaConnection
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

SUPPORTED_MECHANISMS = ("PLAIN", *SCRAM_MECHANISMS, "OAUTHBEARER")
_SIZE = struct.Struct(">i")


class SaslFailure(ValueError):
    """Authentication failed; the text goes to the client (SaslAuthenticate error_message)."""


class State(Enum):
    HANDSHAKE_OR_VERSIONS = "handshake-or-versions"
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    LEGACY_TOKEN = "legacy-token"
    AUTHENTICATED = "authenticated"
    FAILED = "failed"


# The API keys each state lets through to the handlers before authentication.
ALLOWED: dict[State, frozenset[int]] = {
    State.HANDSHAKE_OR_VERSIONS: frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE}),
    State.HANDSHAKE: frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE}),
    State.AUTHENTICATE: frozenset({ApiKey.SASL_AUTHENTICATE}),
    State.FAILED: frozenset(),
}
# Outside ALLOWED the connection closes.  Before SaslHandshake it closes without an answer;
# after a SaslHandshake v1 (AUTHENTICATE) the request is first answered with its own error
# response carrying ILLEGAL_SASL_STATE (a second SaslHandshake, ApiVersions, ...), as Kafka's
# SaslServerAuthenticator does: see illegal_state_answer.
REAUTH_KEYS = frozenset({ApiKey.SASL_HANDSHAKE, ApiKey.SASL_AUTHENTICATE})


class Exchange(Protocol):
    """One mechanism's server side: ``step`` answers a client token (raising on failure)."""

    @property
    def user(self) -> str: ...

    def step(self, message: bytes) -> bytes: ...

    @property
    def complete(self) -> bool: ...


class PlainExchange:
    """RFC 4616: one token ``authzid NUL authcid NUL password``, checked against the JAAS users."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.user = ""
        self.complete = False

    def step(self, message: bytes) -> bytes:
        parts = message.split(b"\0")
        if len(parts) != 3:
            raise SaslFailure("Invalid SASL/PLAIN response: expected 3 tokens")
        try:
            authzid, user, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            raise SaslFailure("Invalid SASL/PLAIN response: not UTF-8") from None
        if not user:
            raise SaslFailure("Authentication failed: username not specified")
        if not password:
            raise SaslFailure("Authentication failed: password not specified")
        if authzid and authzid != user:
            raise SaslFailure("Authentication failed: Client requested an authorization id that is different from username")
        expected = self.users.get(user)
        # Compared even for an unknown user, so the time taken does not tell.
        ok = hmac.compare_digest(password.encode(), (expected if expected is not None else "\0" + password).encode())
        if not ok or expected is None:
            raise SaslFailure("Authentication failed: Invalid username or password")
        self.user = user
        self.complete = True
        return b""


class _Scram:
    """ScramExchange under the Exchange protocol."""

    def __init__(self, exchange: ScramExchange) -> None:
        self.exchange = exchange

    @property
    def user(self) -> str:
        """The user name of the principal: a delegation token's owner (``User:`` dropped)
        when the token authenticated."""
        owner = self.exchange.token_owner
        return owner.partition(":")[2] if owner else self.exchange.user

    @property
    def token_authenticated(self) -> bool:
        return bool(self.exchange.token_owner)

    @property
    def complete(self) -> bool:
        from kbroker.security.scram import State as ScramState

        return self.exchange.state is ScramState.DONE

    def step(self, message: bytes) -> bytes:
        try:
            return self.exchange.step(message)
        except ScramError as exc:
            raise SaslFailure(str(exc)) from None


class _OAuth:
    """OAuthBearerExchange under the Exchange protocol."""

    def __init__(self, get: Any, jwks: Any = None) -> None:
        from kbroker.security.oauthbearer import OAuthBearerExchange

        self.exchange = OAuthBearerExchange(get, jwks)

    @property
    def user(self) -> str:
        return self.exchange.user

    @property
    def complete(self) -> bool:
        return self.exchange.complete

    def step(self, message: bytes) -> bytes:
        from kbroker.security.oauthbearer import OAuthFailure

        try:
            return self.exchange.step(message)
        except OAuthFailure as exc:
            raise SaslFailure(str(exc)) from None


class SaslListener:
    """A SASL listener's settings, read once at start-up."""

    def __init__(self, broker: Broker, listener: ServedListener, mechanisms: tuple[str, ...], plain_users: dict[str, str], config: BrokerConfig) -> None:
        def get(name: str) -> str | None:
            return config.listener_property(listener.name, name)

        self.broker = broker
        self.listener = listener
        self._get = get
        self.mechanisms = mechanisms
        self.plain_users = plain_users
        self.max_receive_bytes = int(get("sasl.server.max.receive.size") or "524288")
        self.failed_delay_s = int(get("connection.failed.authentication.delay.ms") or "0") / 1000
        self.reauth_ms = int(get("connections.max.reauth.ms") or "0")
        self.exact_nonce = (get("kbroker.sasl.scram.exact.nonce") or "false").lower() == "true"
        self.jwks = _jwks_keys(config, listener) if "OAUTHBEARER" in mechanisms and get("sasl.oauthbearer.jwks.endpoint.url") else None

    def authenticator(self, conn: KafkaConnection) -> Authenticator:
        auth = Authenticator(self, conn)
        conn.session.sasl = auth
        return auth

    def exchange(self, mechanism: str) -> Exchange:
        if mechanism == "PLAIN":
            return PlainExchange(self.plain_users)
        if mechanism == "OAUTHBEARER":
            return _OAuth(self._get, self.jwks)
        store: ScramStore = self.broker.scram_credentials
        tokens = self.broker.delegation_tokens

        def token_lookup(token_id: str, scram_mechanism: str) -> Any:
            return tokens.scram_credential(token_id, scram_mechanism, int(time.time() * 1000)) if tokens.enabled else None

        return _Scram(ScramExchange(mechanism, store, exact_nonce=self.exact_nonce, token_lookup=token_lookup))


class Authenticator:
    """One connection's SASL state; see the module docstring for the table."""

    __slots__ = ("sasl", "conn", "state", "close_after_write", "close_delay_s", "mechanism", "_exchange", "_expires_at", "_principal")

    def __init__(self, sasl: SaslListener, conn: KafkaConnection) -> None:
        self.sasl = sasl
        self.conn = conn
        self.state = State.HANDSHAKE_OR_VERSIONS
        self.close_after_write = False
        # After a failed authentication the answer goes out at once and the connection
        # closes this much later (connection.failed.authentication.delay.ms, as Kafka).
        self.close_delay_s = sasl.failed_delay_s
        self.mechanism = ""
        self._exchange: Exchange | None = None
        self._expires_at: float | None = None  # monotonic; None: no re-authentication
        self._principal = ""

    async def handle(self, frame: bytes | bytearray) -> bytes | bytearray | None:
        """Answer one frame of a connection whose authentication is pending (or, with
        re-authentication, whose session may expire)."""
        if self.state is State.LEGACY_TOKEN:
            return await self._legacy_token(bytes(frame))
        try:
            api_key, _version, _correlation_id = peek_request_header(frame)
        except DecodeError:
            raise CloseConnection("not a Kafka request during SASL authentication (GSSAPI is not served)") from None
        if self.state is State.AUTHENTICATED:
            if self._expires_at is not None and api_key not in REAUTH_KEYS and time.monotonic() >= self._expires_at:
                raise CloseConnection("the SASL session expired and the client did not re-authenticate")
        elif api_key not in ALLOWED[self.state]:
            name = ApiKey(api_key).name if api_key in ApiKey._value2member_map_ else str(api_key)
            if self.state is State.AUTHENTICATE:
                # Kafka answers this one with the request's own error response
                # (ILLEGAL_SASL_STATE), then closes as after a failed authentication.
                logger.info("%s: unexpected %s request during SASL authentication, closing", self.conn.peer, name)
                self._fail()
                answer = illegal_state_answer(frame, f"Unexpected Kafka request of type {name} during SASL authentication.")
                if answer is not None:
                    return answer
            raise CloseConnection(f"unexpected {name} request in SASL state {self.state.value}")
        conn = self.conn
        answer = await conn.broker.dispatch(frame, conn.peer, conn.session)
        if api_key == ApiKey.API_VERSIONS and self.state is State.HANDSHAKE_OR_VERSIONS:
            self.state = State.HANDSHAKE
        return answer

    # -- called by the SaslHandshake / SaslAuthenticate handlers ---------------------------

    def handshake(self, mechanism: str, version: int) -> tuple[ErrorCode, list[str]]:
        enabled = list(self.sasl.mechanisms)
        if self.state is State.AUTHENTICATED:
            if self._expires_at is None or version < 1:
                return ErrorCode.ILLEGAL_SASL_STATE, enabled
            if mechanism != self.mechanism:  # re-authentication keeps the mechanism (KIP-368)
                self._fail()
                return ErrorCode.UNSUPPORTED_SASL_MECHANISM, enabled
        elif self.state not in (State.HANDSHAKE_OR_VERSIONS, State.HANDSHAKE):
            self._fail()
            return ErrorCode.ILLEGAL_SASL_STATE, enabled
        if mechanism not in self.sasl.mechanisms:
            logger.info("%s: SASL mechanism %r is not enabled on listener %s", self.conn.peer, mechanism, self.sasl.listener.name)
            self._fail()
            return ErrorCode.UNSUPPORTED_SASL_MECHANISM, enabled
        self.mechanism = mechanism
        self._exchange = self.sasl.exchange(mechanism)
        if version == 0:
            self.state = State.LEGACY_TOKEN
            self.conn.expect_raw_tokens()
        else:
            self.state = State.AUTHENTICATE
        return ErrorCode.NONE, enabled

    async def authenticate(self, token: bytes, version: int) -> tuple[ErrorCode, str | None, bytes, int]:
        """(error, message, server token, session lifetime ms) for one SaslAuthenticate."""
        if self.state is not State.AUTHENTICATE:
            if self.state is State.AUTHENTICATED:
                return ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate request received after successful authentication", b"", 0
            self._fail()
            return ErrorCode.ILLEGAL_SASL_STATE, f"Unexpected SaslAuthenticate in SASL state {self.state.value}", b"", 0
        try:
            answer = self._step(token)
        except SaslFailure as exc:
            return ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc), b"", 0
        done = self._exchange is None  # _step drops the exchange when it completes
        lifetime = self._lifetime_ms() if done and version >= 1 else 0
        return ErrorCode.NONE, None, answer, lifetime

    # -- internals -------------------------------------------------------------------------

    def _fail(self) -> None:
        self.state = State.FAILED
        self.close_after_write = True

    def _step(self, token: bytes) -> bytes:
        exchange = self._exchange
        assert exchange is not None
        try:
            answer = exchange.step(token)
        except SaslFailure as exc:
            logger.info(
                "%s: SASL %s authentication failed on listener %s: %s", self.conn.peer, self.mechanism, self.sasl.listener.name, exc
            )
            self.conn.broker.stats.authenticated(self.sasl.listener.name, False)
            self._fail()
            raise
        if exchange.complete:
            principal = "User:" + exchange.user
            if self._principal and principal != self._principal:
                self.conn.broker.stats.authenticated(self.sasl.listener.name, False)
                self._fail()
                raise SaslFailure("Cannot change principals during re-authentication")
            self.conn.broker.stats.authenticated(self.sasl.listener.name, True)
            self._principal = principal
            self.conn.session.principal = principal
            self.conn.session.token_authenticated = bool(getattr(exchange, "token_authenticated", False))
            self.state = State.AUTHENTICATED
            self._exchange = None
            if self.sasl.reauth_ms > 0:
                self._expires_at = time.monotonic() + self.sasl.reauth_ms / 1000
                self.conn.authenticated(keep_gate=True)
            else:
                self.conn.authenticated()
        return answer

    def _lifetime_ms(self) -> int:
        return self.sasl.reauth_ms if self._expires_at is not None else 0

    async def _legacy_token(self, token: bytes) -> bytes:
        """SaslHandshake v0's exchange: raw tokens each way, no Kafka header."""
        try:
            answer = self._step(token)
        except SaslFailure:
            await asyncio.sleep(self.sasl.failed_delay_s)
            raise CloseConnection("SASL authentication failed (legacy exchange)") from None
        return _SIZE.pack(len(answer)) + answer


def illegal_state_answer(frame: bytes | bytearray, message: str) -> bytes | bytearray | None:
    """The answer to ``frame`` with ILLEGAL_SASL_STATE in its top-level error fields (a
    SaslHandshake's lists no mechanism); None if the request's response has no top-level
    error code in that version (Kafka would set per-item errors), or its version or body is not one kbroker reads (the connection just closes)."""
    from kbroker.errors import fill_error
    from kbroker.registry import load_handler
    from kbroker.wire.codec import decode_from
    from kbroker.wire.headers import decode_request_header, encode_response

    try:
        api_key, version, correlation_id = peek_request_header(frame)
        handler = load_handler(api_key)
        if handler is None or not handler.min_version <= version <= handler.max_version:
            return None
        _header, offset = decode_request_header(frame)
        decode_from(handler.request_cls, version, memoryview(frame), offset)  # Kafka parses it first
    except (DecodeError, ValueError):
        return None
    response = handler.response_cls()
    fields = {f.name for f in response.SCHEMA if f.in_version(version)}
    if "error_code" not in fields or not fill_error(response, ErrorCode.ILLEGAL_SASL_STATE, message):
        return None
    if hasattr(response, "mechanisms"):
        response.mechanisms = []
    return encode_response(correlation_id, api_key, version, response)


def _jwks_keys(config: BrokerConfig, listener: ServedListener) -> Any:
    """The listener's JWKS for signed OAUTHBEARER tokens, read now (ConfigError if it cannot
    be).  An https: endpoint is trusted by the system's CAs, or by the PEM file named
    ``ssl.truststore.location`` in the listener's ``oauthbearer.sasl.jaas.config`` options
    (Kafka reads the endpoint's TLS settings from those options too)."""
    import ssl

    from kbroker.security.jwks import JwksError, JwksKeys

    def get(name: str) -> str:
        value = config.listener_property(listener.name, name)
        assert value is not None  # every one has a default in the config table
        return value

    url = get("sasl.oauthbearer.jwks.endpoint.url")
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context()
        jaas_name = f"listener.name.{listener.name.lower()}.oauthbearer.sasl.jaas.config"
        jaas = config.properties.get(jaas_name)
        if jaas:
            try:
                _module, options = parse_jaas(jaas)
            except ValueError as exc:
                raise ConfigError(f"{jaas_name}: {exc}") from None
            if options.get("ssl.truststore.location"):
                try:
                    context = ssl.create_default_context(cafile=options["ssl.truststore.location"])
                except (OSError, ssl.SSLError) as exc:
                    raise ConfigError(f"{jaas_name}: ssl.truststore.location: {exc}") from None
    keys = JwksKeys(
        url,
        int(get("sasl.oauthbearer.jwks.endpoint.refresh.ms")),
        int(get("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms")),
        int(get("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms")),
        context,
    )
    try:
        keys.load()
    except JwksError as exc:
        raise ConfigError(f"listener {listener.name}: sasl.oauthbearer.jwks.endpoint.url: {exc}") from None
    return keys


def _plain_users(config: BrokerConfig, listener: ServedListener) -> dict[str, str]:
    name = f"listener.name.{listener.name.lower()}.plain.sasl.jaas.config"
    text = config.properties.get(name)
    if not text:
        raise ConfigError(f"listener {listener.name}: PLAIN is enabled but {name} is not set (its user_<name>=\"<password>\" options are the users)")
    try:
        module, options = parse_jaas(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
    if not module.endswith("PlainLoginModule"):
        raise ConfigError(f"{name}: expected org.apache.kafka.common.security.plain.PlainLoginModule, got {module}")
    return {key[len("user_") :]: value for key, value in options.items() if key.startswith("user_")}


def build_sasl_listener(config: BrokerConfig, listener: ServedListener, broker: Any) -> SaslListener:
    """The SASL settings of ``listener``; ConfigError when they are not usable."""
    text = config.listener_property(listener.name, "sasl.enabled.mechanisms") or ""
    wanted = [m.strip().upper() for m in text.split(",") if m.strip()]
    unsupported = [m for m in wanted if m not in SUPPORTED_MECHANISMS]
    mechanisms = tuple(m for m in wanted if m in SUPPORTED_MECHANISMS)
    if not mechanisms:
        raise ConfigError(
            f"listener {listener.name}: sasl.enabled.mechanisms is {text or 'empty'}; kbroker serves "
            f"{', '.join(SUPPORTED_MECHANISMS)} (GSSAPI, Kafka's default, is not served)"
        )
    if unsupported:
        logger.warning("listener %s: SASL mechanisms %s are not served, ignored", listener.name, ", ".join(unsupported))
    # Every <mechanism>.sasl.jaas.config must at least parse (SCRAM's carry no options kbroker needs).
    prefix = f"listener.name.{listener.name.lower()}."
    for name, value in config.properties.items():
        if name.startswith(prefix) and name.endswith(".sasl.jaas.config"):
            try:
                parse_jaas(value)
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
    plain_users = _plain_users(config, listener) if "PLAIN" in mechanisms else {}
    return SaslListener(broker, listener, mechanisms, plain_users, config)
