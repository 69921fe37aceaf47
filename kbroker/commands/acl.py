"""``kbroker acl list|create|delete``: Kafka ACLs over DescribeAcls, CreateAcls, DeleteAcls.

Options are named as kafka-acls.sh names them (``--topic``, ``--group``, ``--cluster``,
``--transactional-id``, ``--allow-principal``, ``--deny-principal``, ``--operation``,
``--resource-pattern-type``); operations are accepted in Kafka's spellings (``Read``,
``DescribeConfigs``, ``IDEMPOTENT_WRITE``, ``idempotent-write``).  The codes are Kafka's, from
kbroker.acl.model.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kbroker.acl.model import (
    CLUSTER_NAME,
    WILDCARD,
    AclBinding,
    AclFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)
from kbroker.client.client import Client
from kbroker.client.connection import KafkaError
from kbroker.commands.output import UsageError, emit_json, table

# Operations a user may name (UNKNOWN and ANY are filter-only codes).
OPERATIONS = tuple(op.name for op in AclOperation if op not in (AclOperation.UNKNOWN, AclOperation.ANY))
# --resource-pattern-type values: create takes a concrete type, list/delete also filter types.
CREATE_PATTERN_TYPES = ("literal", "prefixed")
FILTER_PATTERN_TYPES = ("any", "match", "literal", "prefixed")
HEADERS = ["RESOURCE-TYPE", "RESOURCE-NAME", "PATTERN-TYPE", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]


def parse_operation(text: str) -> int:
    """``Read`` / ``DESCRIBE_CONFIGS`` / ``describe-configs`` / ``DescribeConfigs`` -> the code."""
    squashed = text.replace("-", "").replace("_", "").upper()
    for name in OPERATIONS:
        if name.replace("_", "") == squashed:
            return int(AclOperation[name])
    raise UsageError(f"--operation: unknown operation {text!r} (known: {', '.join(OPERATIONS)})")


def check_principal(text: str) -> str:
    """A principal is TYPE:NAME (``User:alice``), as Kafka parses it."""
    kind, sep, name = text.partition(":")
    if not sep or not kind or not name:
        raise UsageError(f"a principal is TYPE:NAME such as User:alice, got {text!r}")
    return text


def resource_of(args: argparse.Namespace) -> tuple[int, str | None]:
    """The resource the options name: (ResourceType code, name); (ANY, None) for none."""
    if args.topic is not None:
        return ResourceType.TOPIC, args.topic
    if args.group is not None:
        return ResourceType.GROUP, args.group
    if args.transactional_id is not None:
        return ResourceType.TRANSACTIONAL_ID, args.transactional_id
    if args.cluster:
        return ResourceType.CLUSTER, CLUSTER_NAME
    return ResourceType.ANY, None


def acl_filter(args: argparse.Namespace) -> AclFilter:
    """The DescribeAcls/DeleteAcls filter of ``acl list`` / ``acl delete``'s options.

    Without a resource every pattern type matches; with one, ``--resource-pattern-type``
    (default literal, as kafka-acls.sh) says how its name is compared.
    """
    resource_type, name = resource_of(args)
    if args.resource_pattern_type is not None:
        pattern = PatternType[args.resource_pattern_type.upper()]
    else:
        pattern = PatternType.ANY if name is None else PatternType.LITERAL
    permission = PermissionType[args.permission.upper()] if args.permission else PermissionType.ANY
    operation = parse_operation(args.operation) if args.operation else AclOperation.ANY
    principal = check_principal(args.principal) if args.principal is not None else None
    return AclFilter(int(resource_type), name, int(pattern), principal, args.host, int(operation), int(permission))


def bindings_to_create(args: argparse.Namespace) -> list[AclBinding]:
    """Every (principal, operation) pair of ``acl create``'s options, as bindings."""
    if not args.allow_principal and not args.deny_principal:
        raise UsageError("acl create needs --allow-principal or --deny-principal")
    resource_type, name = resource_of(args)
    if name is None:
        raise UsageError("acl create needs one of --topic, --group, --cluster, --transactional-id")
    pattern = PatternType[(args.resource_pattern_type or "literal").upper()]
    operations = sorted({parse_operation(op) for op in args.operation})
    entries = [(check_principal(p), PermissionType.ALLOW) for p in args.allow_principal]
    entries += [(check_principal(p), PermissionType.DENY) for p in args.deny_principal]
    return [
        AclBinding(int(resource_type), name, int(pattern), principal, args.host, op, int(permission))
        for principal, permission in entries
        for op in operations
    ]


def _name(enum: Any, code: int) -> str:
    try:
        return str(enum(code).name)
    except ValueError:
        return str(code)


