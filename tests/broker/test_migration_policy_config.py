"""group.consumer.migration.policy at start-up: Kafka's four values, default bidirectional."""

from __future__ import annotations

import pytest
from kbroker.coordinator.config import GroupConfig

from kbroker.config import ConfigError, build_config, consumer_group_settings


def test_default_is_bidirectional() -> None:
    settings = consumer_group_settings(build_config(overrides=[], environ={}))
    assert settings["group_consumer_migration_policy"] == "bidirectional"


@pytest.mark.parametrize("policy", ["disabled", "upgrade", "downgrade", "bidirectional"])
def test_each_policy_reaches_the_coordinator(policy: str) -> None:
    config = build_config(overrides=[f"group.consumer.migration.policy={policy}"], environ={})
    assert GroupConfig(**consumer_group_settings(config)).group_consumer_migration_policy == policy


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ConfigError):
        build_config(overrides=["group.consumer.migration.policy=sideways"], environ={})
    with pytest.raises(ValueError):
        GroupConfig(group_consumer_migration_policy="sideways")
