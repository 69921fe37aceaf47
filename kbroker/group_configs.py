"""Per-group configs: the GROUP config resource (type 32) of Describe/IncrementalAlterConfigs.

Kafka 4 keeps them in the cluster metadata; kbroker keeps them in
``<data_dir>/group-configs.json`` (temporary file, fsync, rename).  The names served are
the consumer-group ones Kafka's ``GroupConfig`` defines; each defaults to its broker
property and must lie within the broker's min/max bounds (INVALID_CONFIG otherwise).
The coordinator reads them through ``GroupConfigStore.int_values`` at every heartbeat,
so a change applies from the group's next heartbeat on.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kbroker.config import BrokerConfig, ConfigSource, ConfigType
from kbroker.coordinator.share_config import valid_auto_offset_reset
from kbroker.errors import KafkaError
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.describe_configs_response import (
    DescribeConfigsResourceResult,
    DescribeConfigsResult,
    DescribeConfigsSynonym,
)

FILE_NAME = "group-configs.json"
RESOURCE_GROUP = 32
GROUP_CONFIG_SOURCE = 8  # Kafka's ConfigSource.GROUP_CONFIG

# group config -> (broker default, broker minimum, broker maximum)
GROUP_CONFIGS: dict[str, tuple[str, str, str]] = {
    "consumer.session.timeout.ms": (
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
    ),
    "consumer.heartbeat.interval.ms": (
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
    ),
    # KIP-932 share groups
    "share.session.timeout.ms": (
        "group.share.session.timeout.ms",
        "group.share.min.session.timeout.ms",
        "group.share.max.session.timeout.ms",
    ),
    "share.heartbeat.interval.ms": (
        "group.share.heartbeat.interval.ms",
        "group.share.min.heartbeat.interval.ms",
        "group.share.max.heartbeat.interval.ms",
    ),
    "share.record.lock.duration.ms": (
        "group.share.record.lock.duration.ms",
        "group.share.min.record.lock.duration.ms",
        "group.share.max.record.lock.duration.ms",
    ),
    "share.delivery.count.limit": (
        "group.share.delivery.count.limit",
        "group.share.min.delivery.count.limit",
        "group.share.max.delivery.count.limit",
    ),
}
# string group configs -> (default, allowed values).  share.auto.offset.reset: where a
# share group starts reading a partition it never read (Kafka's default: latest).
STRING_GROUP_CONFIGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "share.auto.offset.reset": ("latest", ("latest", "earliest", "by_duration:<ISO-8601 duration>")),
}


class GroupConfigStore:
    """group id -> its overrides; loop thread only."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.groups: dict[str, dict[str, str]] = {}
        try:
            loaded = json.loads(self.path.read_text())
        except FileNotFoundError:
            return
        if isinstance(loaded, dict):
            for group_id, values in loaded.items():
                if isinstance(values, dict):
                    kept = {
                        str(k): str(v) for k, v in values.items() if k in GROUP_CONFIGS or k in STRING_GROUP_CONFIGS
                    }
                    if kept:
                        self.groups[str(group_id)] = kept

    def get(self, group_id: str) -> dict[str, str]:
        return dict(self.groups.get(group_id, {}))

    def int_values(self, group_id: str) -> dict[str, int]:
        return {k: int(v) for k, v in self.groups.get(group_id, {}).items() if k in GROUP_CONFIGS}

    def replace(self, group_id: str, values: dict[str, str]) -> None:
        if values:
            self.groups[group_id] = dict(values)
        else:
            self.groups.pop(group_id, None)
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.groups, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def validate_group_configs(values: dict[str, str], broker: BrokerConfig) -> None:
    """INVALID_CONFIG for an unknown name, a non-integer, or a value outside the broker's
    bounds (Kafka's GroupConfig.validate)."""
    for name, value in values.items():
        if name in STRING_GROUP_CONFIGS:
            allowed = STRING_GROUP_CONFIGS[name][1]
            if not valid_auto_offset_reset(value):
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for {name}: one of {', '.join(allowed)}")
            continue
        if name not in GROUP_CONFIGS:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown group config name: {name}")
        try:
            number = int(value)
        except ValueError:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for {name}") from None
        _default, low, high = GROUP_CONFIGS[name]
        if not broker.get_int(low) <= number <= broker.get_int(high):
            raise KafkaError(
                ErrorCode.INVALID_CONFIG,
                f"{name} must be between {low} ({broker.get_int(low)}) and {high} ({broker.get_int(high)})",
            )


def describe_group_configs(
    store: GroupConfigStore, broker: BrokerConfig, group_id: str, keys: list[str] | None, with_synonyms: bool
) -> DescribeConfigsResult:
    result = DescribeConfigsResult(
        error_code=ErrorCode.NONE, error_message=None, resource_type=RESOURCE_GROUP, resource_name=group_id
    )
    overrides = store.get(group_id)
    for name, (default_name, _low, _high) in sorted(GROUP_CONFIGS.items()):
        if keys is not None and name not in keys:
            continue
        chain: list[DescribeConfigsSynonym] = []
        if name in overrides:
            chain.append(DescribeConfigsSynonym(name=name, value=overrides[name], source=GROUP_CONFIG_SOURCE))
        chain.append(
            DescribeConfigsSynonym(
                name=default_name, value=broker.get(default_name), source=broker.source_of(default_name)
            )
        )
        first = chain[0]
        result.configs.append(
            DescribeConfigsResourceResult(
                name=name,
                value=first.value,
                read_only=False,
                config_source=first.source if first.source != ConfigSource.UNKNOWN else ConfigSource.DEFAULT_CONFIG,
                is_sensitive=False,
                synonyms=chain if with_synonyms else [],
                config_type=ConfigType.INT,
                documentation=None,
            )
        )
    for name, (default, _allowed) in sorted(STRING_GROUP_CONFIGS.items()):
        if keys is not None and name not in keys:
            continue
        value = overrides.get(name)
        synonyms = [DescribeConfigsSynonym(name=name, value=value, source=GROUP_CONFIG_SOURCE)] if value is not None else []
        result.configs.append(
            DescribeConfigsResourceResult(
                name=name,
                value=value if value is not None else default,
                read_only=False,
                config_source=GROUP_CONFIG_SOURCE if value is not None else ConfigSource.DEFAULT_CONFIG,
                is_sensitive=False,
                synonyms=synonyms if with_synonyms else [],
                config_type=ConfigType.STRING,
                documentation=None,
            )
        )
    return result
