"""``kbroker group list|describe|delete|reset-offsets``.

Lag is what kafka-consumer-groups.sh and kafka-exporter report: the partition's log end offset
(high watermark) minus the group's committed offset, for every partition the group has
committed, whether or not a member holds it now.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kbroker.client.client import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, Client
from kbroker.client.connection import ClientError, KafkaError
from kbroker.commands.output import emit_json, parse_datetime_ms, parse_topic_partition, table
from kbroker.wire.codec import decode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import WireError

# Group states in which a client outside the membership may commit offsets.
INACTIVE_STATES = ("Empty", "Dead")
# States of a group with members (classic and KIP-848 consumer groups).  reset-offsets refuses
# a group in one of these or with members; a state it does not know (Tansu 0.6 answers
# "Unknown" for a group whose members left) with no members is left to the broker, which
# refuses an outside commit to a group that has members.
ACTIVE_STATES = ("PreparingRebalance", "CompletingRebalance", "Stable", "Assigning", "Reconciling")


def _assignment(protocol_type: str, data: bytes | None) -> list[tuple[str, list[int]]]:
    """The (topic, partitions) of a consumer member's assignment; [] for anything unreadable
    (another protocol type, an empty assignment between rebalances)."""
    from kbroker.wire.messages.consumer_protocol_assignment import ConsumerProtocolAssignment

    if protocol_type != "consumer" or not data or len(data) < 2:
        return []
    version = min(int.from_bytes(data[:2], "big", signed=True), 3)
    try:
        assignment = decode(ConsumerProtocolAssignment, max(version, 0), memoryview(data)[2:])
    except WireError:
        return []
    return sorted((tp.topic, sorted(tp.partitions)) for tp in assignment.assigned_partitions)


def list_groups(args: argparse.Namespace) -> int:
    with Client(args.bootstrap, args.timeout) as client:
        groups = client.list_groups()
    rows = [{"group": g.group_id, "state": g.group_state or None, "protocol_type": g.protocol_type} for g in groups]
    if args.json:
        emit_json(rows)
    else:
        sys.stdout.write(table(["GROUP", "STATE", "PROTOCOL-TYPE"], [[r["group"], r["state"] or "-", r["protocol_type"] or "-"] for r in rows]))
    return 0


def _describe(client: Client, name: str) -> dict[str, Any]:
    g = client.describe_group(name)
    members = []
    owner: dict[tuple[str, int], dict[str, Any]] = {}
    for m in g.members:
        assigned = _assignment(g.protocol_type, m.member_assignment)
        member = {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "assignment": [{"topic": t, "partitions": ps} for t, ps in assigned],
        }
        members.append(member)
        for t, ps in assigned:
            for p in ps:
                owner[(t, p)] = member
    committed = client.committed_offsets(name) if g.group_state != "Dead" else {}
    wanted: dict[str, set[int]] = {}
    for t, p in [*committed, *owner]:
        wanted.setdefault(t, set()).add(p)
    offsets = []
    for topic in sorted(wanted):
        try:
            end = client.list_offsets(topic, sorted(wanted[topic]), LATEST_TIMESTAMP)
        except KafkaError as exc:
            if exc.code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise
            end = {}  # the topic is gone; its offsets are still committed
        for p in sorted(wanted[topic]):
            current = committed.get((topic, p))
            log_end = end.get(p)
            m = owner.get((topic, p))
            offsets.append({
                "topic": topic,
                "partition": p,
                "committed_offset": current,
                "log_end_offset": log_end,
                "lag": None if current is None or log_end is None else max(log_end - current, 0),
                "member_id": m["member_id"] if m else None,
                "client_id": m["client_id"] if m else None,
                "client_host": m["client_host"] if m else None,
            })
    return {
        "group": name,
        "state": g.group_state,
        "protocol_type": g.protocol_type,
        "protocol": g.protocol_data,
        "members": members,
        "offsets": offsets,
        "total_lag": sum(o["lag"] or 0 for o in offsets),
    }


def describe_groups(args: argparse.Namespace) -> int:
    with Client(args.bootstrap, args.timeout) as client:
        described = [_describe(client, name) for name in args.names]
    if args.json:
        emit_json(described)
        return 0
    for i, d in enumerate(described):
        if i:
            sys.stdout.write("\n")
        sys.stdout.write(
            f"GROUP          {d['group']}\nSTATE          {d['state']}\nPROTOCOL       {d['protocol'] or '-'}\n"
            f"MEMBERS        {len(d['members'])}\nTOTAL-LAG      {d['total_lag']}\n\n"
        )
        sys.stdout.write(table(
            ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"],
            [[o["topic"], o["partition"], _dash(o["committed_offset"]), _dash(o["log_end_offset"]), _dash(o["lag"]),
              o["member_id"] or "-", o["client_id"] or "-", o["client_host"] or "-"] for o in d["offsets"]],
        ))
    return 0


def _dash(value: object) -> object:
    return "-" if value is None else value


def delete_groups(args: argparse.Namespace) -> int:
    results = []
    errors = []
    with Client(args.bootstrap, args.timeout) as client:
        for name in args.names:
            code = client.delete_group(name)
            error = str(KafkaError(f"group {name!r}", code)) if code else None
            if error:
                errors.append(error)
            results.append({"group": name, "error": error})
    if args.json:
        emit_json(results)
    else:
        ok = [[r["group"]] for r in results if r["error"] is None]
        if ok:
            sys.stdout.write(table(["DELETED"], ok))
    for message in errors:
        print(f"kbroker: error: {message}", file=sys.stderr, flush=True)
    return 1 if errors else 0


def plan_reset(
    earliest: int, latest: int, *, to_earliest: bool = False, to_latest: bool = False,
    to_offset: int | None = None, by_time: int | None = None,
) -> int:
    """The new offset of one partition; a target outside [earliest, latest] is moved to the
    nearest end (as kafka-consumer-groups.sh does); a time after every record is ``latest``."""
    if to_earliest:
        return earliest
    if to_latest:
        return latest
    if to_offset is not None:
        return min(max(to_offset, earliest), latest)
    if by_time is not None:
        return latest if by_time < 0 else min(max(by_time, earliest), latest)
    raise ValueError("no reset target")


def reset_offsets(args: argparse.Namespace) -> int:
    group = args.name
    targets: dict[str, set[int] | None] = {}
    for item in args.topic:
        topic, partition = parse_topic_partition(item)
        if partition is None:
            targets[topic] = None
        elif targets.get(topic, set()) is not None:
            targets.setdefault(topic, set()).add(partition)  # type: ignore[union-attr]
    when = parse_datetime_ms(args.to_datetime) if args.to_datetime is not None else None
    plan: dict[tuple[str, int], int] = {}
    rows = []
    with Client(args.bootstrap, args.timeout) as client:
        g = client.describe_group(group)
        if not args.dry_run and (g.members or g.group_state in ACTIVE_STATES):
            raise ClientError(
                f"group {group!r} is {g.group_state} with {len(g.members)} member(s); offsets can be reset "
                "only while it has no members (stop its consumers, or use --dry-run)"
            )
        for topic, chosen in sorted(targets.items()):
            info = client.topic(topic)
            parts = sorted(info.partitions) if chosen is None else sorted(chosen)
            earliest = client.list_offsets(topic, parts, EARLIEST_TIMESTAMP)
            latest = client.list_offsets(topic, parts, LATEST_TIMESTAMP)
            by_time = client.list_offsets(topic, parts, when) if when is not None else {}
            committed = client.committed_offsets(group, {topic: parts})
            for p in parts:
                new = plan_reset(
                    earliest[p], latest[p], to_earliest=args.to_earliest, to_latest=args.to_latest,
                    to_offset=args.to_offset, by_time=by_time.get(p),
                )
                plan[(topic, p)] = new
                rows.append({"topic": topic, "partition": p, "old_offset": committed.get((topic, p)), "new_offset": new})
        if not args.dry_run and plan:
            client.commit_offsets(group, plan)
    if args.json:
        emit_json({"group": group, "dry_run": args.dry_run, "offsets": rows})
    else:
        sys.stdout.write(table(
            ["TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"],
            [[r["topic"], r["partition"], _dash(r["old_offset"]), r["new_offset"]] for r in rows],
        ))
        if args.dry_run:
            print("(dry run: nothing committed)", file=sys.stderr)
    return 0
