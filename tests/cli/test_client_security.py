"""The admin CLI's SASL and TLS settings (kbroker.client.security): the SCRAM client against
the broker's own SCRAM server (kbroker.security.scram), PLAIN's message, Kafka client
properties and the flags over them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kbroker.client.connection import ClientError
from kbroker.client.security import (
    PlainClient,
    ScramClient,
    SecurityConfig,
    from_properties,
    load_properties,
)
from kbroker.commands import build_parser, security_from_args
from kbroker.security.scram import ScramCredential, ScramError, ScramExchange, ScramStore


def _server(tmp_path: Path, mechanism: str, password: str) -> ScramExchange:
    store = ScramStore(tmp_path)
    store.upsert("al=ice,", mechanism, ScramCredential.from_password(mechanism, password))
    return ScramExchange(mechanism, store, exact_nonce=False)


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_client_logs_in_to_the_broker_side_and_checks_its_signature(tmp_path: Path, mechanism: str) -> None:
    server = _server(tmp_path, mechanism, "pw")
    client = ScramClient(mechanism, "al=ice,", "pw")
    assert client.first().startswith(b"n,,n=al=3Dice=2C,r=")  # RFC 5802 saslname escapes
    final = client.step(server.step(client.first()))
    assert final is not None
    assert client.step(server.step(final)) is None and client.done
    assert server.user == "al=ice,"


def test_scram_client_refuses_a_forged_server_final_and_a_wrong_password_is_refused(tmp_path: Path) -> None:
    server = _server(tmp_path, "SCRAM-SHA-256", "pw")
    client = ScramClient("SCRAM-SHA-256", "al=ice,", "pw")
    client.step(server.step(client.first()))
    forged = b"v=" + base64.b64encode(b"\0" * 32)
    with pytest.raises(ClientError, match="signature does not match"):
        client.step(forged)
    assert not client.done

    server = _server(tmp_path / "2", "SCRAM-SHA-256", "pw")
    wrong = ScramClient("SCRAM-SHA-256", "al=ice,", "not-pw")
    final = wrong.step(server.step(wrong.first()))
    assert final is not None
    with pytest.raises(ScramError):
        server.step(final)


def test_scram_client_refuses_a_server_nonce_not_extending_its_own_and_huge_iterations() -> None:
    client = ScramClient("SCRAM-SHA-256", "u", "pw", nonce="abc")
    with pytest.raises(ClientError, match="malformed"):
        client.step(b"r=zzz,s=c2FsdA==,i=4096")
    with pytest.raises(ClientError, match="iterations"):
        ScramClient("SCRAM-SHA-256", "u", "pw", nonce="abc").step(b"r=abcdef,s=c2FsdA==,i=999999999")


def test_plain_message() -> None:
    assert PlainClient("admin", "s3cret").first() == b"\0admin\0s3cret"


def test_properties_file_with_jaas_and_flags_over_it(tmp_path: Path) -> None:
    props = tmp_path / "c.properties"
    props.write_text(
        "security.protocol=sasl_ssl\nsasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="a\\\\"b";\n'
        "ssl.truststore.location=/ca.pem\nssl.truststore.type=PEM\nssl.endpoint.identification.algorithm=\n"
    )
    cfg = from_properties(load_properties(str(props)))
    assert (cfg.protocol, cfg.mechanism, cfg.username, cfg.password, cfg.cafile, cfg.check_hostname) == (
        "SASL_SSL", "SCRAM-SHA-512", "alice", 'a"b', "/ca.pem", False,
    )
    args = build_parser().parse_args(["topic", "list", "--command-config", str(props), "--sasl-username", "bob", "--sasl-mechanism", "plain"])
    cfg = security_from_args(args)
    assert (cfg.protocol, cfg.mechanism, cfg.username, cfg.password) == ("SASL_SSL", "PLAIN", "bob", 'a"b')


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"ssl.truststore.type": "JKS"}, "PEM files only"),
        ({"security.protocol": "SASL_SSL"}, "needs a user name and password"),
        ({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI", "sasl.username": "u", "sasl.password": "p"}, "sasl.mechanism"),
        ({"security.protocol": "TLS"}, "security.protocol"),
        ({"sasl.jaas.config": "Module required username=x"}, "must end with ';'"),
    ],
)
def test_bad_settings_are_one_message(props: dict[str, str], message: str) -> None:
    with pytest.raises(ClientError, match=message):
        from_properties(props).validate()


def test_missing_command_config_file(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="--command-config"):
        load_properties(str(tmp_path / "nope.properties"))
    assert SecurityConfig().validate().protocol == "PLAINTEXT"
