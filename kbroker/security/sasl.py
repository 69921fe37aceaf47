"""SASL authentication (not yet: the next commit)."""

from __future__ import annotations

from typing import Any

from kbroker.config import BrokerConfig, ConfigError, ServedListener

SaslListener = Any
Authenticator = Any


def build_sasl_listener(config: BrokerConfig, listener: ServedListener, scram_store: object) -> Any:
    raise ConfigError(f"listener {listener.name}: SASL listeners are not served yet")
