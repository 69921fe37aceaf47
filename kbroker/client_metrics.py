"""Client-metrics subscriptions: the CLIENT_METRICS config resource (type 16, KIP-714).

A subscription is a named resource with three configs, checked as Kafka's
``ClientMetricsConfigs`` checks them:

- ``metrics``: a list of metric-name prefixes the matched clients are asked to push
  (``*`` = all of them; empty = none);
- ``interval.ms``: the push interval, 100 to 3,600,000 (default 300,000);
- ``match``: a list of ``selector=regex`` pairs a client must all fully match (none: every
  client).  Selectors: ``client_instance_id``, ``client_id``, ``client_software_name``,
  ``client_software_version``, ``client_source_address``, ``client_source_port``.

An unknown config name, an empty subscription name or an interval out of range is
INVALID_REQUEST; a bad selector or regex INVALID_CONFIG.  Subscriptions are durable
(``client-metrics-configs.json`` in the data dir, written atomically); a subscription
whose every config is deleted no longer exists.  Every change bumps ``version``, which
tells the telemetry manager (``kbroker.telemetry``) to recompute its clients' subscriptions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from kbroker.config import ConfigSource, ConfigType
from kbroker.errors import KafkaError
from kbroker.metadata import _write_atomically
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)

RESOURCE_CLIENT_METRICS = 16
CLIENT_METRICS_CONFIG_SOURCE = 7  # Kafka's ConfigSource.CLIENT_METRICS_CONFIG
FILE_NAME = "client-metrics-configs.json"

METRICS = "metrics"
INTERVAL_MS = "interval.ms"
MATCH = "match"
ALL_METRICS = "*"
DEFAULT_INTERVAL_MS = 300_000
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 3_600_000
CONFIG_TYPES = {METRICS: ConfigType.LIST, INTERVAL_MS: ConfigType.INT, MATCH: ConfigType.LIST}
DEFAULTS = {METRICS: "", INTERVAL_MS: str(DEFAULT_INTERVAL_MS), MATCH: ""}
SELECTORS = (
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
)
# Bound of one match regex (characters): patterns come from admins, but compiling and
# matching them runs on the event loop for every client that asks for its subscription.
MAX_PATTERN_CHARS = 1024


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_match(value: str) -> dict[str, re.Pattern[str]]:
    """``selector=regex`` pairs; KafkaError INVALID_CONFIG as Kafka refuses them."""
    out: dict[str, re.Pattern[str]] = {}
    for pair in _items(value):
        selector, sep, pattern = pair.partition("=")
        selector = selector.strip()
        if not sep or not pattern.strip():
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Illegal client matching pattern: {pair}")
        if selector not in SELECTORS:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid client selector {selector}")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Client matching pattern for {selector} is longer than {MAX_PATTERN_CHARS}")
        try:
            out[selector] = re.compile(pattern.strip())
        except re.error as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Illegal regex pattern {pattern} for {selector}: {exc}") from None
    return out


def validate(name: str, values: dict[str, str]) -> None:
    """KafkaError unless ``values`` are a valid subscription named ``name``."""
    if not name:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Subscription name can't be empty")
    for key in values:
        if key not in CONFIG_TYPES:
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown client metrics configuration: {key}")
    if INTERVAL_MS in values:
        try:
            interval = int(values[INTERVAL_MS])
        except ValueError:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {values[INTERVAL_MS]} for configuration {INTERVAL_MS}") from None
        if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
            raise KafkaError(
                ErrorCode.INVALID_REQUEST,
                f"Invalid value {interval} for {INTERVAL_MS}, interval must be between 100 and 3600000 (1 hour)",
            )
    if MATCH in values:
        parse_match(values[MATCH])


class Subscription:
    """One subscription's parsed configs."""

    __slots__ = ("name", "metrics", "interval_ms", "match")

    def __init__(self, name: str, values: dict[str, str]) -> None:
        self.name = name
        self.metrics = _items(values.get(METRICS, ""))
        self.interval_ms = int(values.get(INTERVAL_MS, DEFAULT_INTERVAL_MS))
        self.match = parse_match(values.get(MATCH, ""))

    def matches(self, client: dict[str, str]) -> bool:
        return all(pattern.fullmatch(client.get(selector, "")) is not None for selector, pattern in self.match.items())


class ClientMetricsStore:
    """Subscription name -> its configs; loop thread only."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.values: dict[str, dict[str, str]] = {}
        self.subscriptions: dict[str, Subscription] = {}
        self.version = 0
        try:
            loaded = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        for name, values in loaded.items() if isinstance(loaded, dict) else ():
            kept = {str(k): str(v) for k, v in values.items()} if isinstance(values, dict) else {}
            validate(str(name), kept)
            if kept:
                self.values[str(name)] = kept
                self.subscriptions[str(name)] = Subscription(str(name), kept)

    def get(self, name: str) -> dict[str, str]:
        return dict(self.values.get(name, {}))

    def replace(self, name: str, values: dict[str, str]) -> None:
        """Make ``values`` (validated) the whole subscription and persist it."""
        updated = dict(self.values)
        if values:
            updated[name] = dict(values)
        else:
            updated.pop(name, None)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.path, json.dumps(updated, sort_keys=True).encode())
        self.values = updated
        if values:
            self.subscriptions[name] = Subscription(name, values)
        else:
            self.subscriptions.pop(name, None)
        self.version += 1


def describe_client_metrics(
    store: ClientMetricsStore, name: str, keys: list[str] | None, with_synonyms: bool
) -> DescribeConfigsResult:
    """A subscription's configs as Kafka 4 describes them: all three, those set with source
    CLIENT_METRICS_CONFIG (and that one synonym), the others with their defaults and source
    DEFAULT_CONFIG (a subscription that does not exist shows the defaults)."""
    result = DescribeConfigsResult(
        error_code=ErrorCode.NONE, error_message=None, resource_type=RESOURCE_CLIENT_METRICS, resource_name=name
    )
    if not name:
        result.error_code, result.error_message = ErrorCode.INVALID_REQUEST, "Client metrics subscription name must not be empty"
        return result
    values = store.get(name)
    for key, config_type in sorted(CONFIG_TYPES.items()):
        if keys is not None and key not in keys:
            continue
        is_set = key in values
        value = values[key] if is_set else DEFAULTS[key]
        synonyms = [DescribeConfigsSynonym(name=key, value=value, source=CLIENT_METRICS_CONFIG_SOURCE)] if is_set and with_synonyms else []
        result.configs.append(
            DescribeConfigsResourceResult(
                name=key,
                value=value,
                read_only=False,
                config_source=CLIENT_METRICS_CONFIG_SOURCE if is_set else ConfigSource.DEFAULT_CONFIG,
                is_sensitive=False,
                synonyms=synonyms,
                config_type=config_type,
                documentation=None,
            )
        )
    return result
