"""Broker configuration: Kafka's property names, typed, with defaults and sources.

Sources, lowest precedence first: built-in defaults (Kafka 4.x's, except where a single
node needs otherwise, noted beside the entry), the ``--config`` properties file, environment
variables, and ``--set key=value`` flags.  DescribeConfigs reports a property as
DEFAULT_CONFIG when nothing set it and STATIC_BROKER_CONFIG otherwise.

Topic-level configs (``retention.ms``...) default to their broker-level synonym
(``log.retention.ms``...), as in Kafka: :data:`TOPIC_CONFIGS` maps each to it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

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
    name: str
    type: ConfigType
    default: str | None
    read_only: bool = True
    sensitive: bool = False


def _d(name: str, type_: ConfigType, default: str | None, read_only: bool = True) -> ConfigDef:
    return ConfigDef(name, type_, default, read_only)


_T = ConfigType
# Broker properties kbroker reads or reports.  Defaults are Kafka 4.x's unless noted.
BROKER_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in [
        _d("node.id", _T.INT, "1"),
        _d("broker.id", _T.INT, "1"),
        _d("process.roles", _T.LIST, "broker,controller"),
        _d("num.partitions", _T.INT, "1"),
        _d("default.replication.factor", _T.INT, "1"),
        _d("auto.create.topics.enable", _T.BOOLEAN, "true"),
        _d("delete.topic.enable", _T.BOOLEAN, "true"),
        _d("message.max.bytes", _T.INT, "1048588"),
        # Largest request frame accepted; a larger size prefix closes the connection.
        _d("socket.request.max.bytes", _T.INT, "104857600"),
        _d("connections.max.idle.ms", _T.LONG, "600000"),
        # Kafka's default is unlimited; each connection costs a file descriptor and a task,
        # so kbroker refuses connections past this many (new ones are closed at once).
        _d("max.connections", _T.INT, "10000"),
        _d("log.dirs", _T.STRING, None),
        _d("log.segment.bytes", _T.INT, "1073741824"),
        _d("log.roll.ms", _T.LONG, "604800000"),
        _d("log.retention.ms", _T.LONG, "604800000"),
        _d("log.retention.bytes", _T.LONG, "-1"),
        _d("log.retention.check.interval.ms", _T.LONG, "300000"),
        _d("log.flush.offset.checkpoint.interval.ms", _T.INT, "60000"),
        _d("log.flush.start.offset.checkpoint.interval.ms", _T.INT, "60000"),
        _d("log.flush.interval.messages", _T.LONG, str(LONG_MAX)),
        _d("log.flush.interval.ms", _T.LONG, str(LONG_MAX)),
        _d("log.index.interval.bytes", _T.INT, "4096"),
        _d("log.index.size.max.bytes", _T.INT, "10485760"),
        _d("log.message.timestamp.type", _T.STRING, "CreateTime"),
        _d("log.cleanup.policy", _T.LIST, "delete"),
        _d("log.cleaner.delete.retention.ms", _T.LONG, "86400000"),
        _d("log.cleaner.min.compaction.lag.ms", _T.LONG, "0"),
        _d("log.cleaner.max.compaction.lag.ms", _T.LONG, str(LONG_MAX)),
        _d("log.cleaner.min.cleanable.ratio", _T.DOUBLE, "0.5"),
        # -- log cleaner (issue 13); ranges in CLEANER_CONFIG_RANGES --------------------
        _d("log.cleaner.enable", _T.BOOLEAN, "true"),
        _d("log.cleaner.threads", _T.INT, "1"),
        _d("log.cleaner.backoff.ms", _T.LONG, "15000"),
        _d("log.cleaner.dedupe.buffer.size", _T.LONG, "134217728"),
        _d("log.cleaner.io.buffer.size", _T.INT, "524288"),
        _d("log.cleaner.io.buffer.load.factor", _T.DOUBLE, "0.9"),
        _d("log.cleaner.io.max.bytes.per.second", _T.DOUBLE, "1.7976931348623157E308"),
        _d("transaction.state.log.segment.bytes", _T.INT, "104857600"),
        _d("producer.id.expiration.check.interval.ms", _T.INT, "600000"),
        # -- end of log cleaner ----------------------------------------------------------
        _d("log.segment.delete.delay.ms", _T.LONG, "60000"),
        _d("log.message.timestamp.before.max.ms", _T.LONG, str(LONG_MAX)),
        _d("log.message.timestamp.after.max.ms", _T.LONG, "3600000"),
        _d("compression.type", _T.STRING, "producer"),
        _d("min.insync.replicas", _T.INT, "1"),
        _d("unclean.leader.election.enable", _T.BOOLEAN, "false"),
        _d("group.initial.rebalance.delay.ms", _T.INT, "3000"),
        _d("group.min.session.timeout.ms", _T.INT, "6000"),
        _d("group.max.session.timeout.ms", _T.INT, "1800000"),
        _d("group.max.size", _T.INT, str(INT_MAX)),
        _d("offsets.retention.minutes", _T.INT, "10080"),
        _d("offsets.retention.check.interval.ms", _T.LONG, "600000"),
        _d("offsets.topic.num.partitions", _T.INT, "50"),
        # Kafka's default is 3; a single node can only hold one replica.
        _d("offsets.topic.replication.factor", _T.SHORT, "1"),
        _d("offsets.topic.segment.bytes", _T.INT, "104857600"),
        _d("transaction.state.log.num.partitions", _T.INT, "50"),
        _d("transaction.state.log.replication.factor", _T.SHORT, "1"),
        _d("transaction.max.timeout.ms", _T.INT, "900000"),
        _d("transaction.abort.timed.out.transaction.cleanup.interval.ms", _T.INT, "10000"),
        _d("transactional.id.expiration.ms", _T.INT, "604800000"),
        _d("producer.id.expiration.ms", _T.INT, "86400000"),
        # Fault injection for client test suites (0 = off): every Nth partition append of a
        # Produce is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND although it was stored, so the
        # client retries a batch the log already has (idempotence must absorb it).
        _d("kbroker.test.fail.produce.after.append.every", _T.INT, "0"),
    ]
}

# Kafka 4's range validators of the cleaner's broker properties: name -> (min, max).
CLEANER_CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "log.cleaner.threads": (0, INT_MAX),
    "log.cleaner.backoff.ms": (0, LONG_MAX),
    "log.cleaner.io.buffer.size": (0, INT_MAX),
    "log.cleaner.min.cleanable.ratio": (0.0, 1.0),
    "log.cleaner.delete.retention.ms": (0, LONG_MAX),
    "log.cleaner.min.compaction.lag.ms": (0, LONG_MAX),
    "log.cleaner.max.compaction.lag.ms": (1, LONG_MAX),
    "offsets.topic.segment.bytes": (1, INT_MAX),
    "transaction.state.log.segment.bytes": (1, INT_MAX),
    "producer.id.expiration.ms": (1, INT_MAX),
    "producer.id.expiration.check.interval.ms": (1, INT_MAX),
}
# KafkaConfig.validateValues: the dedupe buffer must exceed 1 MiB per cleaner thread.
MIN_DEDUPE_BUFFER_PER_THREAD_BYTES = 1024 * 1024


def check_cleaner_configs(config: BrokerConfig) -> None:
    """Raise ConfigError as Kafka 4 refuses bad cleaner properties at start-up."""
    for name, (low, high) in CLEANER_CONFIG_RANGES.items():
        raw = config.get(name) or "0"
        value = float(raw) if BROKER_CONFIGS[name].type is ConfigType.DOUBLE else int(raw)
        if not low <= value <= high:
            raise ConfigError(f"Invalid value {config.get(name)} for configuration {name}: Value must be at least {low}")
    threads = config.get_int("log.cleaner.threads")
    if threads > 0 and config.get_int("log.cleaner.dedupe.buffer.size") // threads <= MIN_DEDUPE_BUFFER_PER_THREAD_BYTES:
        raise ConfigError("log.cleaner.dedupe.buffer.size must be at least 1MB per cleaner thread.")


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


class ConfigError(ValueError):
    """A property has a value of the wrong type or an unknown name where names are checked."""


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java-style ``.properties`` text (``key=value`` or ``key: value``, # and ! comments)."""
    props: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep < 0:
            props[line] = ""
        else:
            props[line[:sep].strip()] = line[sep + 1 :].strip()
    return props


