"""``kbroker acl ...`` and ``kbroker user ...`` against a live kbroker with Kafka's
StandardAuthorizer: ACLs created, listed (table and ``--json``) and deleted; a SCRAM user made
by the CLI logs in with confluent-kafka over SASL_PLAINTEXT, produces under an ACL the CLI
granted, and no longer logs in once the CLI deleted it.

The CLI itself talks PLAINTEXT, where it is User:ANONYMOUS, a super user here.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import admin_cli as cli
import pytest
from acl_helpers import STANDARD_AUTHORIZER
from broker_process import KBROKER_READY, TARGET, BrokerProcess, _free_port
from helpers import unique_topic

pytestmark = [
    pytest.mark.compat,
    pytest.mark.timeout(180),
    pytest.mark.skipif(TARGET != "kbroker", reason="needs kbroker's authorizer and SASL listener settings"),
]

# How long confluent-kafka may take to authenticate, produce, or give up.
CLIENT_TIMEOUT_S = 30.0


class ScramAclBroker(BrokerProcess):
    """PLAINTEXT (the readiness line's port; the CLI's) plus SASL_PLAINTEXT with both SCRAM
    mechanisms, StandardAuthorizer, User:ANONYMOUS a super user."""

    def __init__(self, tmp_path: Path) -> None:
        self.sasl_port = _free_port()
        settings = {
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{self.sasl_port}",
            "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
            "authorizer.class.name": STANDARD_AUTHORIZER,
            "super.users": "User:ANONYMOUS",
        }
        super().__init__(tmp_path / "data", tmp_path / "broker.log", settings)

    def _command(self) -> tuple[list[str], object]:  # type: ignore[override]
        cmd = [sys.executable, "-m", "kbroker", "--data-dir", str(self.data_dir)]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd, KBROKER_READY

    @property
    def sasl_bootstrap(self) -> str:
        return f"127.0.0.1:{self.sasl_port}"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[ScramAclBroker]:
    broker = ScramAclBroker(tmp_path)
    broker.start()
    try:
        yield broker
    finally:
        broker.cleanup()


def _key(acl: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(acl.items())


def test_acl_create_list_delete(secured: ScramAclBroker) -> None:
    b = secured.bootstrap
    topic = unique_topic("cli-acl")
    assert cli.as_json(b, "acl", "list") == []

    created = cli.as_json(
        b, "acl", "create", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "describe",
        "--topic", topic,
    )
    expected = [
        {"resource_type": "TOPIC", "resource_name": topic, "pattern_type": "LITERAL", "principal": "User:alice",
         "host": "*", "operation": op, "permission": "ALLOW"}
        for op in ("READ", "DESCRIBE")
    ]
    assert created == [{**e, "error": None} for e in expected]
    cli.run(b, "acl", "create", "--deny-principal", "User:mallory", "--operation", "WRITE", "--group", "g-",
            "--resource-pattern-type", "prefixed")

    header_words = ["RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN-TYPE", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]
    header, *rows = cli.text(b, "acl", "list", "--topic", topic).splitlines()
    assert header.split() == header_words
    assert sorted(r.split() for r in rows) == sorted(
        ["TOPIC", topic, "LITERAL", "User:alice", "*", op, "ALLOW"] for op in ("READ", "DESCRIBE")
    )
    every = cli.as_json(b, "acl", "list")
    assert sorted(every, key=_key) == sorted([*expected, {
        "resource_type": "GROUP", "resource_name": "g-", "pattern_type": "PREFIXED", "principal": "User:mallory",
        "host": "*", "operation": "WRITE", "permission": "DENY"}], key=_key)
    assert cli.as_json(b, "acl", "list", "--principal", "User:mallory", "--group", "g-", "--resource-pattern-type", "prefixed")[0]["permission"] == "DENY"
    assert cli.as_json(b, "acl", "list", "--principal", "User:nobody") == []

    deleted_text = cli.text(b, "acl", "delete", "--topic", topic, "--operation", "read")
    header, *rows = deleted_text.splitlines()
    assert header.split()[0] == "DELETED" and [r.split() for r in rows] == [["TOPIC", topic, "LITERAL", "User:alice", "*", "READ", "ALLOW"]]
    assert cli.as_json(b, "acl", "delete", "--topic", topic) == [{**expected[1], "error": None}]
    assert cli.as_json(b, "acl", "list", "--topic", topic) == []
    assert cli.text(b, "acl", "list", "--topic", topic).split() == header_words
    cli.run(b, "acl", "delete", "--group", "g-", "--resource-pattern-type", "prefixed")
    assert cli.as_json(b, "acl", "list") == []


def test_acl_refusals_are_one_line(secured: ScramAclBroker) -> None:
    b = secured.bootstrap
    line = cli.one_line_error(cli.run(b, "acl", "create", "--allow-principal", "alice", "--operation", "READ", "--topic", "t", check=False), 2)
    assert "TYPE:NAME" in line
    line = cli.one_line_error(cli.run(b, "acl", "create", "--allow-principal", "User:a", "--operation", "READ", check=False), 2)
    assert "--topic" in line


def _confluent_conf(broker: ScramAclBroker, mechanism: str, user: str, password: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": broker.sasl_bootstrap, "security.protocol": "SASL_PLAINTEXT", "broker.address.family": "v4",
        "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password,
    }


def _produce(conf: dict[str, Any], topic: str, value: bytes) -> list[Any]:
    """Produce one record and wait for its delivery report; the delivery errors (empty on success)."""
    from confluent_kafka import Producer

    errors: list[Any] = []
    producer = Producer({**conf, "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000)})
    producer.produce(topic, value, on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert producer.flush(CLIENT_TIMEOUT_S + 5) == 0
    return errors


def _authentication_error(conf: dict[str, Any]) -> str:
    """The text of the authentication error confluent-kafka reports for ``conf`` ('' if none
    within CLIENT_TIMEOUT_S)."""
    from confluent_kafka import KafkaError, Producer

    errors: list[Any] = []
    producer = Producer({**conf, "error_cb": errors.append, "log_level": 0})
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.monotonic() < deadline:
        producer.poll(0.2)
    auth = [e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION]
    return auth[0] if auth else ""


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_user_create_login_delete(secured: ScramAclBroker, mechanism: str) -> None:
    b = secured.bootstrap
    name, password = f"u{uuid.uuid4().hex[:8]}", "s3cret-pw"
    assert cli.as_json(b, "user", "list") == []
    assert cli.text(b, "user", "list").split() == ["USER", "MECHANISM", "ITERATIONS"]

    made = cli.as_json(b, "user", "create", name, "--password", password, "--mechanism", mechanism, "--iterations", "8192")
    assert made == {"name": name, "mechanism": mechanism, "iterations": 8192, "error": None}
    assert cli.as_json(b, "user", "list") == [{"name": name, "credentials": [{"mechanism": mechanism, "iterations": 8192}]}]
    header, row = cli.text(b, "user", "list", name).splitlines()
    assert header.split() == ["USER", "MECHANISM", "ITERATIONS"] and row.split() == [name, mechanism, "8192"]

    # The credential works: the user logs in over SASL and produces under an ACL the CLI grants.
    topic = unique_topic("cli-scram")
    cli.run(b, "topic", "create", topic, "-p", "1")
    cli.run(b, "acl", "create", "--allow-principal", f"User:{name}", "--operation", "WRITE", "--operation", "DESCRIBE", "--topic", topic)
    assert _produce(_confluent_conf(secured, mechanism, name, password), topic, b"hello") == []
    assert cli.as_json(b, "topic", "describe", topic)[0]["partitions"][0]["high_watermark"] == 1
    assert "Invalid user credentials" in _authentication_error(_confluent_conf(secured, mechanism, name, "wrong-pw"))

    gone = cli.as_json(b, "user", "delete", name)
    assert gone == {"name": name, "mechanisms": [mechanism], "error": None}
    assert cli.as_json(b, "user", "list") == []
    assert "Invalid user credentials" in _authentication_error(_confluent_conf(secured, mechanism, name, password))
    line = cli.one_line_error(cli.run(b, "user", "delete", name, check=False))
    assert "RESOURCE_NOT_FOUND" in line and repr(name) in line


def test_without_an_authorizer_acl_verbs_fail_in_one_line(broker) -> None:  # type: ignore[no-untyped-def]
    """A broker with no authorizer answers SECURITY_DISABLED, as Kafka; the CLI says so."""
    b = broker.bootstrap
    assert "SECURITY_DISABLED" in cli.one_line_error(cli.run(b, "acl", "list", check=False))
    line = cli.one_line_error(cli.run(b, "acl", "create", "--allow-principal", "User:a", "--operation", "READ", "--topic", "t", check=False))
    assert "SECURITY_DISABLED" in line and "User:a READ on TOPIC 't'" in line


def test_user_refusals_are_one_line(broker) -> None:  # type: ignore[no-untyped-def]
    b = broker.bootstrap
    line = cli.one_line_error(cli.run(b, "user", "create", "carol", "--password", "pw", "--iterations", "100000", check=False))
    assert "user 'carol'" in line and "Too many iterations" in line
    assert "RESOURCE_NOT_FOUND" in cli.one_line_error(cli.run(b, "user", "delete", "carol", "--mechanism", "SCRAM-SHA-512", check=False))
    assert "RESOURCE_NOT_FOUND" in cli.one_line_error(cli.run(b, "user", "list", "carol", check=False))
