"""Broker configuration: Kafka's property names, typed, with defaults and sources.

Sources, lowest precedence first: built-in defaults (Kafka 4.x's, except where a single
node needs otherwise, noted beside the entry), the ``--config`` properties file, environment
variables, and ``--set key=value`` flags.  DescribeConfigs reports a property as
DEFAULT_CONFIG when nothing set it and STATIC_BROKER_CONFIG otherwise.

Topic-level configs (``retention.ms``...) default to their broker-level synonym
(``log.retention.ms``...), as in Kafka: :data:`TOPIC_CONFIGS` maps each to it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path
from typing import Any

import javaproperties

from kbroker.kafka_properties import KAFKA_BROKER_PROPERTIES, is_kafka_property
from kbroker.release_versions import RELEASES

LONG_MAX = 9223372036854775807
INT_MAX = 2147483647


class ConfigType(IntEnum):
    """DescribeConfigs v3+ ``config_type``."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs v1+ ``config_source``."""

    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One broker property.  ``min``/``max``/``choices`` are Kafka's validators for it
    (``atLeast``, ``between``, ``in``); a value outside them is refused at start-up.
    ``honoured`` False: reported by DescribeConfigs with its fixed value, but setting it
    changes nothing (kbroker warns that it ignores it)."""

    name: str
    type: ConfigType
    default: str | None
    read_only: bool = True
    sensitive: bool = False
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    honoured: bool = True


def _d(
    name: str,
    type_: ConfigType,
    default: str | None,
    *,
    min: float | None = None,  # noqa: A002 - Kafka's validator name
    max: float | None = None,  # noqa: A002
    choices: tuple[str, ...] = (),
    honoured: bool = True,
) -> ConfigDef:
    return ConfigDef(name, type_, default, True, False, min, max, choices, honoured)


def _secret(name: str) -> ConfigDef:
    """A PASSWORD property: DescribeConfigs reports it sensitive, with no value."""
    return ConfigDef(name, ConfigType.PASSWORD, None, True, True)


_T = ConfigType
# The one authorizer kbroker implements (authorizer.class.name), under Kafka's class name.
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# kbroker listens on loopback unless told otherwise (Kafka's default, PLAINTEXT://:9092, is
# every interface): a developer's broker is not exposed to the network by accident.
DEFAULT_LISTENERS = "PLAINTEXT://127.0.0.1:9092"
# Broker properties kbroker reads or reports.  Defaults are Kafka 4.x's unless noted.
BROKER_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        _d("node.id", _T.INT, "1", min=0),
        # Kafka 4: a synonym of node.id (DescribeConfigs reports node.id's value).
        _d("broker.id", _T.INT, "1", min=0),
        # kbroker is always one combined broker and controller.
        _d("process.roles", _T.LIST, "broker,controller", honoured=False),
        _d("listeners", _T.STRING, DEFAULT_LISTENERS),
        # Kafka's default (null) means "as listeners"; so does kbroker's.
        _d("advertised.listeners", _T.STRING, None),
        _d("num.partitions", _T.INT, "1", min=1),
        _d("default.replication.factor", _T.INT, "1", min=1),
        _d("auto.create.topics.enable", _T.BOOLEAN, "true"),
        _d("delete.topic.enable", _T.BOOLEAN, "true"),
        _d("message.max.bytes", _T.INT, "1048588", min=0),
        # Largest request frame accepted; a larger size prefix closes the connection.
        _d("socket.request.max.bytes", _T.INT, "104857600", min=1),
        _d("connections.max.idle.ms", _T.LONG, "600000"),
        # Kafka's default is unlimited; each connection costs a file descriptor and a task,
        # so kbroker refuses connections past this many (new ones are closed at once).
        _d("max.connections", _T.INT, "10000", min=0),
        _d("log.dirs", _T.STRING, None),
        # Kafka's default is /tmp/kafka-logs; kbroker's data dir defaults to ./kbroker-data.
        _d("log.dir", _T.STRING, "kbroker-data"),
        # kbroker keeps Kafka 3.x's minimum (one legacy record's overhead).
        _d("log.segment.bytes", _T.INT, "1073741824", min=14),
        _d("log.roll.ms", _T.LONG, "604800000", min=1),
        _d("log.roll.hours", _T.INT, "168", min=1),
        _d("log.retention.ms", _T.LONG, "604800000", min=-1),
        _d("log.retention.minutes", _T.INT, None),
        _d("log.retention.hours", _T.INT, "168"),
        _d("log.retention.bytes", _T.LONG, "-1"),
        _d("log.retention.check.interval.ms", _T.LONG, "300000", min=1),
        # Kafka allows 0; kbroker's log manager needs a positive interval.
        _d("log.flush.offset.checkpoint.interval.ms", _T.INT, "60000", min=1),
        _d("log.flush.start.offset.checkpoint.interval.ms", _T.INT, "60000", min=1),
        _d("log.flush.interval.messages", _T.LONG, str(LONG_MAX), min=1),
        _d("log.flush.interval.ms", _T.LONG, str(LONG_MAX), min=0),
        _d("log.index.interval.bytes", _T.INT, "4096", min=0),
        _d("log.index.size.max.bytes", _T.INT, "10485760", min=4),
        _d("log.message.timestamp.type", _T.STRING, "CreateTime", choices=("CreateTime", "LogAppendTime")),
        _d("log.cleanup.policy", _T.LIST, "delete", choices=("delete", "compact")),
        _d("log.cleaner.delete.retention.ms", _T.LONG, "86400000", min=0),
        _d("log.cleaner.min.compaction.lag.ms", _T.LONG, "0", min=0),
        _d("log.cleaner.max.compaction.lag.ms", _T.LONG, str(LONG_MAX), min=1),
        _d("log.cleaner.min.cleanable.ratio", _T.DOUBLE, "0.5", min=0, max=1),
        # -- log cleaner (issue 13): Kafka 4's ranges -------------------------------------
        _d("log.cleaner.enable", _T.BOOLEAN, "true"),
        _d("log.cleaner.threads", _T.INT, "1", min=0),
        _d("log.cleaner.backoff.ms", _T.LONG, "15000", min=0),
        _d("log.cleaner.dedupe.buffer.size", _T.LONG, "134217728"),
        _d("log.cleaner.io.buffer.size", _T.INT, "524288", min=0),
        _d("log.cleaner.io.buffer.load.factor", _T.DOUBLE, "0.9"),
        _d("log.cleaner.io.max.bytes.per.second", _T.DOUBLE, "1.7976931348623157E308"),
        _d("transaction.state.log.segment.bytes", _T.INT, "104857600", min=1),
        _d("producer.id.expiration.check.interval.ms", _T.INT, "600000", min=1),
        # -- end of log cleaner ----------------------------------------------------------
        _d("log.segment.delete.delay.ms", _T.LONG, "60000", min=0),
        _d("log.message.timestamp.before.max.ms", _T.LONG, str(LONG_MAX), min=0),
        _d("log.message.timestamp.after.max.ms", _T.LONG, "3600000", min=0),
        _d(
            "compression.type",
            _T.STRING,
            "producer",
            choices=("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        ),
        _d("min.insync.replicas", _T.INT, "1", min=1),
        _d("unclean.leader.election.enable", _T.BOOLEAN, "false"),
        # Kafka's code default is 3000, but the server.properties it ships sets 0, which is
        # what everyone running the distribution gets: groups form at once.
        _d("group.initial.rebalance.delay.ms", _T.INT, "0", min=0),
        _d("group.min.session.timeout.ms", _T.INT, "6000", min=0),
        _d("group.max.session.timeout.ms", _T.INT, "1800000", min=0),
        _d("group.max.size", _T.INT, str(INT_MAX), min=1),
        _d("offsets.retention.minutes", _T.INT, "10080", min=1),
        _d("offsets.retention.check.interval.ms", _T.LONG, "600000", min=1),
        _d("offsets.topic.num.partitions", _T.INT, "50", min=1),
        # Kafka's default is 3; a single node can only hold one replica.
        _d("offsets.topic.replication.factor", _T.SHORT, "1", min=1),
        _d("offsets.topic.segment.bytes", _T.INT, "104857600", min=1),
        _d("transaction.state.log.num.partitions", _T.INT, "50", min=1),
        _d("transaction.state.log.replication.factor", _T.SHORT, "1", min=1),
        _d("transaction.max.timeout.ms", _T.INT, "900000", min=1),
        _d("transaction.abort.timed.out.transaction.cleanup.interval.ms", _T.INT, "10000", min=1),
        _d("transactional.id.expiration.ms", _T.INT, "604800000", min=1),
        _d("producer.id.expiration.ms", _T.INT, "86400000", min=1),
        # -- KIP-848 consumer groups (issue 14): Kafka 4's defaults and ranges -------------
        _d("group.consumer.session.timeout.ms", _T.INT, "45000", min=1),
        _d("group.consumer.min.session.timeout.ms", _T.INT, "45000", min=1),
        _d("group.consumer.max.session.timeout.ms", _T.INT, "60000", min=1),
        _d("group.consumer.heartbeat.interval.ms", _T.INT, "5000", min=1),
        _d("group.consumer.min.heartbeat.interval.ms", _T.INT, "5000", min=1),
        _d("group.consumer.max.heartbeat.interval.ms", _T.INT, "15000", min=1),
        _d("group.consumer.max.size", _T.INT, str(INT_MAX), min=1),
        _d("group.consumer.assignors", _T.LIST, "uniform,range"),
        _d(
            "group.consumer.migration.policy",
            _T.STRING,
            "bidirectional",
            choices=("disabled", "upgrade", "downgrade", "bidirectional"),
        ),
        # -- end of KIP-848 consumer groups ---------------------------------------------
        # -- KIP-932 share groups (issue 14): Kafka 4.2's defaults and ranges -------------
        _d("group.share.session.timeout.ms", _T.INT, "45000", min=1),
        _d("group.share.min.session.timeout.ms", _T.INT, "45000", min=1),
        _d("group.share.max.session.timeout.ms", _T.INT, "60000", min=1),
        _d("group.share.heartbeat.interval.ms", _T.INT, "5000", min=1),
        _d("group.share.min.heartbeat.interval.ms", _T.INT, "5000", min=1),
        _d("group.share.max.heartbeat.interval.ms", _T.INT, "15000", min=1),
        # how long a fetched record stays with its consumer unacknowledged
        _d("group.share.record.lock.duration.ms", _T.INT, "30000", min=1000, max=3600000),
        _d("group.share.min.record.lock.duration.ms", _T.INT, "15000", min=1000, max=30000),
        _d("group.share.max.record.lock.duration.ms", _T.INT, "60000", min=30000, max=3600000),
        # deliveries of one record before it is archived (a poison message stops coming back)
        _d("group.share.delivery.count.limit", _T.INT, "5", min=2, max=10),
        _d("group.share.min.delivery.count.limit", _T.INT, "2", min=2, max=5),
        _d("group.share.max.delivery.count.limit", _T.INT, "10", min=5, max=25),
        # in-flight (acquired or not yet done) records per share-partition: bounds its memory
        _d("group.share.partition.max.record.locks", _T.INT, "2000", min=100, max=10000),
        _d("group.share.max.size", _T.INT, "200", min=1, max=1000),
        _d("share.coordinator.state.topic.num.partitions", _T.INT, "50", min=1),
        _d("share.coordinator.state.topic.replication.factor", _T.SHORT, "1", min=1),
        _d("share.coordinator.state.topic.segment.bytes", _T.INT, "104857600", min=1),
        # -- end of KIP-932 share groups ------------------------------------------------
        # Fault injection for client test suites (0 = off): every Nth partition append of a
        # Produce is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND although it was stored, so the
        # client retries a batch the log already has (idempotence must absorb it).
        _d("kbroker.test.fail.produce.after.append.every", _T.INT, "0", min=0),
        # HOST:PORT of the HTTP listener (/healthz, /readyz, /metrics); unset = off, port 0 = a free port.
        _d("kbroker.http.listen", _T.STRING, None),
        # The control API (kbroker.control): /v1/faults (and the cluster routes) on the HTTP
        # listener, for tests that change a running broker from outside.  Off by default: it
        # lets anyone who reaches the HTTP port break the broker on purpose.
        _d("kbroker.control.enabled", _T.BOOLEAN, "false"),
        # -- ACLs (issue 11): Kafka's StandardAuthorizer; unset = no authorizer, all allowed --
        _d("authorizer.class.name", _T.STRING, "", choices=("", STANDARD_AUTHORIZER)),
        # "User:admin;User:bob": principals allowed everything.
        _d("super.users", _T.STRING, None),
        _d("allow.everyone.if.no.acl.found", _T.BOOLEAN, "false"),
        # -- end of ACLs --------------------------------------------------------------------
        # -- security (issue 11): TLS and SASL listeners.  Each may be set per listener as
        # listener.name.<listener>.<name> (kbroker.security.listener reads them that way).
        # Kafka's default keystore/truststore type is JKS, which kbroker cannot read (it says so).
        _d("ssl.keystore.type", _T.STRING, "JKS", choices=("JKS", "PKCS12", "PEM")),
        _d("ssl.keystore.location", _T.STRING, None),
        _secret("ssl.keystore.password"),
        _secret("ssl.key.password"),
        _secret("ssl.keystore.key"),
        _d("ssl.keystore.certificate.chain", _T.STRING, None),
        _d("ssl.truststore.type", _T.STRING, "JKS", choices=("JKS", "PKCS12", "PEM")),
        _d("ssl.truststore.location", _T.STRING, None),
        _secret("ssl.truststore.password"),
        _d("ssl.truststore.certificates", _T.STRING, None),
        _d("ssl.client.auth", _T.STRING, "none", choices=("none", "requested", "required")),
        _d("ssl.enabled.protocols", _T.LIST, "TLSv1.2,TLSv1.3", choices=("TLSv1.2", "TLSv1.3")),
        _d("ssl.cipher.suites", _T.LIST, ""),
        _d("ssl.principal.mapping.rules", _T.STRING, "DEFAULT"),
        _d("sasl.enabled.mechanisms", _T.LIST, "GSSAPI"),
        # The largest frame a connection may send before it has authenticated (SASL listeners):
        # a bigger size prefix closes the connection before any of it is read.
        _d("sasl.server.max.receive.size", _T.INT, "524288", min=1),
        _d("connections.max.reauth.ms", _T.LONG, "0", min=0),
        _d("connection.failed.authentication.delay.ms", _T.INT, "100", min=0),
        # Kafka 4's SCRAM rule: the client-final nonce must equal client nonce + server nonce.
        # false (the default) accepts any client-final nonce that ends with the server's nonce,
        # as Kafka 3.8.1-3.9 did (librdkafka < 2.6.1, e.g. Debian's kcat, needs this).
        _d("kbroker.sasl.scram.exact.nonce", _T.BOOLEAN, "false"),
        # OAUTHBEARER, unsecured JWTs (Kafka's default validator).
        _d("sasl.oauthbearer.expected.audience", _T.LIST, ""),
        _d("sasl.oauthbearer.expected.issuer", _T.STRING, None),
        _d("sasl.oauthbearer.sub.claim.name", _T.STRING, "sub"),
        _d("sasl.oauthbearer.clock.skew.seconds", _T.INT, "30", min=0),
        # OAUTHBEARER, signed JWTs: set, tokens must be signed by a key of this JSON Web Key
        # Set (file:, http: or https: URL), read at start-up and every refresh.ms after
        # (kbroker.security.jwks).  The scope claim, if present, must be a string or list.
        _d("sasl.oauthbearer.jwks.endpoint.url", _T.STRING, None),
        _d("sasl.oauthbearer.jwks.endpoint.refresh.ms", _T.LONG, "3600000", min=0),
        # First retry delay of a failed JWKS read, doubling up to .max.ms (also the least time
        # between two refreshes an unknown kid may start).
        _d("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", _T.LONG, "100", min=0),
        _d("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", _T.LONG, "10000", min=0),
        _d("sasl.oauthbearer.scope.claim.name", _T.STRING, "scope"),
        # Delegation tokens (keys 38-41, kbroker.security.delegation): off unless the secret
        # that signs their HMACs is set, as Kafka.
        _secret("delegation.token.secret.key"),
        _d("delegation.token.max.lifetime.ms", _T.LONG, "604800000", min=1),
        _d("delegation.token.expiry.time.ms", _T.LONG, "86400000", min=1),
        # Accepted; kbroker drops expired tokens whenever the token store is used instead.
        _d("delegation.token.expiry.check.interval.ms", _T.LONG, "3600000", min=1, honoured=False),
        # -- version emulation (issue 12) -------------------------------------------------
        # Answer as this Kafka release's broker did (ApiVersions ranges, features,
        # behaviour): see kbroker/emulation.py.  Unset: the newest release.
        _d("kbroker.emulate.version", _T.STRING, None, choices=RELEASES),
        # -- end of version emulation -----------------------------------------------------
        # -- client quotas (issue 12): Kafka's rate windows (11 samples of 1 s) ------------
        _d("quota.window.num", _T.INT, "11", min=1),
        _d("quota.window.size.seconds", _T.INT, "1", min=1),
        # -- end of client quotas -------------------------------------------------------------
        # -- client telemetry (KIP-714, issue 12) ---------------------------------------------
        # A Kafka broker serves GetTelemetrySubscriptions/PushTelemetry only with a telemetry
        # receiver plugin; kbroker's receiver (kbroker.telemetry: pushed metrics on /metrics)
        # is off by default, so ApiVersions matches a stock broker's.
        _d("kbroker.client.telemetry.enable", _T.BOOLEAN, "false"),
        # Largest PushTelemetry metrics payload accepted (Kafka's telemetry.max.bytes).
        _d("telemetry.max.bytes", _T.INT, "1048576", min=1),
        # -- end of client telemetry ----------------------------------------------------------
        # Web console (kbroker/console/): true = pages only show; false also allows creating and
        # deleting topics and resetting group offsets from the console's forms.
        _d("kbroker.console.read.only", _T.BOOLEAN, "true"),
        # -- virtual cluster (issue 15): N nodes (ids 1..N) in this process over one data dir,
        # node k listening on each listener's port + k - 1 (kbroker/cluster.py).  Capped at
        # 9 so a cluster takes a small, predictable block of ports.
        _d("kbroker.nodes", _T.INT, "1", min=1, max=9),
        # -- bounded resources (issue 17) --------------------------------------------------
        # Segment files open at once (log.file_cache, an LRU: others are reopened on use).
        # -1: a quarter of the process's soft RLIMIT_NOFILE, leaving the rest to connections;
        # at least 16 (a roll and a fetch across partitions need several at once).
        _d("kbroker.log.max.open.files", _T.INT, "-1", min=-1),
        # Kafka's default: no per-address limit.  Over it, a new connection is closed at once.
        _d("max.connections.per.ip", _T.INT, str(INT_MAX), min=0),
        # "host:count,..." quotas overriding max.connections.per.ip (host names resolved at start).
        _d("max.connections.per.ip.overrides", _T.STRING, ""),
        # Bytes of request frames held at once (kbroker.limits.RequestMemory).  Kafka's default
        # (-1) is unbounded; 100 connections each sending a 100 MB frame would then hold 10 GB,
        # so kbroker bounds it: a frame that does not fit waits, its connection unread.
        _d("queued.max.request.bytes", _T.LONG, "536870912", min=-1),
        # Bytes of Fetch answers built and not yet taken by the kernel, across all connections
        # (kbroker.limits.ResponseMemory).  Kafka bounds answers only per connection (one in
        # flight), so 100 slow readers of 50 MiB answers (fetch.max.bytes) would hold 5 GB.
        # Same default as queued.max.request.bytes: together about 1 GiB of client buffers.
        # A Fetch reads no more than the room left (at least its first batch).  -1: unbounded.
        _d("kbroker.queued.max.response.bytes", _T.LONG, "536870912", min=-1),
        # SO_SNDBUF of client sockets.  Kafka's default is 102400; kbroker keeps the OS's (-1),
        # since a fixed size turns off Linux's send-buffer autotuning and caps throughput.
        _d("socket.send.buffer.bytes", _T.INT, "-1", min=-1),
        # A connection that has sent part of a request (even just part of its size) and then
        # nothing for this long is closed (a slow-header client); connections.max.idle.ms
        # still bounds the whole wait.  Not a Kafka property.
        _d("kbroker.connections.partial.request.timeout.ms", _T.LONG, "30000", min=1),
        # -- end of bounded resources -------------------------------------------------------
    ]
}

# listener.name.<l>.<mechanism>.sasl.jaas.config: the broker's login module options (PLAIN users).
_JAAS_CONFIG = ConfigDef("sasl.jaas.config", ConfigType.PASSWORD, None, True, True)

# KafkaConfig.validateValues: the dedupe buffer must exceed 1 MiB per cleaner thread.
MIN_DEDUPE_BUFFER_PER_THREAD_BYTES = 1024 * 1024


def check_cleaner_configs(config: BrokerConfig) -> None:
    """Raise ConfigError as Kafka 4 refuses a dedupe buffer too small for the cleaner threads
    (each property's own range is on its definition, checked by check_definition)."""
    threads = config.get_int("log.cleaner.threads")
    if threads > 0 and config.get_int("log.cleaner.dedupe.buffer.size") // threads <= MIN_DEDUPE_BUFFER_PER_THREAD_BYTES:
        raise ConfigError("log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.")


# -- KIP-848 consumer groups (issue 14) -----------------------------------------------
def consumer_group_settings(config: BrokerConfig) -> dict[str, Any]:
    """The ``group.consumer.*`` properties as ``coordinator.config.GroupConfig`` fields."""
    return {
        "group_consumer_session_timeout_ms": config.get_int("group.consumer.session.timeout.ms"),
        "group_consumer_min_session_timeout_ms": config.get_int("group.consumer.min.session.timeout.ms"),
        "group_consumer_max_session_timeout_ms": config.get_int("group.consumer.max.session.timeout.ms"),
        "group_consumer_heartbeat_interval_ms": config.get_int("group.consumer.heartbeat.interval.ms"),
        "group_consumer_min_heartbeat_interval_ms": config.get_int("group.consumer.min.heartbeat.interval.ms"),
        "group_consumer_max_heartbeat_interval_ms": config.get_int("group.consumer.max.heartbeat.interval.ms"),
        "group_consumer_max_size": config.get_int("group.consumer.max.size"),
        "group_consumer_assignors": tuple(
            n.strip() for n in (config.get("group.consumer.assignors") or "").split(",") if n.strip()
        ),
        "group_consumer_migration_policy": (
            config.get("group.consumer.migration.policy") or "bidirectional"
        ).lower(),
    }


# Server assignors kbroker has (kbroker.coordinator.assignors; not imported here, so that
# start-up does not load the coordinator), under their short and Kafka class names.
CONSUMER_GROUP_ASSIGNOR_NAMES = frozenset(
    {
        "uniform",
        "range",
        "org.apache.kafka.coordinator.group.assignor.UniformAssignor",
        "org.apache.kafka.coordinator.group.assignor.RangeAssignor",
    }
)


def check_consumer_group_configs(config: BrokerConfig) -> None:
    """Raise ConfigError as Kafka 4 refuses out-of-bounds consumer-group timeouts or an
    unknown server assignor (at start-up, not at the first group request)."""
    settings = consumer_group_settings(config)
    for name in settings["group_consumer_assignors"]:
        if name not in CONSUMER_GROUP_ASSIGNOR_NAMES:
            raise ConfigError(f"group.consumer.assignors: unknown assignor {name!r} (uniform, range)")
    if not settings["group_consumer_assignors"]:
        raise ConfigError("group.consumer.assignors must name at least one assignor")
    for what in ("session.timeout.ms", "heartbeat.interval.ms"):
        low = config.get_int(f"group.consumer.min.{what}")
        value = config.get_int(f"group.consumer.{what}")
        high = config.get_int(f"group.consumer.max.{what}")
        if not low <= value <= high:
            raise ConfigError(
                f"group.consumer.{what} must be between group.consumer.min.{what} ({low}) "
                f"and group.consumer.max.{what} ({high})"
            )
    if settings["group_consumer_heartbeat_interval_ms"] >= settings["group_consumer_session_timeout_ms"]:
        raise ConfigError("group.consumer.heartbeat.interval.ms must be less than group.consumer.session.timeout.ms")


# -- end of KIP-848 consumer groups ------------------------------------------------------


def check_share_group_configs(config: BrokerConfig) -> None:
    """Raise ConfigError as Kafka 4 refuses a share-group default outside its min/max."""
    for what in ("session.timeout.ms", "heartbeat.interval.ms", "record.lock.duration.ms", "delivery.count.limit"):
        low = config.get_int(f"group.share.min.{what}")
        value = config.get_int(f"group.share.{what}")
        high = config.get_int(f"group.share.max.{what}")
        if not low <= value <= high:
            raise ConfigError(
                f"group.share.{what} ({value}) must be between group.share.min.{what} ({low}) "
                f"and group.share.max.{what} ({high})"
            )


def share_group_settings(config: BrokerConfig) -> dict[str, Any]:
    """The ``group.share.*`` properties as ``coordinator.share_config.ShareConfig`` fields."""
    return {
        "group_share_session_timeout_ms": config.get_int("group.share.session.timeout.ms"),
        "group_share_heartbeat_interval_ms": config.get_int("group.share.heartbeat.interval.ms"),
        "group_share_record_lock_duration_ms": config.get_int("group.share.record.lock.duration.ms"),
        "group_share_delivery_count_limit": config.get_int("group.share.delivery.count.limit"),
        "group_share_partition_max_record_locks": config.get_int("group.share.partition.max.record.locks"),
        "group_share_max_size": config.get_int("group.share.max.size"),
    }


# ``kbroker --dev``: what a developer running a local substitute expects, applied over the
# defaults and under every other source.  Each is listed in --help.
DEV_PRESET: dict[str, str] = {
    # Groups form at once (already the default; stated so the preset is complete).
    "group.initial.rebalance.delay.ms": "0",
    # One partition each for the internal topics: 2 files to create and replay, not 100.
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.num.partitions": "1",
    # Producing to or consuming from a new name just works.
    "auto.create.topics.enable": "true",
    # Lets a test consumer use a short session.timeout.ms (clients default to 45 s).
    "group.min.session.timeout.ms": "500",
    # A timed-out transaction is aborted within a second instead of ten.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
}

# topic config -> broker synonym (whose value is the topic default), type
TOPIC_CONFIGS: dict[str, tuple[str | None, ConfigType]] = {
    "cleanup.policy": ("log.cleanup.policy", _T.LIST),
    "compression.type": ("compression.type", _T.STRING),
    "delete.retention.ms": ("log.cleaner.delete.retention.ms", _T.LONG),
    "file.delete.delay.ms": ("log.segment.delete.delay.ms", _T.LONG),
    "flush.messages": ("log.flush.interval.messages", _T.LONG),
    "flush.ms": ("log.flush.interval.ms", _T.LONG),
    "index.interval.bytes": ("log.index.interval.bytes", _T.INT),
    "max.compaction.lag.ms": ("log.cleaner.max.compaction.lag.ms", _T.LONG),
    "max.message.bytes": ("message.max.bytes", _T.INT),
    "message.timestamp.after.max.ms": ("log.message.timestamp.after.max.ms", _T.LONG),
    "message.timestamp.before.max.ms": ("log.message.timestamp.before.max.ms", _T.LONG),
    "message.timestamp.type": ("log.message.timestamp.type", _T.STRING),
    "min.cleanable.dirty.ratio": ("log.cleaner.min.cleanable.ratio", _T.DOUBLE),
    "min.compaction.lag.ms": ("log.cleaner.min.compaction.lag.ms", _T.LONG),
    "min.insync.replicas": ("min.insync.replicas", _T.INT),
    "retention.bytes": ("log.retention.bytes", _T.LONG),
    "retention.ms": ("log.retention.ms", _T.LONG),
    "segment.bytes": ("log.segment.bytes", _T.INT),
    "segment.index.bytes": ("log.index.size.max.bytes", _T.INT),
    "segment.ms": ("log.roll.ms", _T.LONG),
    "unclean.leader.election.enable": ("unclean.leader.election.enable", _T.BOOLEAN),
}

# Kafka accepts these coarser broker properties and derives the *.ms ones from them.
_DERIVED_MS = {
    "log.retention.ms": [("log.retention.minutes", 60_000), ("log.retention.hours", 3_600_000)],
    "log.roll.ms": [("log.roll.hours", 3_600_000)],
}
_DERIVED_COARSE = {coarse for pairs in _DERIVED_MS.values() for coarse, _ in pairs}


class ConfigError(ValueError):
    """A property has a value of the wrong type or out of range, or an unknown name."""


# The int types' own bounds, as Java's parsers enforce them.
_TYPE_BOUNDS = {
    ConfigType.SHORT: (-(2**15), 2**15 - 1),
    ConfigType.INT: (-(2**31), INT_MAX),
    ConfigType.LONG: (-(2**63), LONG_MAX),
}


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java ``.properties`` text: ``=``, ``:`` or whitespace separators, ``#``/``!``
    comments, ``\\`` continuations, escapes and ``\\uXXXX``, as ``java.util.Properties``."""
    return dict(javaproperties.loads(text))


def read_properties_file(path: str) -> dict[str, str]:
    """The properties of ``path``; ConfigError (one line) when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # what java.util.Properties.load(InputStream) reads
    try:
        return parse_properties(text)
    except ValueError as exc:  # a malformed \\u escape
        raise ConfigError(f"cannot parse config file {path}: {exc}") from None


ENV_PREFIX = "KBROKER_PROP_"


def env_properties(environ: Mapping[str, str]) -> dict[str, str]:
    """``KBROKER_PROP_LOG_RETENTION_MS=1000`` -> ``log.retention.ms=1000``.

    As Confluent's images do: ``_`` becomes ``.`` and ``__`` becomes ``_``.
    """
    return {name: value for name, (_var, value) in _env_properties(environ).items()}


def _env_properties(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    props = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX):
            name = key[len(ENV_PREFIX) :].lower().replace("__", "\0").replace("_", ".")
            props[name.replace("\0", "_")] = (key, value)
    return props


def check_value(type_: ConfigType, name: str, value: str) -> None:
    """Raise ConfigError when ``value`` does not parse as ``type_``."""
    try:
        if type_ in _TYPE_BOUNDS:
            lo, hi = _TYPE_BOUNDS[type_]
            if not lo <= int(value) <= hi:
                raise ValueError(value)
        elif type_ is ConfigType.DOUBLE:
            float(value)
        elif type_ is ConfigType.BOOLEAN and value.lower() not in ("true", "false"):
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"invalid value {value!r} for {name} ({type_.name.lower()})") from None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def check_definition(definition: ConfigDef, value: str) -> None:
    """Type, range and choices, as Kafka's validators check them; ConfigError if not."""
    name = definition.name
    check_value(definition.type, name, value)
    if definition.type in _TYPE_BOUNDS or definition.type is ConfigType.DOUBLE:
        number = float(value)
        lo, hi = definition.min, definition.max
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            if lo is not None and hi is not None:
                rule = f"value must be between {_number(lo)} and {_number(hi)}"
            elif lo is not None:
                rule = f"value must be at least {_number(lo)}"
            else:
                rule = f"value must be no more than {_number(hi)}"  # type: ignore[arg-type]
            raise ConfigError(f"invalid value {value} for {name}: {rule}")
    if definition.choices:
        items = [v.strip() for v in value.split(",")] if definition.type is ConfigType.LIST else [value]
        bad = [v for v in items if v not in definition.choices]
        if bad:
            raise ConfigError(
                f"invalid value {value!r} for {name}: must be one of {', '.join(definition.choices)}"
            )