def env_properties(environ: Mapping[str, str]) -> dict[str, str]:
    """``KBROKER_PROP_LOG_RETENTION_MS=1000`` -> ``log.retention.ms=1000``.

    As Confluent's images do: ``_`` becomes ``.`` and ``__`` becomes ``_``.
    """
    props = {}
    for key, value in environ.items():
        if key.startswith("KBROKER_PROP_"):
            name = key[len("KBROKER_PROP_") :].lower().replace("__", "\0").replace("_", ".")
            props[name.replace("\0", "_")] = value
    return props


def check_value(type_: ConfigType, name: str, value: str) -> None:
    """Raise ConfigError when ``value`` does not parse as ``type_``."""
    try:
        if type_ in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
            int(value)
        elif type_ is ConfigType.DOUBLE:
            float(value)
        elif type_ is ConfigType.BOOLEAN and value.lower() not in ("true", "false"):
            raise ValueError(value)
    except ValueError:
        raise ConfigError(f"invalid value {value!r} for {name} ({type_.name.lower()})") from None


@dataclass(frozen=True)
class BrokerConfig:
    """Everything the broker needs to start; immutable once built."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 9092
    advertised_host: str | None = None
    advertised_port: int | None = None
    data_dir: Path = Path("kbroker-data")
    # Properties explicitly set by a file, the environment or --set (the rest are defaults).
    properties: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.properties.items():
            definition = BROKER_CONFIGS.get(name)
            if definition is not None:
                check_value(definition.type, name, value)
        check_cleaner_configs(self)

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
        return ConfigSource.STATIC_BROKER_CONFIG if explicit else ConfigSource.DEFAULT_CONFIG

    @property
    def node_id(self) -> int:
        return self.get_int("node.id")

    @property
    def advertised(self) -> tuple[str, int]:
        host = self.advertised_host or self.listen_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return host, self.advertised_port or self.listen_port

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
        return BrokerConfig(
            self.listen_host, port, self.advertised_host, advertised_port, self.data_dir, self.properties
        )


def split_host_port(text: str, *, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"{what} must be HOST:PORT, got {text!r}")
    host = host.strip("[]")
    return host or "127.0.0.1", int(port)


def build_config(
    *,
    listen: str | None = None,
    advertise: str | None = None,
    data_dir: str | None = None,
    config_file: str | None = None,
    overrides: Iterable[str] = (),
    environ: Mapping[str, str] | None = None,
) -> BrokerConfig:
    """Merge the sources in precedence order and validate them."""
    env = os.environ if environ is None else environ
    props: dict[str, str] = {}
    config_file = config_file or env.get("KBROKER_CONFIG")
    if config_file:
        props.update(parse_properties(Path(config_file).read_text()))
    props.update(env_properties(env))
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--set takes key=value, got {item!r}")
        props[name.strip()] = value.strip()

    listen = listen or env.get("KBROKER_LISTEN") or "127.0.0.1:9092"
    host, port = split_host_port(listen, what="--listen")
    advertise = advertise or env.get("KBROKER_ADVERTISE")
    adv_host, adv_port = split_host_port(advertise, what="--advertise") if advertise else (None, None)
    data = data_dir or env.get("KBROKER_DATA_DIR") or props.get("log.dirs") or props.get("log.dir")
    return BrokerConfig(
        listen_host=host,
        listen_port=port,
        advertised_host=adv_host,
        advertised_port=adv_port,
        data_dir=Path(data.split(",")[0] if data else "kbroker-data"),
        properties=props,
    )
