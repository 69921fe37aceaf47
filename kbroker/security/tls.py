"""TLS for SSL and SASL_SSL listeners: Kafka's ``ssl.*`` properties made into an ``ssl.SSLContext``.

Theory of operation
-------------------
Each TLS listener gets one server context at start-up (:func:`server_context`), built from
the listener's properties (``listener.name.<l>.ssl.*`` over ``ssl.*``).  asyncio's
``create_server(ssl=context)`` then does the handshake before the connection's protocol
sees a byte, so :mod:`kbroker.connection` receives plaintext Kafka frames exactly as on a
PLAINTEXT listener.

Keystore (the broker's key and certificate chain), by ``ssl.keystore.type``:

- ``PEM``: ``ssl.keystore.location`` names a file holding the private key and the chain,
  or the key and chain are inline in ``ssl.keystore.key`` / ``ssl.keystore.certificate.chain``.
  The key may be PKCS#8 (``BEGIN PRIVATE KEY``), encrypted PKCS#8 (``BEGIN ENCRYPTED PRIVATE
  KEY``, password ``ssl.key.password``) or PKCS#1 (``BEGIN RSA PRIVATE KEY``);
- ``PKCS12``: ``ssl.keystore.location`` with ``ssl.keystore.password`` (read by the
  ``cryptography`` library);
- ``JKS`` (Kafka's default) is refused with the keytool command that converts it.

Python's ``ssl`` loads a key and chain only from a file, so the key is decrypted with
``cryptography``, re-encrypted with a random one-time password into a private temporary
file, loaded, and the file removed at once: no unencrypted key ever touches the disk.

Truststore (the CAs client certificates must chain to): ``ssl.truststore.type`` PEM
(``ssl.truststore.location`` or inline ``ssl.truststore.certificates``) or PKCS12; given to
the context in memory.  ``ssl.client.auth``: ``none`` (no certificate asked), ``requested``
(asked, optional), ``required``.  ``ssl.enabled.protocols`` bounds the TLS versions
(TLSv1.2, TLSv1.3).  ``ssl.cipher.suites`` takes Kafka's (IANA) names, e.g.
``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256``, or OpenSSL's; it restricts the TLS 1.2 suites
(Python's ``ssl`` cannot restrict TLS 1.3's, which are all strong).
"""

from __future__ import annotations

import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from kbroker.config import ConfigError

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_PEM_KEY = re.compile(rb"-----BEGIN (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----.+?-----END (?:ENCRYPTED |RSA |EC )?PRIVATE KEY-----", re.S)
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_JKS_HINT = "kbroker reads PEM and PKCS12 stores (convert: keytool -importkeystore -deststoretype PKCS12)"

Getter = Callable[[str], "str | None"]


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def _password(value: str | None) -> bytes | None:
    return value.encode("utf-8") if value else None


def _keystore(get: Getter) -> tuple[bytes, list[x509.Certificate]]:
    """The private key (PEM, still as given) and the certificate chain of the keystore."""
    kind = (get("ssl.keystore.type") or "JKS").upper()
    location, inline_key = get("ssl.keystore.location"), get("ssl.keystore.key")
    if not location and not inline_key:
        raise ConfigError("a TLS listener needs ssl.keystore.location or ssl.keystore.key")
    if kind == "JKS":
        raise ConfigError(f"ssl.keystore.type is JKS: {_JKS_HINT}")
    if kind == "PKCS12":
        if not location:
            raise ConfigError("ssl.keystore.location is required for a PKCS12 keystore")
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(_read(location, "ssl.keystore.location"), _password(get("ssl.keystore.password")))
        except ValueError as exc:
            raise ConfigError(f"ssl.keystore.location {location}: cannot read the PKCS12 keystore ({exc})") from None
        if key is None or cert is None:
            raise ConfigError(f"ssl.keystore.location {location}: the PKCS12 keystore has no private key entry")
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return pem, [cert, *extra]
    if inline_key:
        key_pem, chain_pem = inline_key.encode(), (get("ssl.keystore.certificate.chain") or "").encode()
        where = "ssl.keystore.key"
    else:
        key_pem = chain_pem = _read(location or "", "ssl.keystore.location")
        where = f"ssl.keystore.location {location}"
    key_match = _PEM_KEY.search(key_pem)
    certs = [x509.load_pem_x509_certificate(m.group(0)) for m in _PEM_CERT.finditer(chain_pem)]
    if key_match is None:
        raise ConfigError(f"{where}: no PEM private key found")
    if not certs:
        raise ConfigError(f"{where}: no PEM certificate chain found")
    return key_match.group(0), certs


