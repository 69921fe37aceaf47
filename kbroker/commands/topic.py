"""``kbroker topic list|create|describe|delete|alter-config``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kbroker.client.client import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, Client
from kbroker.client.connection import KafkaError
from kbroker.commands.output import UsageError, emit_json, parse_kv, table

# DescribeConfigs config_source values (Kafka's ConfigSource), as printed.
CONFIG_SOURCES = {
    0: "UNKNOWN",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG",
    8: "GROUP_CONFIG",
}


def _fail(errors: list[str]) -> int:
    for message in errors:
        print(f"kbroker: error: {message}", file=sys.stderr, flush=True)
    return 1 if errors else 0


def list_topics(args: argparse.Namespace) -> int:
    with Client(args.bootstrap, args.timeout) as client:
        info = client.metadata(None)
    topics = sorted((t for t in info.topics.values() if args.internal or not t.internal), key=lambda t: t.name)
    rows = []
    for t in topics:
        rf = max((len(p.replicas) for p in t.partitions.values()), default=0)
        rows.append({"name": t.name, "partitions": len(t.partitions), "replication_factor": rf, "internal": t.internal, "topic_id": t.topic_id})
    if args.json:
        emit_json(rows)
    else:
        sys.stdout.write(table(["NAME", "PARTITIONS", "REPLICAS"], [[r["name"], r["partitions"], r["replication_factor"]] for r in rows]))
    return 0


def create_topics(args: argparse.Namespace) -> int:
    configs = parse_kv(args.config, "--config")
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    with Client(args.bootstrap, args.timeout) as client:
        for name in args.names:
            r = client.create_topic(name, args.partitions, args.replication_factor, configs)
            error = None
            if r.error_code:
                error = str(KafkaError(f"topic {name!r}", r.error_code, r.error_message))
                errors.append(error)
            results.append({
                "name": name,
                "topic_id": None if r.topic_id is None or r.topic_id.int == 0 else str(r.topic_id),
                "partitions": r.num_partitions if r.num_partitions > 0 else args.partitions,
                "replication_factor": r.replication_factor if r.replication_factor > 0 else args.replication_factor,
                "error": error,
            })
    if args.json:
        emit_json(results)
    else:
        ok = [[r["name"], r["partitions"], r["replication_factor"]] for r in results if r["error"] is None]
        if ok:
            sys.stdout.write(table(["CREATED", "PARTITIONS", "REPLICAS"], ok))
    return _fail(errors)


def describe_topics(args: argparse.Namespace) -> int:
    described: list[dict[str, Any]] = []
    with Client(args.bootstrap, args.timeout) as client:
        for name in args.names:
            info = client.topic(name)
            parts = sorted(info.partitions)
            start = client.list_offsets(name, parts, EARLIEST_TIMESTAMP)
            end = client.list_offsets(name, parts, LATEST_TIMESTAMP)
            configs = client.describe_topic_configs(name)
            described.append({
                "name": name,
                "topic_id": info.topic_id,
                "internal": info.internal,
                "partitions": [
                    {
                        "partition": p,
                        "leader": info.partitions[p].leader,
                        "leader_epoch": info.partitions[p].leader_epoch,
                        "replicas": info.partitions[p].replicas,
                        "isr": info.partitions[p].isr,
                        "log_start_offset": start[p],
                        "high_watermark": end[p],
                    }
                    for p in parts
                ],
                "configs": [
                    {
                        "name": c.name,
                        "value": None if c.is_sensitive else c.value,
                        "source": CONFIG_SOURCES.get(c.config_source, str(c.config_source)),
                        "read_only": c.read_only,
                        "sensitive": c.is_sensitive,
                    }
                    for c in sorted(configs, key=lambda c: c.name)
                ],
            })
    if args.json:
        emit_json(described)
        return 0
    for i, d in enumerate(described):
        if i:
            sys.stdout.write("\n")
        sys.stdout.write(f"NAME         {d['name']}\nTOPIC ID     {d['topic_id'] or '-'}\nINTERNAL     {str(d['internal']).lower()}\n"
                         f"PARTITIONS   {len(d['partitions'])}\n\n")
        sys.stdout.write(table(
            ["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START-OFFSET", "HIGH-WATERMARK"],
            [[p["partition"], p["leader"], p["leader_epoch"], ",".join(map(str, p["replicas"])),
              ",".join(map(str, p["isr"])), p["log_start_offset"], p["high_watermark"]] for p in d["partitions"]],
        ))
        sys.stdout.write("\n")
        sys.stdout.write(table(
            ["CONFIG", "VALUE", "SOURCE"],
            [[c["name"], "(sensitive)" if c["sensitive"] else c["value"], c["source"]] for c in d["configs"]],
        ))
    return 0


def delete_topics(args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    with Client(args.bootstrap, args.timeout) as client:
        for name in args.names:
            code, message = client.delete_topic(name)
            error = str(KafkaError(f"topic {name!r}", code, message)) if code else None
            if error:
                errors.append(error)
            results.append({"name": name, "error": error})
    if args.json:
        emit_json(results)
    else:
        ok = [[r["name"]] for r in results if r["error"] is None]
        if ok:
            sys.stdout.write(table(["DELETED"], ok))
    return _fail(errors)


def alter_config(args: argparse.Namespace) -> int:
    to_set = parse_kv(args.set, "--set")
    if not to_set and not args.delete:
        raise UsageError("topic alter-config needs --set KEY=VALUE or --delete KEY")
    clash = sorted(set(to_set) & set(args.delete))
    if clash:
        raise UsageError(f"both --set and --delete given for {', '.join(clash)}")
    results: list[dict[str, Any]] = []
    errors: list[str] = []
    with Client(args.bootstrap, args.timeout) as client:
        for name in args.names:
            try:
                client.alter_topic_configs(name, to_set, args.delete)
                error = None
            except KafkaError as exc:
                error = str(exc)
                errors.append(error)
            results.append({"name": name, "set": to_set, "deleted": sorted(args.delete), "error": error})
    if args.json:
        emit_json(results)
    else:
        rows = [[r["name"], k, v] for r in results if r["error"] is None for k, v in sorted(to_set.items())]
        rows += [[r["name"], k, "(default)"] for r in results if r["error"] is None for k in sorted(args.delete)]
        if rows:
            sys.stdout.write(table(["TOPIC", "CONFIG", "NEW VALUE"], rows))
    return _fail(errors)