# listener.name.<listener>.[<mechanism>.]<name>: a per-listener security override.
_PER_LISTENER = re.compile(r"^listener\.name\.[a-z0-9_]+\.(?:(?P<mechanism>[a-z0-9-]+)\.)??(?P<name>(?:ssl|sasl)\..+|connections\.max\.reauth\.ms)$")


def per_listener_definition(name: str) -> ConfigDef | None:
    """The definition a ``listener.name.<l>.[<mechanism>.]<property>`` override is checked
    against, for the security properties kbroker implements (None otherwise)."""
    m = _PER_LISTENER.match(name)
    if m is None:
        return None
    if m["mechanism"] is not None:  # <mechanism>.sasl.jaas.config (the only per-mechanism one kbroker reads)
        return _JAAS_CONFIG if m["name"] == "sasl.jaas.config" else None
    return BROKER_CONFIGS.get(m["name"])


def classify_property(name: str) -> str:
    """``"kbroker"`` (implemented), ``"ignored"`` (a Kafka property kbroker does not
    implement) or ``"unknown"`` (in neither: a typo)."""
    if name.startswith("listener.name.") and per_listener_definition(name) is not None:
        return "kbroker"
    definition = BROKER_CONFIGS.get(name)
    if definition is not None:
        return "kbroker" if definition.honoured else "ignored"
    if name in _DERIVED_COARSE:
        return "kbroker"
    if name.startswith("kbroker."):
        return "unknown"
    return "ignored" if is_kafka_property(name) else "unknown"


