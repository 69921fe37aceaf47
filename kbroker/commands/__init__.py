"""The admin verbs of the ``kbroker`` command: ``topic``, ``group``, ``produce``, ``consume``,
``acl``, ``user``.

``kbroker VERB ...`` runs a verb; any other first argument (or none) starts the broker, as
always (kbroker.cli).  In the spirit of rpk: names are positional and options follow the
verb (``kbroker topic create orders --partitions 6``).  Every verb talks the Kafka protocol to
``--bootstrap HOST:PORT`` (default 127.0.0.1:9092, or ``KBROKER_BOOTSTRAP``) through
``kbroker.client``, so it works against any Kafka broker.  It connects over PLAINTEXT unless
told otherwise: ``--command-config FILE`` (Kafka's client properties, as Kafka's tools take
them) and the ``--security-protocol``/``--sasl-*``/``--ssl-*`` flags choose SSL, SASL_PLAINTEXT
or SASL_SSL with PLAIN or SCRAM-SHA-256/512 (kbroker.client.security).

Output: human tables on stdout, or ``--json`` (shapes in the README's "Admin CLI" section).
Errors: one line ``kbroker: error: ...`` on stderr; exit 1 for what the cluster refused or
could not be reached, 2 for a usage mistake.  Progress of long operations goes to stderr
while it is a terminal.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

from kbroker.client.connection import DEFAULT_TIMEOUT_S, ClientError
from kbroker.commands.output import FORMAT_TOKENS, UsageError

if TYPE_CHECKING:
    from kbroker.client.security import SecurityConfig

VERBS = ("topic", "group", "produce", "consume", "acl", "user")
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BOOTSTRAP_ENV = "KBROKER_BOOTSTRAP"
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130

PLAINTEXT_ONLY = (
    "The client connects over PLAINTEXT (as User:ANONYMOUS) unless --command-config or the "
    "--security-protocol/--sasl-*/--ssl-* options say otherwise."
)

Handler = Callable[[argparse.Namespace], int]


def error(message: str) -> None:
    print(f"kbroker: error: {message}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, as the broker's own usage errors
        error(f"{message} (see {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def _common(p: argparse.ArgumentParser, *, json_output: bool = True) -> None:
    p.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        default=os.environ.get(BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP),
        help=f"a broker of the cluster (default ${BOOTSTRAP_ENV} or {DEFAULT_BOOTSTRAP})",
    )
    p.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S", help="per-request timeout in seconds"
    )
    if json_output:
        p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    sec = p.add_argument_group("security (override --command-config)")
    sec.add_argument(
        "--command-config", metavar="FILE",
        help="Kafka client properties: security.protocol, sasl.mechanism, sasl.jaas.config or "
        "sasl.username/sasl.password, ssl.truststore.location, ssl.keystore.location (PEM)",
    )
    sec.add_argument("--security-protocol", metavar="P", help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    sec.add_argument("--sasl-mechanism", metavar="M", help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (default PLAIN)")
    sec.add_argument("--sasl-username", metavar="USER")
    sec.add_argument("--sasl-password", metavar="PW")
    sec.add_argument("--ssl-cafile", metavar="PEM", help="CA certificates to trust (default: the system's)")
    sec.add_argument("--ssl-certfile", metavar="PEM", help="client certificate (and key, unless --ssl-keyfile)")
    sec.add_argument("--ssl-keyfile", metavar="PEM", help="client private key")


def build_parser() -> argparse.ArgumentParser:
    from kbroker.commands import acl, consume, group, produce, topic, user

    root = _Parser(prog="kbroker", description=f"Admin verbs of the kbroker command. {PLAINTEXT_ONLY}")
    verbs = root.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    t = verbs.add_parser("topic", help="list, create, describe, delete topics, alter their configs")
    tv = t.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = tv.add_parser("list", help="the topics of the cluster")
    p.add_argument("--internal", "-i", action="store_true", help="include internal topics (__consumer_offsets ...)")
    _common(p)
    p.set_defaults(handler=topic.list_topics)
    p = tv.add_parser("create", help="create topics")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--partitions", "-p", type=int, default=-1, metavar="N", help="default: the broker's num.partitions")
    p.add_argument(
        "--replication-factor", "-r", type=int, default=-1, metavar="R",
        help="default: the broker's default.replication.factor",
    )
    p.add_argument("--config", "-c", action="append", default=[], metavar="KEY=VALUE", help="a topic config (repeatable)")
    _common(p)
    p.set_defaults(handler=topic.create_topics)
    p = tv.add_parser("describe", help="partitions, offsets and configs of topics")
    p.add_argument("names", nargs="+", metavar="NAME")
    _common(p)
    p.set_defaults(handler=topic.describe_topics)
    p = tv.add_parser("delete", help="delete topics (no confirmation)")
    p.add_argument("names", nargs="+", metavar="NAME")
    _common(p)
    p.set_defaults(handler=topic.delete_topics)
    p = tv.add_parser("alter-config", help="set or delete topic configs")
    p.add_argument("names", nargs="+", metavar="NAME")
    p.add_argument("--set", "-s", action="append", default=[], metavar="KEY=VALUE", help="set a config (repeatable)")
    p.add_argument("--delete", "-d", action="append", default=[], metavar="KEY", help="back to the default (repeatable)")
    _common(p)
    p.set_defaults(handler=topic.alter_config)

    g = verbs.add_parser("group", help="list, describe, delete consumer groups, reset their offsets")
    gv = g.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = gv.add_parser("list", help="the groups of the cluster")
    _common(p)
    p.set_defaults(handler=group.list_groups)
    p = gv.add_parser("describe", help="members, assignments, committed offsets and lag")
    p.add_argument("names", nargs="+", metavar="GROUP")
    _common(p)
    p.set_defaults(handler=group.describe_groups)
    p = gv.add_parser("delete", help="delete groups (they must have no members)")
    p.add_argument("names", nargs="+", metavar="GROUP")
    _common(p)
    p.set_defaults(handler=group.delete_groups)
    p = gv.add_parser("reset-offsets", help="move a group's committed offsets (the group must have no members)")
    p.add_argument("name", metavar="GROUP")
    p.add_argument(
        "--topic", "-t", action="append", required=True, metavar="TOPIC[:PARTITION]",
        help="what to reset: every partition of TOPIC, or one (repeatable)",
    )
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true", help="the log start offset")
    to.add_argument("--to-latest", action="store_true", help="the log end offset (high watermark)")
    to.add_argument("--to-offset", type=int, metavar="N", help="offset N (kept inside [earliest, latest])")
    to.add_argument(
        "--to-datetime", metavar="ISO", help="the first offset at or after this time (ISO 8601; UTC unless a zone is given)"
    )
    p.add_argument("--dry-run", action="store_true", help="show the new offsets without committing them")
    _common(p)
    p.set_defaults(handler=group.reset_offsets)

    p = verbs.add_parser("produce", help="produce the lines of stdin to a topic")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument(
        "--key-separator", "-K", metavar="SEP",
        help="split each line at the first SEP into key and value (a line without SEP has a null key)",
    )
    p.add_argument("--header", "-H", action="append", default=[], metavar="KEY=VALUE", help="a header on every record (repeatable)")
    p.add_argument("--partition", "-p", type=int, metavar="P", help="default: murmur2 of the key (Kafka's), else one partition per batch")
    p.add_argument("--acks", type=int, choices=(-1, 1), default=-1, help="-1 (all in-sync replicas, the default) or 1 (the leader)")
    _common(p)
    p.set_defaults(handler=produce.produce)

    fmt_help = "kcat-style output format, default '%%v\\n'; tokens: " + ", ".join(
        f"%%{k} {v}" for k, v in FORMAT_TOKENS.items() if k != "%"
    )
    p = verbs.add_parser("consume", help="print the records of a topic")
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("--from-beginning", "-b", action="store_true", help="start at the log start, not the end")
    p.add_argument(
        "--group", "-g", metavar="GROUP",
        help="start at GROUP's committed offsets and commit what was printed (as a client outside the "
        "group's membership: the group must have no members)",
    )
    p.add_argument("--partition", "-p", type=int, action="append", metavar="P", help="only these partitions (repeatable)")
    p.add_argument("-n", "--num", type=int, metavar="N", help="exit after N records")
    p.add_argument("--exit", "-e", action="store_true", help="exit at the end of every partition (as it was at start)")
    p.add_argument("--format", "-f", metavar="FMT", help=fmt_help)
    _common(p)
    p.set_defaults(handler=consume.consume)

    a = verbs.add_parser("acl", help="list, create, delete ACLs", description=f"Kafka ACLs. {PLAINTEXT_ONLY}")
    av = a.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = av.add_parser("list", help="ACLs matching the options (default: every ACL)", description=PLAINTEXT_ONLY)
    acl.add_arguments(p, create=False, need_resource=False)
    _common(p)
    p.set_defaults(handler=acl.list_acls)
    p = av.add_parser(
        "create", help="allow or deny principals operations on one resource", description=PLAINTEXT_ONLY
    )
    acl.add_arguments(p, create=True, need_resource=True)
    _common(p)
    p.set_defaults(handler=acl.create_acls)
    p = av.add_parser(
        "delete", help="delete the ACLs of one resource matching the options; prints them", description=PLAINTEXT_ONLY
    )
    acl.add_arguments(p, create=False, need_resource=True)
    _common(p)
    p.set_defaults(handler=acl.delete_acls)

    u = verbs.add_parser("user", help="list, create, delete SCRAM users", description=f"SCRAM credentials. {PLAINTEXT_ONLY}")
    uv = u.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = uv.add_parser("list", help="users with SCRAM credentials and their mechanisms", description=PLAINTEXT_ONLY)
    p.add_argument("names", nargs="*", metavar="NAME", help="only these users (default: every user)")
    _common(p)
    p.set_defaults(handler=user.list_users)
    p = uv.add_parser("create", help="create or replace a user's SCRAM credential", description=PLAINTEXT_ONLY)
    user.add_create_arguments(p)
    _common(p)
    p.set_defaults(handler=user.create_user)
    p = uv.add_parser("delete", help="delete a user's SCRAM credentials", description=PLAINTEXT_ONLY)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--mechanism", metavar="MECH", help="only this mechanism (default: every mechanism the user has)")
    _common(p)
    p.set_defaults(handler=user.delete_user)
    return root


def main(argv: list[str]) -> int:
    """Run one verb; the exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        from kbroker.client.client import set_default_security

        set_default_security(security_from_args(args))
        return handler(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except ClientError as exc:
        error(str(exc))
        return EXIT_FAILED
    except BrokenPipeError:  # `kbroker consume t | head`: the reader left; not an error
        _silence_stdout()
        return EXIT_OK


def security_from_args(args: argparse.Namespace) -> SecurityConfig:
    """--command-config's properties, then the flags over them."""
    from kbroker.client.security import SecurityConfig, from_properties, load_properties

    cfg = SecurityConfig()
    if args.command_config:
        cfg = from_properties(load_properties(args.command_config), cfg)
    if args.security_protocol:
        cfg.protocol = args.security_protocol.strip().upper()
    if args.sasl_mechanism:
        cfg.mechanism = args.sasl_mechanism.strip().upper()
    for name in ("username", "password"):
        if getattr(args, f"sasl_{name}") is not None:
            setattr(cfg, name, getattr(args, f"sasl_{name}"))
    for name in ("cafile", "certfile", "keyfile"):
        if getattr(args, f"ssl_{name}"):
            setattr(cfg, name, getattr(args, f"ssl_{name}"))
    return cfg.validate()


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
