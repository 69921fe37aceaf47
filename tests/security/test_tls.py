"""TLS listeners: keystores and truststores in every form Kafka takes, client auth, the
mTLS principal and its mapping rules, protocol and suite restrictions."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from broker_harness import RawClient
from cryptography import x509
from cryptography.x509.oid import NameOID
from kbroker.wire.messages.metadata_request import MetadataRequest
from security_harness import client_context

from kbroker.security.devcerts import Pki, make_pki
from kbroker.security.principal import NoMatchingRule, PrincipalMapper, rfc2253_name
from kbroker.security.tls import openssl_cipher_name
from kbroker.startup import StartupError
from kbroker.testing import BrokerThread

ALICE_DN = "CN=alice,OU=clients,O=kbroker tests,C=US"


def ssl_settings(pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(pki.ca_cert),
        **extra,
    }


class TlsBroker:
    def __init__(self, tmp_path: Path, settings: dict[str, str]) -> None:
        self.bt = BrokerThread(tmp_path / "data", settings, listen="")

    def __enter__(self) -> TlsBroker:
        self.bt.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bt.close()

    def connect(self, context: ssl.SSLContext) -> RawClient:
        client = RawClient(self.bt.address)
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        return client

    def principals(self) -> list[str]:
        async def read() -> list[str]:
            assert self.bt.broker is not None
            return sorted(c.session.principal for c in self.bt.broker._connections)

        return list(self.bt.call(read()))


def metadata_ok(client: RawClient) -> bool:
    return len(client.request(MetadataRequest(topics=[]), 12).brokers) == 1


def test_pem_keystore_file_without_client_auth_is_anonymous(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki)) as broker:
        client = broker.connect(client_context(pki))
        assert metadata_ok(client)
        assert broker.principals() == ["User:ANONYMOUS"]
        client.close()


def test_client_certificate_gives_the_rfc2253_principal(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki, **{"ssl.client.auth": "required"})) as broker:
        client = broker.connect(client_context(pki, "alice"))
        assert metadata_ok(client)
        assert broker.principals() == [f"User:{ALICE_DN}"]
        client.close()


def test_required_client_auth_refuses_a_client_without_certificate(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki, **{"ssl.client.auth": "required"})) as broker:
        # TLS 1.3: the server checks the certificate after the client's handshake ends, so
        # the refusal arrives as an alert on the first read.
        try:
            client = broker.connect(client_context(pki))
            client.request(MetadataRequest(topics=[]), 12, expect_response=False)
            refused = client.recv_frame() is None
        except (ssl.SSLError, ConnectionError):
            refused = True
        assert refused
        assert broker.principals() == []


def test_requested_client_auth_accepts_both(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki, **{"ssl.client.auth": "requested"})) as broker:
        with_cert, without = broker.connect(client_context(pki, "bob")), broker.connect(client_context(pki))
        assert metadata_ok(with_cert) and metadata_ok(without)
        assert broker.principals() == ["User:ANONYMOUS", "User:CN=bob,OU=clients,O=kbroker tests,C=US"]
        with_cert.close()
        without.close()


def test_principal_mapping_rules_apply_per_listener(tmp_path: Path, pki: Pki) -> None:
    settings = ssl_settings(
        pki,
        **{
            "ssl.client.auth": "required",
            "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=([a-z]+),OU=clients,.*$/$1/U,DEFAULT",
        },
    )
    with TlsBroker(tmp_path, settings) as broker:
        client = broker.connect(client_context(pki, "alice"))
        assert metadata_ok(client)
        assert broker.principals() == ["User:ALICE"]
        client.close()


def test_inline_encrypted_pkcs8_key_and_chain(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", key_password="k-secret")
    settings = {
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.key": pki.server_key.read_text(),
        "ssl.keystore.certificate.chain": pki.server_cert.read_text(),
        "ssl.key.password": "k-secret",
    }
    assert "ENCRYPTED PRIVATE KEY" in settings["ssl.keystore.key"]
    with TlsBroker(tmp_path, settings) as broker:
        client = broker.connect(client_context(pki))
        assert metadata_ok(client)
        client.close()


def test_wrong_key_password_is_a_one_line_startup_error(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", key_password="k-secret")
    settings = {
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(pki.server_keystore),
        "ssl.key.password": "wrong",
    }
    bt = BrokerThread(tmp_path / "data", settings, listen="")
    try:
        with pytest.raises(StartupError, match="listener SSL: cannot read the keystore's private key"):
            bt.start()
    finally:
        bt.close()


def test_pkcs1_rsa_key_and_pkcs12_stores(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", rsa_server=True, pkcs12_password="p12-secret")
    assert "BEGIN RSA PRIVATE KEY" in pki.server_key.read_text()
    pem = {"listeners": "SSL://127.0.0.1:0", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.server_keystore)}
    with TlsBroker(tmp_path, pem) as broker:
        client = broker.connect(client_context(pki))
        assert metadata_ok(client)
        client.close()
    p12 = {
        "listeners": "SSL://127.0.0.1:0",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki.directory / "server.p12"),
        "ssl.keystore.password": "p12-secret",
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(pki.directory / "truststore.p12"),
        "ssl.truststore.password": "p12-secret",
        "ssl.client.auth": "required",
    }
    with TlsBroker(tmp_path, p12) as broker:
        client = broker.connect(client_context(pki, "alice"))
        assert metadata_ok(client)
        assert broker.principals() == [f"User:{ALICE_DN}"]
        client.close()


def test_jks_is_refused_with_the_conversion_hint(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", {"listeners": "SSL://127.0.0.1:0", "ssl.keystore.location": "/nonexistent.jks"}, listen="")
    try:
        with pytest.raises(StartupError, match="ssl.keystore.type is JKS: .*keytool -importkeystore"):
            bt.start()
    finally:
        bt.close()


def test_enabled_protocols_refuse_an_older_client(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki, **{"ssl.enabled.protocols": "TLSv1.3"})) as broker:
        old = client_context(pki)
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            broker.connect(old)
        new = broker.connect(client_context(pki))
        assert new.sock.version() == "TLSv1.3"  # type: ignore[attr-defined]
        new.close()


def test_cipher_suites_take_kafka_names(tmp_path: Path, pki: Pki) -> None:
    assert openssl_cipher_name("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") == "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert openssl_cipher_name("TLS_RSA_WITH_AES_256_CBC_SHA") == "AES256-SHA"
    assert openssl_cipher_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") == "ECDHE-RSA-CHACHA20-POLY1305"
    settings = ssl_settings(
        pki, **{"ssl.enabled.protocols": "TLSv1.2", "ssl.cipher.suites": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"}
    )
    with TlsBroker(tmp_path, settings) as broker:
        client = broker.connect(client_context(pki))
        assert client.sock.cipher()[0] == "ECDHE-ECDSA-AES256-GCM-SHA384"  # type: ignore[attr-defined]
        client.close()


def test_tls_garbage_closes_only_that_connection(tmp_path: Path, pki: Pki) -> None:
    with TlsBroker(tmp_path, ssl_settings(pki)) as broker:
        good = broker.connect(client_context(pki))
        bad = socket.create_connection(broker.bt.address, timeout=10)
        bad.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello" * 10)
        assert bad.recv(4096) is not None  # an alert or the end, never a hang
        bad.close()
        assert metadata_ok(good)
        good.close()


def test_rfc2253_names_as_java_writes_them() -> None:
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        x509.NameAttribute(NameOID.EMAIL_ADDRESS, "a@b"),
        x509.NameAttribute(NameOID.COMMON_NAME, "#alice"),
    ])
    assert rfc2253_name(name) == "CN=\\#alice,1.2.840.113549.1.9.1=#1603614062,O=Acme\\, Inc.,C=US"


def test_mapping_rules_syntax() -> None:
    mapper = PrincipalMapper(
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=.*$/$1@$2/L, DEFAULT"
    )
    assert mapper.principal_name("CN=svc,OU=ServiceUsers,O=x") == "svc"
    assert mapper.principal_name("CN=Bob,OU=Eng,O=x") == "bob@eng"
    assert mapper.principal_name("O=only") == "O=only"
    with pytest.raises(NoMatchingRule):
        PrincipalMapper("RULE:^CN=x$/y/").principal_name("CN=z")
    with pytest.raises(ValueError, match="cannot parse"):
        PrincipalMapper("RULE:broken")