def acl_json(acl: AclBinding) -> dict[str, Any]:
    """The ``--json`` shape of one ACL (Kafka's enum names)."""
    return {
        "resource_type": _name(ResourceType, acl.resource_type),
        "resource_name": acl.resource_name,
        "pattern_type": _name(PatternType, acl.pattern_type),
        "principal": acl.principal,
        "host": acl.host,
        "operation": _name(AclOperation, acl.operation),
        "permission": _name(PermissionType, acl.permission_type),
    }


def _rows(acls: list[dict[str, Any]]) -> list[list[object]]:
    return [[a["resource_type"], a["resource_name"], a["pattern_type"], a["principal"], a["host"], a["operation"], a["permission"]]
            for a in acls]


def _fail(errors: list[str]) -> int:
    for message in errors:
        print(f"kbroker: error: {message}", file=sys.stderr, flush=True)
    return 1 if errors else 0


def list_acls(args: argparse.Namespace) -> int:
    f = acl_filter(args)
    with Client(args.bootstrap, args.timeout) as client:
        found = [acl_json(a) for a in client.describe_acls(f)]
    if args.json:
        emit_json(found)
    else:  # the header alone when nothing matches, as topic list
        sys.stdout.write(table(HEADERS, _rows(found)))
    return 0


def create_acls(args: argparse.Namespace) -> int:
    acls = bindings_to_create(args)
    with Client(args.bootstrap, args.timeout) as client:
        answers = client.create_acls(acls)
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for acl, (code, message) in zip(acls, answers, strict=True):
        error = None
        if code:
            what = f"ACL {acl.principal} {_name(AclOperation, acl.operation)} on {_name(ResourceType, acl.resource_type)} {acl.resource_name!r}"
            error = str(KafkaError(what, code, message))
            errors.append(error)
        results.append({**acl_json(acl), "error": error})
    if args.json:
        emit_json(results)
    else:
        ok = [r for r in results if r["error"] is None]
        if ok:
            sys.stdout.write(table(["CREATED", *HEADERS[1:]], _rows(ok)))  # the first column: the resource type
    return _fail(errors)


def delete_acls(args: argparse.Namespace) -> int:
    f = acl_filter(args)
    with Client(args.bootstrap, args.timeout) as client:
        matched = client.delete_acls(f)
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    for acl, code, message in sorted(matched, key=lambda m: m[0].sort_key()):
        error = None
        if code:
            error = str(KafkaError(f"ACL {acl.principal} on {acl.resource_name!r}", code, message))
            errors.append(error)
        results.append({**acl_json(acl), "error": error})
    if args.json:
        emit_json(results)
    else:
        ok = [r for r in results if r["error"] is None]
        if ok:
            sys.stdout.write(table(["DELETED", *HEADERS[1:]], _rows(ok)))  # the first column: the resource type
    return _fail(errors)


def add_arguments(p: argparse.ArgumentParser, *, create: bool, need_resource: bool) -> None:
    """The resource and entry options shared by the acl actions (``delete`` needs a resource
    too, as kafka-acls.sh's --remove: no option deletes every ACL by accident)."""
    resource = p.add_mutually_exclusive_group(required=need_resource)
    resource.add_argument("--topic", metavar="TOPIC", help="a topic (or a prefix, with --resource-pattern-type prefixed; * for every topic)")
    resource.add_argument("--group", metavar="GROUP", help="a consumer group")
    resource.add_argument("--cluster", action="store_true", help="the cluster")
    resource.add_argument("--transactional-id", metavar="ID", help="a transactional id")
    choices = CREATE_PATTERN_TYPES if create else FILTER_PATTERN_TYPES
    p.add_argument(
        "--resource-pattern-type", choices=choices, type=str.lower, metavar="TYPE",
        help=f"{'|'.join(choices)} (default literal"
        + (")" if create else "; with no resource option, any: every ACL)"),
    )
    if create:
        p.add_argument("--allow-principal", action="append", default=[], metavar="TYPE:NAME", help="e.g. User:alice (repeatable)")
        p.add_argument("--deny-principal", action="append", default=[], metavar="TYPE:NAME", help="e.g. User:mallory (repeatable)")
        p.add_argument(
            "--operation", action="append", required=True, metavar="OP",
            help=f"one of {', '.join(OPERATIONS)} (repeatable; Kafka's spellings such as Read, DescribeConfigs work too)",
        )
        p.add_argument("--host", default=WILDCARD, metavar="HOST", help=f"the client host the ACL is for (default {WILDCARD}: any)")
    else:
        p.add_argument("--principal", metavar="TYPE:NAME", help="only ACLs of this principal (exact, e.g. User:alice)")
        p.add_argument("--operation", metavar="OP", help="only ACLs of this operation")
        p.add_argument("--permission", choices=("allow", "deny"), type=str.lower, help="only ALLOW or DENY ACLs")
        p.add_argument("--host", metavar="HOST", help="only ACLs for this host (exact)")
