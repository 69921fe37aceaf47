"""``kbroker user list|create|delete``: SCRAM credentials over DescribeUserScramCredentials
and AlterUserScramCredentials (KIP-554).

The password never travels: ``user create`` draws a random salt and computes the salted
password (PBKDF2-HMAC with the mechanism's hash, RFC 5802's Hi()) here, and sends only the
salt, the iteration count and the salted password, as Kafka's own admin client does.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys
from typing import Any

from kbroker.client.client import Client
from kbroker.client.connection import KafkaError
from kbroker.commands.output import UsageError, emit_json, table
from kbroker.security.scram import DEFAULT_ITERATIONS, MECHANISM_NAMES, MECHANISMS, SALT_BYTES

DEFAULT_MECHANISM = "SCRAM-SHA-256"


def mechanism_code(name: str) -> int:
    entry = MECHANISMS.get(name.upper())
    if entry is None:
        raise UsageError(f"--mechanism: {name!r} is not one of {', '.join(MECHANISMS)}")
    return entry[0]


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """SCRAM's SaltedPassword: Hi(password, salt, i) = PBKDF2-HMAC-H, one hash-length block."""
    return hashlib.pbkdf2_hmac(MECHANISMS[mechanism.upper()][1], password.encode("utf-8"), salt, iterations)


def mechanism_name(code: int) -> str:
    return MECHANISM_NAMES.get(code, f"UNKNOWN({code})")


def _fail(errors: list[str]) -> int:
    for message in errors:
        print(f"kbroker: error: {message}", file=sys.stderr, flush=True)
    return 1 if errors else 0


def list_users(args: argparse.Namespace) -> int:
    with Client(args.bootstrap, args.timeout) as client:
        results = client.describe_scram_users(args.names or None)
    users: list[dict[str, Any]] = []
    errors: list[str] = []
    for r in sorted(results, key=lambda r: r.user):
        if r.error_code:
            errors.append(str(KafkaError(f"user {r.user!r}", r.error_code, r.error_message)))
            continue
        creds = sorted(({"mechanism": mechanism_name(c.mechanism), "iterations": c.iterations} for c in r.credential_infos),
                       key=lambda c: str(c["mechanism"]))
        users.append({"name": r.user, "credentials": creds})
    if args.json:
        emit_json(users)
    else:  # the header alone when there are no users, as topic list
        sys.stdout.write(table(["USER", "MECHANISM", "ITERATIONS"],
                               [[u["name"], c["mechanism"], c["iterations"]] for u in users for c in u["credentials"]]))
    return _fail(errors)


def create_user(args: argparse.Namespace) -> int:
    mechanism = args.mechanism.upper()
    code = mechanism_code(mechanism)
    if not args.password:
        raise UsageError("user create needs a non-empty --password")
    if args.iterations <= 0:
        raise UsageError(f"--iterations must be positive, got {args.iterations}")
    salt = secrets.token_bytes(SALT_BYTES)
    salted = salted_password(mechanism, args.password, salt, args.iterations)
    with Client(args.bootstrap, args.timeout) as client:
        [result] = client.alter_scram_users([(args.name, code, args.iterations, salt, salted)], [])
    error = str(KafkaError(f"user {args.name!r}", result.error_code, result.error_message)) if result.error_code else None
    if args.json:
        emit_json({"name": args.name, "mechanism": mechanism, "iterations": args.iterations, "error": error})
    elif error is None:
        sys.stdout.write(table(["CREATED", "MECHANISM", "ITERATIONS"], [[args.name, mechanism, args.iterations]]))
    return _fail([error] if error else [])


def delete_user(args: argparse.Namespace) -> int:
    with Client(args.bootstrap, args.timeout) as client:
        if args.mechanism:
            mechanisms = [mechanism_code(args.mechanism)]
        else:  # every mechanism the user has
            [described] = client.describe_scram_users([args.name])
            if described.error_code:
                raise KafkaError(f"user {args.name!r}", described.error_code, described.error_message)
            mechanisms = sorted(c.mechanism for c in described.credential_infos)
        results = client.alter_scram_users([], [(args.name, m) for m in mechanisms]) if mechanisms else []
    # One result per user, not per deletion: its error is the first failure (Kafka's answer).
    error = None
    for r in results:
        if r.error_code:
            error = str(KafkaError(f"user {args.name!r}", r.error_code, r.error_message))
    names = [mechanism_name(m) for m in mechanisms]
    if args.json:
        emit_json({"name": args.name, "mechanisms": names, "error": error})
    elif error is None and names:
        sys.stdout.write(table(["DELETED", "MECHANISM"], [[args.name, n] for n in names]))
    return _fail([error] if error else [])


def add_create_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME")
    p.add_argument("--password", required=True, metavar="PW",
                   help="the password (visible to other local users in the process list; salted and hashed before it is sent)")
    p.add_argument("--mechanism", default=DEFAULT_MECHANISM, metavar="MECH", help=f"{' or '.join(MECHANISMS)} (default {DEFAULT_MECHANISM})")
    p.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS, metavar="N",
                   help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS}; Kafka accepts 4096-16384)")