def suggest_property(name: str) -> str | None:
    """The known property name closest to ``name``, if any is close."""
    candidates = sorted(set(BROKER_CONFIGS) | KAFKA_BROKER_PROPERTIES)
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_property_error(name: str, origin: str) -> ConfigError:
    hint = suggest_property(name)
    where = f" (from {origin})" if origin else ""
    if hint is None:
        return ConfigError(f"unknown property {name!r}{where}: not a kbroker or Kafka broker property")
    return ConfigError(f"unknown property {name!r}{where}; did you mean {hint!r}?")


# -- listeners ------------------------------------------------------------------------------

# Kafka's default listener.security.protocol.map.
DEFAULT_PROTOCOL_MAP = {p: p for p in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")}
SUPPORTED_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
_LISTENER_CONTEXT = ("listener.security.protocol.map", "controller.listener.names")
_LISTENER = re.compile(r"^(?P<name>[A-Za-z0-9_]+)://(?P<host>\[[^\]]*\]|[^:/\[\]]*):(?P<port>\d+)$")


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    host: str  # "" = every interface
    port: int

    def __str__(self) -> str:
        return f"{self.name}://{format_address(self.host, self.port)}"


def format_address(host: str, port: int) -> str:
    """``host:port``, with IPv6 addresses bracketed: ``[::1]:9092``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_port(port: int, text: str, what: str) -> int:
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} out of range 0-65535 in {text!r}")
    return port


def parse_listeners(value: str, what: str) -> list[Listener]:
    """``NAME://HOST:PORT`` entries, comma-separated, as Kafka's listeners take them."""
    out = []
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        m = _LISTENER.match(item)
        if m is None:
            raise ConfigError(f"{what}: {item!r} is not LISTENER_NAME://HOST:PORT")
        port = _check_port(int(m["port"]), item, what)
        out.append(Listener(m["name"].upper(), m["host"].strip("[]"), port))
    names = [listener.name for listener in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"{what}: each listener name may appear once, got {value!r}")
    return out


def _protocol_map(props: Mapping[str, str]) -> dict[str, str]:
    text = props.get("listener.security.protocol.map")
    if not text:
        return dict(DEFAULT_PROTOCOL_MAP)
    out = {}
    for item in (v.strip() for v in text.split(",")):
        name, sep, protocol = item.partition(":")
        if item and (not sep or not name.strip() or not protocol.strip()):
            raise ConfigError(f"listener.security.protocol.map: {item!r} is not NAME:PROTOCOL")
        if item:
            out[name.strip().upper()] = protocol.strip().upper()
    return out


def _broker_listeners(props: Mapping[str, str]) -> list[tuple[Listener, str]]:
    """The listeners kbroker serves, each with its security protocol: ``listeners`` less the
    controller listeners (``controller.listener.names``: kbroker has no separate controller)."""
    listeners = parse_listeners(props.get("listeners") or DEFAULT_LISTENERS, "listeners")
    controller = {n.strip().upper() for n in props.get("controller.listener.names", "").split(",")}
    protocols = _protocol_map(props)
    serving = [listener for listener in listeners if listener.name not in controller]
    if not serving:
        raise ConfigError("listeners: no broker listener (all are controller.listener.names)")
    out = []
    for listener in serving:
        protocol = protocols.get(listener.name)
        if protocol is None:
            raise ConfigError(
                f"listeners: {listener.name} has no security protocol in listener.security.protocol.map"
            )
        if protocol not in SUPPORTED_PROTOCOLS:
            raise ConfigError(
                f"listeners: {listener} uses {protocol}; the protocols are {', '.join(SUPPORTED_PROTOCOLS)}"
            )
        out.append((listener, protocol))
    return out


def _advertised_for(props: Mapping[str, str], listener: Listener) -> Listener | None:
    text = props.get("advertised.listeners")
    if not text:
        return None
    for entry in parse_listeners(text, "advertised.listeners"):
        if entry.name == listener.name:
            return entry
    raise ConfigError(f"advertised.listeners has no entry for listener {listener.name}: {text!r}")


@dataclass(frozen=True, slots=True)
class ServedListener:
    """One listener the broker serves: where it binds, its security protocol and the
    address Metadata/FindCoordinator/DescribeCluster give to clients that came in on it."""

    name: str
    protocol: str
    host: str  # "" = every interface
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @property
    def advertised(self) -> tuple[str, int]:
        host = self.advertised_host or self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return host, self.advertised_port or self.port

    def bound_to(self, port: int) -> ServedListener:
        """This listener after binding port 0 to ``port``."""
        return replace(self, port=port, advertised_port=self.advertised_port or port)

def split_host_port(text: str, *, what: str) -> tuple[str, int]:
    """``HOST:PORT``, ``[IPv6]:PORT`` or ``:PORT`` (every interface, as Kafka's empty host)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or (":" in host and not host.startswith("[")):
        raise ConfigError(f"{what} must be HOST:PORT (IPv6 as [ADDR]:PORT), got {text!r}")
    return host.strip("[]"), _check_port(int(port), text, what)


@dataclass(frozen=True)
class BrokerConfig:
    """Everything the broker needs to start; immutable once built."""

    listen_host: str = "127.0.0.1"  # "" = every interface
    listen_port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    data_dir: Path = Path("kbroker-data")
    # Properties explicitly set by a file, the environment or --set (the rest are defaults).
    properties: Mapping[str, str] = field(default_factory=dict)
    listener_name: str = "PLAINTEXT"
    # Kafka properties that were set but that kbroker does not implement (warned about).
    ignored: tuple[str, ...] = ()
    # Every listener served, the first one being the one the fields above describe (they
    # stay its source of truth: __post_init__ rebuilds it from them).
    listeners: tuple[ServedListener, ...] = ()
    # log.dirs: the directories holding partition logs (empty: the data dir alone).  The
    # broker's own metadata always stays in data_dir.
    log_dirs: tuple[Path, ...] = ()

    @property
    def effective_log_dirs(self) -> tuple[Path, ...]:
        return self.log_dirs or (self.data_dir,)

    def __post_init__(self) -> None:
        protocol = self.listeners[0].protocol if self.listeners else "PLAINTEXT"
        first = ServedListener(
            self.listener_name, protocol, self.listen_host, self.listen_port, self.advertised_host, self.advertised_port
        )
        object.__setattr__(self, "listeners", (first, *self.listeners[1:]))
        for name, value in self.properties.items():
            definition = BROKER_CONFIGS.get(name)
            if definition is not None:
                check_definition(definition, value)
            elif name in _DERIVED_COARSE:
                check_value(ConfigType.INT, name, value)
            elif name.startswith("listener.name.") and (per_listener := per_listener_definition(name)) is not None:
                check_definition(replace(per_listener, name=name), value)
        if self.properties.get("kbroker.http.listen"):
            split_host_port(self.properties["kbroker.http.listen"], what="kbroker.http.listen")
        check_cleaner_configs(self)
        check_consumer_group_configs(self)
        check_share_group_configs(self)

    def get(self, name: str) -> str | None:
        if name in self.properties:
            return self.properties[name]
        for coarse, factor in _DERIVED_MS.get(name, ()):
            if coarse in self.properties:
                return str(int(self.properties[coarse]) * factor)
        definition = BROKER_CONFIGS.get(name)
        return definition.default if definition else None

    def get_int(self, name: str) -> int:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return int(value)

    def get_bool(self, name: str) -> bool:
        return (self.get(name) or "").lower() == "true"

    def source_of(self, name: str) -> ConfigSource:
        explicit = name in self.properties or any(
            coarse in self.properties for coarse, _ in _DERIVED_MS.get(name, ())
        )
        if name in ("node.id", "broker.id"):
            explicit = "node.id" in self.properties or "broker.id" in self.properties
        return ConfigSource.STATIC_BROKER_CONFIG if explicit else ConfigSource.DEFAULT_CONFIG

    def describe_value(self, name: str) -> str | None:
        """The value DescribeConfigs reports: the effective one where kbroker derives it."""
        if name == "log.dirs":
            return ",".join(str(d) for d in self.effective_log_dirs)
        if name == "log.dir":
            return str(self.effective_log_dirs[0])
        if name in ("node.id", "broker.id"):
            return str(self.node_id)
        if name == "listeners":
            return ",".join(str(Listener(x.name, x.host, x.port)) for x in self.listeners)
        if name == "advertised.listeners":
            return ",".join(str(Listener(x.name, *x.advertised)) for x in self.listeners)
        if name == "process.roles":
            return BROKER_CONFIGS[name].default
        return self.get(name)

    @property
    def node_id(self) -> int:
        if "node.id" not in self.properties and "broker.id" in self.properties:
            return self.get_int("broker.id")
        return self.get_int("node.id")

    @property
    def advertised(self) -> tuple[str, int]:
        """The first listener's advertised address."""
        return self.listeners[0].advertised

    def advertised_for(self, listener_name: str) -> tuple[str, int]:
        """The advertised address of ``listener_name`` (the listener a request came in on)."""
        for listener in self.listeners:
            if listener.name == listener_name:
                return listener.advertised
        return self.listeners[0].advertised

    def listener_property(self, listener_name: str, name: str) -> str | None:
        """``listener.name.<listener>.<name>`` if set, else ``name`` (Kafka's per-listener override)."""
        value = self.properties.get(f"listener.name.{listener_name.lower()}.{name}")
        return value if value is not None else self.get(name)

    @property
    def listen_address_text(self) -> str:
        return format_address(self.listen_host, self.listen_port)

    def topic_defaults(self) -> dict[str, str]:
        """The topic-level config values a topic without overrides has."""
        out = {}
        for name, (synonym, _type) in TOPIC_CONFIGS.items():
            value = self.get(synonym) if synonym else None
            if value is not None:
                out[name] = value
        return out

    def with_listen_port(self, port: int) -> BrokerConfig:
        """The same config, bound to the actual port (after listening on port 0)."""
        advertised_port = self.advertised_port if self.advertised_port else port
        return replace(self, listen_port=port, advertised_port=advertised_port)

    def with_bound_ports(self, ports: Mapping[str, int]) -> BrokerConfig:
        """The same config with each listener named in ``ports`` bound to its actual port."""
        first = self.listeners[0]
        rest = tuple(x.bound_to(ports[x.name]) if x.name in ports else x for x in self.listeners[1:])
        config = replace(self, listeners=(first, *rest))
        return config.with_listen_port(ports[first.name]) if first.name in ports else config


def build_config(
    *,
    listen: str | None = None,
    advertise: str | None = None,
    data_dir: str | None = None,
    config_file: str | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
    dev: bool = False,
) -> BrokerConfig:
    """Merge the sources in precedence order and validate them.

    Precedence, lowest first: defaults, the ``--dev`` preset, the properties file,
    ``KBROKER_PROP_*``, ``KBROKER_LISTEN``/``KBROKER_ADVERTISE``, ``--set``, then the
    ``listen``/``advertise`` shorthands.  Unknown names raise ConfigError with a suggestion;
    Kafka properties kbroker does not implement end up in ``BrokerConfig.ignored``.
    """
    env = os.environ if environ is None else environ
    props: dict[str, str] = dict(DEV_PRESET) if dev else {}
    origin: dict[str, str] = {name: "--dev" for name in props}
    config_file = config_file or env.get("KBROKER_CONFIG")
    if config_file:
        for name, value in read_properties_file(config_file).items():
            props[name], origin[name] = value, config_file
    for name, (var, value) in _env_properties(env).items():
        props[name], origin[name] = value, var
    shorthands = {"listen": env.get("KBROKER_LISTEN"), "advertise": env.get("KBROKER_ADVERTISE")}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        props[name.strip()], origin[name.strip()] = value.strip(), "--set"
        if name.strip() == "listeners":
            shorthands["listen"] = None
        if name.strip() == "advertised.listeners":
            shorthands["advertise"] = None
    shorthands = {"listen": listen or shorthands["listen"], "advertise": advertise or shorthands["advertise"]}

    ignored = []
    # Kafka properties kbroker consults only to pick its listener (not warned about).
    context = {name: props[name] for name in _LISTENER_CONTEXT if name in props}
    for name in list(props):
        kind = classify_property(name)
        if kind == "unknown":
            raise unknown_property_error(name, origin.get(name, ""))
        if kind == "ignored":
            if name not in _LISTENER_CONTEXT:
                ignored.append(name)
            del props[name]

    if shorthands["listen"]:
        host, port = split_host_port(shorthands["listen"], what="--listen")
        props["listeners"] = str(Listener("PLAINTEXT", host, port))
        context = {}
    served = _broker_listeners({**props, **context})
    if shorthands["advertise"]:
        if len(served) > 1:
            raise ConfigError("--advertise names one listener's address; with several listeners set advertised.listeners")
        host, port = split_host_port(shorthands["advertise"], what="--advertise")
        props["advertised.listeners"] = str(Listener(served[0][0].name, host, port))
    listeners = []
    for listener, protocol in served:
        adv = _advertised_for(props, listener)
        listeners.append(
            ServedListener(
                listener.name, protocol, listener.host, listener.port, adv.host if adv else None, adv.port if adv else None
            )
        )
    first = listeners[0]
    # log.dirs (a comma list) wins over log.dir, as in Kafka.  The metadata goes to
    # --data-dir (or KBROKER_DATA_DIR), else to the first log directory.
    listed = props.get("log.dirs") or props.get("log.dir")
    log_dirs = tuple(Path(d.strip()) for d in (listed or "").split(",") if d.strip())
    if listed is not None and not log_dirs:
        raise ConfigError(f"log.dirs: no directory in {listed!r}")
    if len({os.path.abspath(d) for d in log_dirs}) != len(log_dirs):
        raise ConfigError(f"log.dirs: a directory is listed twice in {listed!r}")
    explicit = data_dir or env.get("KBROKER_DATA_DIR")
    data = explicit or (str(log_dirs[0]) if log_dirs else None)
    if explicit and "log.dirs" not in props:
        log_dirs = ()  # --data-dir alone: it is the only log directory
    return BrokerConfig(
        listen_host=first.host,
        listen_port=first.port,
        advertised_host=first.advertised_host,
        advertised_port=first.advertised_port,
        data_dir=Path(data or "kbroker-data"),
        log_dirs=log_dirs,
        properties=props,
        listener_name=first.name,
        ignored=tuple(sorted(ignored)),
        listeners=tuple(listeners),
    )