def _load_key_and_chain(context: ssl.SSLContext, get: Getter) -> None:
    key_pem, chain = _keystore(get)
    try:
        key = serialization.load_pem_private_key(key_pem, _password(get("ssl.key.password")))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read the keystore's private key (check ssl.key.password): {exc}") from None
    one_time = secrets.token_hex(16).encode()
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(one_time)
    )
    chain_pem = b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in chain)
    with tempfile.TemporaryDirectory(prefix="kbroker-tls-") as tmp:
        path = os.path.join(tmp, "keystore.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(encrypted + chain_pem)
        try:
            context.load_cert_chain(path, password=one_time)
        except ssl.SSLError as exc:
            raise ConfigError(f"the keystore's key does not match its certificate: {exc.reason}") from None


def _truststore(get: Getter) -> str | None:
    """The trusted CA certificates as PEM text, or None when no truststore is set."""
    kind = (get("ssl.truststore.type") or "JKS").upper()
    location, inline = get("ssl.truststore.location"), get("ssl.truststore.certificates")
    if not location and not inline:
        return None
    if kind == "JKS":
        raise ConfigError(f"ssl.truststore.type is JKS: {_JKS_HINT}")
    if kind == "PKCS12":
        if not location:
            raise ConfigError("ssl.truststore.location is required for a PKCS12 truststore")
        try:
            _key, cert, extra = pkcs12.load_key_and_certificates(_read(location, "ssl.truststore.location"), _password(get("ssl.truststore.password")))
        except ValueError as exc:
            raise ConfigError(f"ssl.truststore.location {location}: cannot read the PKCS12 truststore ({exc})") from None
        certs = ([cert] if cert is not None else []) + list(extra)
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)
    data = inline.encode() if inline else _read(location or "", "ssl.truststore.location")
    found = [m.group(0).decode() for m in _PEM_CERT.finditer(data)]
    if not found:
        raise ConfigError("the PEM truststore holds no certificate")
    return "\n".join(found) + "\n"


def openssl_cipher_name(name: str) -> str:
    """Kafka's (IANA) TLS 1.2 suite name as OpenSSL spells it; OpenSSL names pass through.

    ``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`` -> ``ECDHE-RSA-AES128-GCM-SHA256``,
    ``TLS_RSA_WITH_AES_256_CBC_SHA`` -> ``AES256-SHA``."""
    if not name.startswith("TLS_") or "_WITH_" not in name:
        return name
    kx, _, cipher = name[4:].partition("_WITH_")
    cipher = re.sub(r"^AES_(\d+)_", r"AES\1_", cipher).replace("_CBC", "").replace("_POLY1305_SHA256", "_POLY1305")
    parts = ([] if kx == "RSA" else kx.split("_")) + cipher.split("_")
    return "-".join(parts)


def server_context(get: Getter) -> ssl.SSLContext:
    """The server-side context of one TLS listener; ConfigError (one line) when a store
    cannot be read or a value is not usable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [v.strip() for v in (get("ssl.enabled.protocols") or "TLSv1.2,TLSv1.3").split(",") if v.strip()]
    unknown = [v for v in versions if v not in _VERSIONS]
    if unknown or not versions:
        raise ConfigError(f"ssl.enabled.protocols: kbroker serves TLSv1.2 and TLSv1.3, got {','.join(versions) or 'nothing'}")
    context.minimum_version = min(_VERSIONS[v] for v in versions)
    context.maximum_version = max(_VERSIONS[v] for v in versions)
    suites = [s.strip() for s in (get("ssl.cipher.suites") or "").split(",") if s.strip()]
    tls12 = [openssl_cipher_name(s) for s in suites if not re.fullmatch(r"TLS_(AES|CHACHA20)_\w+", s)]
    if tls12:
        try:
            context.set_ciphers(":".join(tls12))
        except ssl.SSLError:
            raise ConfigError(f"ssl.cipher.suites: no suite OpenSSL knows in {','.join(suites)}") from None
    _load_key_and_chain(context, get)
    client_auth = (get("ssl.client.auth") or "none").lower()
    context.verify_mode = _CLIENT_AUTH[client_auth]
    if client_auth != "none":
        cadata = _truststore(get)
        if cadata is None:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        else:
            context.load_verify_locations(cadata=cadata)
    return context
