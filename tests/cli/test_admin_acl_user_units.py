"""``kbroker acl`` / ``kbroker user``: option parsing into Kafka's ACL codes, the ``--json``
shape, the SCRAM salted password (RFC 7677's example), and usage errors on the command line."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, run_kbroker

from kbroker.acl.model import AclBinding, AclOperation, PatternType, PermissionType, ResourceType
from kbroker.commands import build_parser
from kbroker.commands.acl import acl_filter, acl_json, bindings_to_create, parse_operation
from kbroker.commands.output import UsageError
from kbroker.commands.user import mechanism_code, salted_password


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize("text", ["Read", "READ", "read", "DescribeConfigs", "describe-configs", "DESCRIBE_CONFIGS", "IdempotentWrite"])
def test_operations_in_kafkas_spellings(text: str) -> None:
    expected = {"read": AclOperation.READ, "describeconfigs": AclOperation.DESCRIBE_CONFIGS, "idempotentwrite": AclOperation.IDEMPOTENT_WRITE}
    assert parse_operation(text) == expected[text.replace("-", "").replace("_", "").lower()]


@pytest.mark.parametrize("text", ["reed", "any", "unknown", ""])
def test_unknown_or_filter_only_operations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="unknown operation"):
        parse_operation(text)


def test_list_without_options_matches_every_acl() -> None:
    f = acl_filter(_args("acl", "list"))
    assert (f.resource_type, f.resource_name, f.pattern_type, f.principal, f.host, f.operation, f.permission_type) == (
        ResourceType.ANY, None, PatternType.ANY, None, None, AclOperation.ANY, PermissionType.ANY
    )


def test_filter_with_a_resource_defaults_to_literal_like_kafka_acls() -> None:
    f = acl_filter(_args("acl", "delete", "--topic", "orders", "--principal", "User:alice"))
    assert (f.resource_type, f.resource_name, f.pattern_type, f.principal) == (ResourceType.TOPIC, "orders", PatternType.LITERAL, "User:alice")
    f = acl_filter(_args("acl", "list", "--cluster", "--resource-pattern-type", "MATCH", "--permission", "deny", "--operation", "alter"))
    assert (f.resource_type, f.resource_name, f.pattern_type, f.permission_type, f.operation) == (
        ResourceType.CLUSTER, "kafka-cluster", PatternType.MATCH, PermissionType.DENY, AclOperation.ALTER
    )
    f = acl_filter(_args("acl", "list", "--transactional-id", "tx"))
    assert (f.resource_type, f.resource_name) == (ResourceType.TRANSACTIONAL_ID, "tx")


def test_create_makes_one_binding_per_principal_and_operation() -> None:
    args = _args(
        "acl", "create", "--allow-principal", "User:a", "--deny-principal", "User:m", "--operation", "Read",
        "--operation", "WRITE", "--operation", "read", "--group", "g-", "--resource-pattern-type", "prefixed", "--host", "10.0.0.1",
    )
    got = {(b.principal, b.operation, b.permission_type) for b in bindings_to_create(args)}
    assert got == {
        ("User:a", AclOperation.READ, PermissionType.ALLOW), ("User:a", AclOperation.WRITE, PermissionType.ALLOW),
        ("User:m", AclOperation.READ, PermissionType.DENY), ("User:m", AclOperation.WRITE, PermissionType.DENY),
    }
    b = bindings_to_create(args)[0]
    assert (b.resource_type, b.resource_name, b.pattern_type, b.host) == (ResourceType.GROUP, "g-", PatternType.PREFIXED, "10.0.0.1")


def test_create_defaults_literal_and_any_host() -> None:
    [b] = bindings_to_create(_args("acl", "create", "--allow-principal", "User:a", "--operation", "all", "--cluster"))
    assert (b.resource_name, b.pattern_type, b.host, b.operation) == ("kafka-cluster", PatternType.LITERAL, "*", AclOperation.ALL)


@pytest.mark.parametrize(("argv", "fragment"), [
    (("--operation", "READ", "--topic", "t"), "--allow-principal or --deny-principal"),
    (("--allow-principal", "alice", "--operation", "READ", "--topic", "t"), "TYPE:NAME"),
    (("--allow-principal", "User:", "--operation", "READ", "--topic", "t"), "TYPE:NAME"),
])
def test_create_refuses_incomplete_entries(argv: tuple[str, ...], fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        bindings_to_create(_args("acl", "create", *argv))


def test_acl_json_shape_names_kafkas_enums() -> None:
    acl = AclBinding(ResourceType.TOPIC, "t", PatternType.PREFIXED, "User:a", "*", AclOperation.DESCRIBE_CONFIGS, PermissionType.DENY)
    assert acl_json(acl) == {
        "resource_type": "TOPIC", "resource_name": "t", "pattern_type": "PREFIXED", "principal": "User:a",
        "host": "*", "operation": "DESCRIBE_CONFIGS", "permission": "DENY",
    }
    assert acl_json(AclBinding(42, "t", 3, "User:a", "*", 3, 3))["resource_type"] == "42"  # a code we do not know


def test_usage_errors_of_acl_on_the_command_line(tmp_path: Path) -> None:
    proc = run_kbroker("acl", "create", "--allow-principal", "User:a", "--operation", "READ", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "one of the arguments --topic --group --cluster --transactional-id is required")
    proc = run_kbroker("acl", "create", "--allow-principal", "User:a", "--operation", "READ", "--topic", "t", "--cluster", cwd=tmp_path)
    assert_one_line_error(proc, 2, "not allowed with argument")
    proc = run_kbroker("acl", "create", "--allow-principal", "User:a", "--operation", "READ", "--topic", "t",
                       "--resource-pattern-type", "any", cwd=tmp_path)
    assert_one_line_error(proc, 2, "invalid choice")
    proc = run_kbroker("acl", "delete", "--principal", "User:a", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "one of the arguments --topic --group --cluster --transactional-id is required")
    proc = run_kbroker("acl", "list", "--operation", "nope", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "unknown operation 'nope'")


def test_salted_password_is_rfc_5802_hi_checked_by_rfc_7677s_proof() -> None:
    # RFC 7677 section 3: user "user", password "pencil"; the client proof it shows is derived
    # from SaltedPassword, so matching it checks the salted password the CLI sends.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    salted = salted_password("SCRAM-SHA-256", "pencil", salt, 4096)
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    assert len(salted_password("scram-sha-512", "pencil", salt, 4096)) == 64  # one SHA-512 block


def test_mechanism_codes_are_kafkas() -> None:
    assert (mechanism_code("SCRAM-SHA-256"), mechanism_code("scram-sha-512")) == (1, 2)
    with pytest.raises(UsageError, match="SCRAM-SHA-256, SCRAM-SHA-512"):
        mechanism_code("PLAIN")


def test_user_parser_and_usage_errors(tmp_path: Path) -> None:
    args = _args("user", "create", "alice", "--password", "pw", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192", "--json")
    assert (args.name, args.password, args.mechanism, args.iterations, args.json) == ("alice", "pw", "SCRAM-SHA-512", 8192, True)
    args = _args("user", "create", "bob", "--password", "pw")
    assert (args.mechanism, args.iterations) == ("SCRAM-SHA-256", 4096)
    assert _args("user", "list").names == [] and _args("user", "delete", "bob").mechanism is None
    proc = run_kbroker("user", "create", "alice", "--password", "pw", "--mechanism", "MD5", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "--mechanism: 'MD5'")
    proc = run_kbroker("user", "create", "alice", "--bootstrap", "127.0.0.1:1", cwd=tmp_path)
    assert_one_line_error(proc, 2, "--password")


def test_help_says_how_to_connect_securely(tmp_path: Path) -> None:
    for verb in ("acl", "user"):
        proc = run_kbroker(verb, "--help", cwd=tmp_path)
        assert proc.returncode == 0 and "PLAINTEXT (as User:ANONYMOUS) unless --command-config" in " ".join(proc.stdout.split())
    proc = run_kbroker("acl", "list", "--help", cwd=tmp_path)
    assert all(flag in proc.stdout for flag in ("--command-config", "--security-protocol", "--sasl-mechanism", "--ssl-cafile"))
