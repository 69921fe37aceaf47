"""Certificates for tests and local development, made on the spot with ``cryptography``.

:func:`make_pki` writes a throw-away CA, a server certificate for ``localhost`` /
``127.0.0.1`` / ``::1`` and client certificates into a directory, as PEM (and PKCS12 on
request), so no private key is ever committed.  Keys are EC P-256: fast to make and to use.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 2


@dataclass
class Pki:
    """Paths of the files :func:`make_pki` wrote."""

    directory: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # name -> (cert, key)

    @property
    def server_keystore(self) -> Path:
        """Key then chain in one PEM file (ssl.keystore.type=PEM, ssl.keystore.location)."""
        return self.directory / "server-keystore.pem"


def _name(common_name: str, unit: str = "kbroker") -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kbroker tests"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _issue(subject: x509.Name, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, *, ca: bool = False, server: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        # Key identifiers: Python 3.13's default contexts verify with VERIFY_X509_STRICT,
        # which refuses certificates without an Authority Key Identifier.
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1")),
            ]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, fmt: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, fmt, encryption)


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_pki(directory: Path, clients: tuple[str, ...] = ("alice",), *, key_password: str | None = None, rsa_server: bool = False, pkcs12_password: str | None = None) -> Pki:
    """A CA, a server certificate (key: PKCS#8, encrypted with ``key_password`` if given;
    PKCS#1 RSA when ``rsa_server``) and one client certificate per name (CN=name,
    OU=clients).  With ``pkcs12_password``, also ``server.p12`` and ``truststore.p12``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kbroker test CA")
    ca = _issue(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_server else ec.generate_private_key(ec.SECP256R1())
    )
    server = _issue(_name("localhost", "brokers"), server_key, ca_name, ca_key, server=True)
    pki = Pki(directory, directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    pki.ca_cert.write_bytes(_pem_cert(ca))
    pki.server_cert.write_bytes(_pem_cert(server) + _pem_cert(ca))
    fmt = serialization.PrivateFormat.TraditionalOpenSSL if rsa_server else serialization.PrivateFormat.PKCS8
    key_pem = _pem_key(server_key, fmt, key_password.encode() if key_password else None)
    pki.server_key.write_bytes(key_pem)
    pki.server_keystore.write_bytes(key_pem + _pem_cert(server) + _pem_cert(ca))
    for name in clients:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(_name(name, "clients"), key, ca_name, ca_key)
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert_path.write_bytes(_pem_cert(cert))
        key_path.write_bytes(_pem_key(key))
        pki.clients[name] = (cert_path, key_path)
    if pkcs12_password:
        encryption = serialization.BestAvailableEncryption(pkcs12_password.encode())
        (directory / "server.p12").write_bytes(pkcs12.serialize_key_and_certificates(b"server", server_key, server, [ca], encryption))
        (directory / "truststore.p12").write_bytes(pkcs12.serialize_key_and_certificates(None, None, None, [ca], encryption))
    return pki
