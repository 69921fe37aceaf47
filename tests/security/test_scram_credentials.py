"""SCRAM credentials: DescribeUserScramCredentials / AlterUserScramCredentials, the store in
the data dir, --add-scram, the JAAS syntax."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from broker_harness import RawClient
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.alter_user_scram_credentials_request import (
    AlterUserScramCredentialsRequest,
    ScramCredentialDeletion,
    ScramCredentialUpsertion,
)
from kbroker.wire.messages.describe_user_scram_credentials_request import (
    DescribeUserScramCredentialsRequest,
    UserName,
)
from test_sasl import SASL_SETTINGS, sasl_client, scram_login

from kbroker.security.jaas import parse_jaas
from kbroker.security.scram import STORE_FILE, ScramCredential, parse_add_scram
from kbroker.testing import BrokerThread

SHA256, SHA512 = 1, 2


def upsertion(name: str, password: str, mechanism: int = SHA256, iterations: int = 4096, salt: bytes = b"0123456789abcdef") -> ScramCredentialUpsertion:
    digest = "sha256" if mechanism == SHA256 else "sha512"
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, iterations)
    return ScramCredentialUpsertion(name=name, mechanism=mechanism, iterations=iterations, salt=salt, salted_password=salted)


def test_alter_then_login_then_describe_then_delete_durably(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", SASL_SETTINGS, listen="")
    bt.start()
    try:
        admin = RawClient(bt.address)  # the PLAINTEXT listener
        answer = admin.request(
            AlterUserScramCredentialsRequest(upsertions=[upsertion("bob", "bob-pw"), upsertion("bob", "bob-pw", SHA512, 8192)]), 0
        )
        assert [(r.user, r.error_code) for r in answer.results] == [("bob", 0)]
        client = sasl_client(bt)
        assert scram_login(client, "SCRAM-SHA-512", "bob", "bob-pw") == (0, None, True)
        client.close()
        described = admin.request(DescribeUserScramCredentialsRequest(users=None), 0)
        assert [(r.user, r.error_code, [(c.mechanism, c.iterations) for c in r.credential_infos]) for r in described.results] == [
            ("bob", 0, [(SHA256, 4096), (SHA512, 8192)])
        ]
        stored = (tmp_path / "data" / STORE_FILE).read_text()
        assert "bob-pw" not in stored and "salted" not in stored
        bt.restart()
        admin.close()
        admin = RawClient(bt.address)
        client = sasl_client(bt)
        assert scram_login(client, "SCRAM-SHA-256", "bob", "bob-pw") == (0, None, True)
        client.close()
        answer = admin.request(AlterUserScramCredentialsRequest(deletions=[ScramCredentialDeletion(name="bob", mechanism=SHA256)]), 0)
        assert answer.results[0].error_code == 0
        bt.restart()
        admin.close()
        admin = RawClient(bt.address)
        described = admin.request(DescribeUserScramCredentialsRequest(users=[UserName(name="bob")]), 0)
        assert [(c.mechanism, c.iterations) for c in described.results[0].credential_infos] == [(SHA512, 8192)]
        admin.close()
    finally:
        bt.close()


def test_alter_errors_are_per_user_and_leave_that_user_unchanged(tmp_path: Path) -> None:
    bt = BrokerThread(tmp_path / "data", SASL_SETTINGS, listen="")
    bt.start()
    try:
        admin = RawClient(bt.address)
        request = AlterUserScramCredentialsRequest(
            deletions=[ScramCredentialDeletion(name="ghost", mechanism=SHA256)],
            upsertions=[
                upsertion("few", "x", iterations=1000),
                upsertion("many", "x", iterations=20000),
                upsertion("", "x"),
                ScramCredentialUpsertion(name="mech", mechanism=9, iterations=4096, salt=b"s", salted_password=b"p"),
                upsertion("twice", "x"),
                upsertion("twice", "y"),
                ScramCredentialUpsertion(name="short", mechanism=SHA256, iterations=4096, salt=b"s", salted_password=b"p"),
                upsertion("ok", "x"),
            ],
        )
        results = {r.user: (r.error_code, r.error_message) for r in admin.request(request, 0).results}
        assert results == {
            "ghost": (ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"),
            "few": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations: 1000 < 4096"),
            "many": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations: 20000 > 16384"),
            "": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"),
            "mech": (ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism 9"),
            "twice": (ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request"),
            "short": (ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salted password has the wrong length for the mechanism"),
            "ok": (0, None),
        }
        described = admin.request(DescribeUserScramCredentialsRequest(users=[UserName(name="ok"), UserName(name="twice"), UserName(name="ok")]), 0)
        assert {r.user: r.error_code for r in described.results} == {"ok": ErrorCode.DUPLICATE_RESOURCE, "twice": ErrorCode.RESOURCE_NOT_FOUND}
        admin.close()
    finally:
        bt.close()


def test_add_scram_syntax() -> None:
    mechanism, user, credential = parse_add_scram("SCRAM-SHA-256=[name=alice,password=alice-secret]")
    assert (mechanism, user, credential.iterations) == ("SCRAM-SHA-256", "alice", 4096)
    again = ScramCredential.from_password("SCRAM-SHA-256", "alice-secret", 4096, credential.salt)
    assert again == credential
    salted = hashlib.pbkdf2_hmac("sha512", b"pw", b"salt", 8192)
    import base64

    text = f'SCRAM-SHA-512=[name=bob,iterations=8192,salt="{base64.b64encode(b"salt").decode()}",saltedpassword="{base64.b64encode(salted).decode()}"]'
    mechanism, user, credential = parse_add_scram(text)
    assert credential == ScramCredential.from_password("SCRAM-SHA-512", "pw", 8192, b"salt")
    for bad in ("SCRAM-SHA-1=[name=a,password=b]", "SCRAM-SHA-256=[password=b]", "SCRAM-SHA-256=[name=a,password=b,iterations=10]", "SCRAM-SHA-256=[name=a,colour=red]"):
        with pytest.raises(ValueError, match="--add-scram"):
            parse_add_scram(bad)


def test_add_scram_flag_seeds_the_store(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "-m", "kbroker", "--data-dir", str(data), "--listen", "127.0.0.1:0", "--add-scram", "SCRAM-SHA-256=[name=a,password=b,iterations=99]"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2 and "Too few iterations: 99 < 4096" in proc.stderr
    assert not (data / STORE_FILE).exists()


def test_jaas_syntax() -> None:
    module, options = parse_jaas(
        'org.apache.kafka.common.security.plain.PlainLoginModule required\n  username="admin" password="a\\"b" user_x=bare;'
    )
    assert module.endswith("PlainLoginModule")
    assert options == {"username": "admin", "password": 'a"b', "user_x": "bare"}
    assert parse_jaas("org.apache.kafka.common.security.scram.ScramLoginModule required;")[1] == {}
    for bad in ("X required a=\"b\"", "X required; Y required;", "X maybe;", "X required a=;"):
        with pytest.raises(ValueError, match="sasl.jaas.config"):
            parse_jaas(bad)


def test_store_file_holds_no_password_and_is_private(tmp_path: Path) -> None:
    from kbroker.security.scram import ScramStore

    store = ScramStore(tmp_path)
    store.upsert("u", "SCRAM-SHA-256", ScramCredential.from_password("SCRAM-SHA-256", "top-secret"))
    store.save()
    path = tmp_path / STORE_FILE
    assert path.stat().st_mode & 0o077 == 0
    assert set(json.loads(path.read_text())["u"]["SCRAM-SHA-256"]) == {"salt", "stored_key", "server_key", "iterations"}


def test_credentials_apis_need_cluster_acls_when_an_authorizer_is_on(tmp_path: Path) -> None:
    """As Kafka: DescribeUserScramCredentials needs DESCRIBE on the cluster (top-level
    CLUSTER_AUTHORIZATION_FAILED), AlterUserScramCredentials ALTER (per user)."""
    settings = {
        **SASL_SETTINGS,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
    }
    bt = BrokerThread(tmp_path / "data", settings, listen="")
    bt.start()
    try:
        anonymous = RawClient(bt.address)  # User:ANONYMOUS on the PLAINTEXT listener, no ACLs
        altered = anonymous.request(AlterUserScramCredentialsRequest(upsertions=[upsertion("eve", "eve-pw")]), 0)
        assert [(r.user, r.error_code) for r in altered.results] == [("eve", ErrorCode.CLUSTER_AUTHORIZATION_FAILED)]
        described = anonymous.request(DescribeUserScramCredentialsRequest(users=None), 0)
        assert described.error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED and described.results == []
        anonymous.close()
        assert bt.broker is not None and bt.broker.scram_credentials.get("eve", "SCRAM-SHA-256") is None
    finally:
        bt.close()
