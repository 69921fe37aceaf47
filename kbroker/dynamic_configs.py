"""Dynamic broker configs: AlterConfigs on a BROKER resource, applied live and persisted.

Kafka keeps dynamic broker configs in the cluster metadata; kbroker keeps them in
``<data_dir>/dynamic-broker-configs.json`` (written to a temporary file, fsynced and
renamed over the old one).  Two scopes, as in Kafka: the broker's own (resource name =
its node id, source DYNAMIC_BROKER_CONFIG) wins over the cluster default (resource name
"", source DYNAMIC_DEFAULT_BROKER_CONFIG), which wins over the static properties.

Only properties that Kafka updates dynamically *and* kbroker applies live are accepted
(:data:`DYNAMIC_BROKER_CONFIGS`: the log cleaner's, and the broker-wide defaults of topic
configs, which Kafka's DynamicLogConfig reconfigures and kbroker applies at once to every
topic without its own override); others are refused with INVALID_REQUEST, as Kafka
refuses a read-only one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from kbroker.config import BROKER_CONFIGS, TOPIC_CONFIGS, BrokerConfig, ConfigSource

FILE_NAME = "dynamic-broker-configs.json"
DEFAULT_SCOPE = ""

# Cluster-wide dynamic in Kafka (LogCleaner.ReconfigurableConfigs) and live here.
DYNAMIC_CLEANER_CONFIGS = frozenset(
    {
        "log.cleaner.threads",
        "log.cleaner.dedupe.buffer.size",
        "log.cleaner.io.buffer.size",
        "log.cleaner.io.buffer.load.factor",
        "log.cleaner.io.max.bytes.per.second",
        "log.cleaner.backoff.ms",
    }
)
# The broker properties behind topic configs (Kafka's DynamicLogConfig): a new value is
# the default of every topic that does not override it, applied to its logs at once.
DYNAMIC_TOPIC_DEFAULT_CONFIGS = frozenset(
    synonym for synonym, _type in TOPIC_CONFIGS.values() if synonym is not None and synonym in BROKER_CONFIGS
)
DYNAMIC_BROKER_CONFIGS = DYNAMIC_CLEANER_CONFIGS | DYNAMIC_TOPIC_DEFAULT_CONFIGS


class DynamicConfigs:
    """The two scopes of dynamic values; see the module doc.  Loop thread only."""

    def __init__(self, data_dir: Path, node_id: int) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.node_scope = str(node_id)
        self.scopes: dict[str, dict[str, str]] = {DEFAULT_SCOPE: {}, self.node_scope: {}}
        try:
            loaded = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        for scope in (DEFAULT_SCOPE, self.node_scope):
            values = loaded.get(scope, {}) if isinstance(loaded, dict) else {}
            self.scopes[scope] = {
                str(k): str(v) for k, v in values.items() if k in DYNAMIC_BROKER_CONFIGS
            }

    def chain(self, name: str) -> list[tuple[str, ConfigSource]]:
        """The dynamic values of ``name``, the winning one first (per-broker, then the
        cluster default): the head of DescribeConfigs' synonym list."""
        out = []
        if name in self.scopes[self.node_scope]:
            out.append((self.scopes[self.node_scope][name], ConfigSource.DYNAMIC_BROKER_CONFIG))
        if name in self.scopes[DEFAULT_SCOPE]:
            out.append(
                (self.scopes[DEFAULT_SCOPE][name], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG)
            )
        return out

    def lookup(self, name: str) -> tuple[str, ConfigSource] | None:
        """The dynamic value of ``name`` and its source, if any."""
        if name in self.scopes[self.node_scope]:
            return self.scopes[self.node_scope][name], ConfigSource.DYNAMIC_BROKER_CONFIG
        if name in self.scopes[DEFAULT_SCOPE]:
            return self.scopes[DEFAULT_SCOPE][name], ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG
        return None

    def effective(self, static: BrokerConfig, scopes: dict[str, dict[str, str]] | None = None) -> BrokerConfig:
        """``static`` with the dynamic values laid over it (validated: ConfigError)."""
        scopes = self.scopes if scopes is None else scopes
        merged = {**static.properties, **scopes[DEFAULT_SCOPE], **scopes[self.node_scope]}
        return dataclasses.replace(static, properties=merged)

    def replace(self, scope: str, values: dict[str, str]) -> None:
        """Make ``values`` the whole set of ``scope`` and persist it."""
        self.scopes[scope] = dict(values)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.scopes, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
