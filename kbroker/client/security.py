"""How the admin CLI secures its connections: TLS and SASL (PLAIN, SCRAM-SHA-256/512).

Settings come as Kafka's client properties, the file Kafka's tools take with
``--command-config`` (``security.protocol``, ``sasl.mechanism``, ``sasl.jaas.config`` or
``sasl.username``/``sasl.password``, ``ssl.truststore.location``/``type`` (PEM),
``ssl.keystore.location``/``type`` (PEM: key and certificate in one file), ``ssl.key.password``,
``ssl.endpoint.identification.algorithm``), or as flags that override the file.

Theory of operation
-------------------
A :class:`SecurityConfig` wraps each new socket in TLS for SSL and SASL_SSL (verifying the
broker against the truststore, or the system's CAs without one; the host name too unless
``ssl.endpoint.identification.algorithm`` is empty, as in Kafka), then, for SASL_PLAINTEXT
and SASL_SSL, the connection sends SaslHandshake (v1) naming the mechanism and one
SaslAuthenticate per client message of :class:`PlainClient` or :class:`ScramClient`
(RFC 5802 without channel binding, Kafka's way).  The SCRAM client checks the server's
signature before it counts the login as done.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from kbroker.client.connection import ClientError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_SCRAM_HASH = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# The client's SCRAM nonce, in random bytes (base64 in the message).
NONCE_BYTES = 24
# The most SCRAM iterations the client computes (a broker asking more is refused, not obeyed).
MAX_SCRAM_ITERATIONS = 1_000_000


@dataclass
class SecurityConfig:
    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None  # PEM, key included unless keyfile is given
    keyfile: str | None = None
    key_password: str | None = None
    check_hostname: bool = True

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def validate(self) -> SecurityConfig:
        if self.protocol not in PROTOCOLS:
            raise ClientError(f"security.protocol must be one of {', '.join(PROTOCOLS)}, not {self.protocol!r}")
        if self.sasl:
            if self.mechanism not in MECHANISMS:
                raise ClientError(f"sasl.mechanism must be one of {', '.join(MECHANISMS)}, not {self.mechanism!r}")
            if not self.username or self.password is None:
                raise ClientError(
                    f"{self.protocol} needs a user name and password (sasl.jaas.config, or --sasl-username/--sasl-password)"
                )
        return self

    def ssl_context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=self.cafile)
            ctx.check_hostname = self.check_hostname
            if self.certfile:
                ctx.load_cert_chain(self.certfile, self.keyfile, self.key_password)
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(f"TLS settings: {exc}") from None
        return ctx

    def mechanism_client(self) -> PlainClient | ScramClient:
        assert self.username is not None and self.password is not None
        if self.mechanism == "PLAIN":
            return PlainClient(self.username, self.password)
        return ScramClient(self.mechanism, self.username, self.password)


def from_properties(props: dict[str, str], base: SecurityConfig | None = None) -> SecurityConfig:
    """The security settings of Kafka client properties (unknown properties are ignored, as
    Kafka's tools ignore what does not concern them)."""
    from kbroker.security.jaas import parse_jaas

    cfg = base or SecurityConfig()
    if "security.protocol" in props:
        cfg.protocol = props["security.protocol"].strip().upper()
    if "sasl.mechanism" in props:
        cfg.mechanism = props["sasl.mechanism"].strip().upper()
    if "sasl.jaas.config" in props:
        try:
            _module, options = parse_jaas(props["sasl.jaas.config"])
        except ValueError as exc:
            raise ClientError(str(exc)) from None
        cfg.username = options.get("username", cfg.username)
        cfg.password = options.get("password", cfg.password)
    cfg.username = props.get("sasl.username", cfg.username)
    cfg.password = props.get("sasl.password", cfg.password)
    for key in ("ssl.truststore.type", "ssl.keystore.type"):
        if props.get(key, "PEM").upper() != "PEM":
            raise ClientError(f"{key}={props[key]}: this client reads PEM files only")
    cfg.cafile = props.get("ssl.truststore.location", cfg.cafile)
    cfg.certfile = props.get("ssl.keystore.location", cfg.certfile)
    cfg.key_password = props.get("ssl.key.password", cfg.key_password)
    if "ssl.endpoint.identification.algorithm" in props:
        cfg.check_hostname = props["ssl.endpoint.identification.algorithm"].strip().lower() == "https"
    return cfg


def load_properties(path: str) -> dict[str, str]:
    """A Java properties file (``--command-config``)."""
    import javaproperties

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ClientError(f"--command-config {path}: {exc.strerror or exc}") from None
    return dict(javaproperties.loads(text))


class PlainClient:
    """SASL PLAIN (RFC 4616): one message, no authorization id."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.done = False

    def first(self) -> bytes:
        return b"\0" + self.username.encode() + b"\0" + self.password.encode()

    def step(self, challenge: bytes) -> bytes | None:
        self.done = True
        return None


def _saslname(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


def _attrs(message: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out.setdefault(key, value)
    return out


class ScramClient:
    """SCRAM-SHA-256/512 (RFC 5802, gs2 header ``n,,``): client-first, client-final, then the
    server's signature is checked."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None) -> None:
        self.digest = _SCRAM_HASH[mechanism]
        self.password = password.encode()
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(NONCE_BYTES)).decode()
        self.client_first_bare = f"n={_saslname(username)},r={self.nonce}"
        self.server_signature = b""
        self.done = False

    def first(self) -> bytes:
        return ("n,," + self.client_first_bare).encode()

    def step(self, challenge: bytes) -> bytes | None:
        text = challenge.decode("utf-8", "replace")
        attrs = _attrs(text)
        if not self.server_signature:
            return self._final(text, attrs)
        if "e" in attrs:
            raise ClientError(f"SCRAM authentication failed: {attrs['e']}")
        given = base64.b64decode(attrs.get("v", ""))
        if not hmac.compare_digest(given, self.server_signature):
            raise ClientError("SCRAM authentication failed: the broker's signature does not match (wrong server or password)")
        self.done = True
        return None

    def _final(self, server_first: str, attrs: dict[str, str]) -> bytes:
        if "e" in attrs:
            raise ClientError(f"SCRAM authentication failed: {attrs['e']}")
        nonce, salt, iterations = attrs.get("r", ""), attrs.get("s"), attrs.get("i", "")
        if not nonce.startswith(self.nonce) or salt is None or not iterations.isdigit():
            raise ClientError("SCRAM authentication failed: malformed server-first message")
        count = int(iterations)
        if not 0 < count <= MAX_SCRAM_ITERATIONS:
            raise ClientError(f"SCRAM authentication failed: {count} iterations asked")
        salted = hashlib.pbkdf2_hmac(self.digest, self.password, base64.b64decode(salt), count)
        client_key = hmac.digest(salted, b"Client Key", self.digest)
        stored_key = hashlib.new(self.digest, client_key).digest()
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self.client_first_bare},{server_first},{without_proof}".encode()
        signature = hmac.digest(stored_key, auth_message, self.digest)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", self.digest)
        self.server_signature = hmac.digest(server_key, auth_message, self.digest)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
