"""BROKER_LOGGER config resources: the broker's Python loggers, their levels read and
changed live by DescribeConfigs / IncrementalAlterConfigs, as Kafka does with log4j.

Kafka's level names map onto Python's levels: TRACE (and ALL) is 5, below DEBUG; WARN is
WARNING; FATAL is CRITICAL; OFF is above CRITICAL.  Changes are not persisted (Kafka's
are not either: a restart returns to the logging configuration).  The root logger is
named "root", as in log4j.
"""

from __future__ import annotations

import logging

from kbroker.errors import KafkaError
from kbroker.wire.errors import ErrorCode

RESOURCE_BROKER_LOGGER = 8
# DescribeConfigs config_source of a broker logger's level.
DYNAMIC_BROKER_LOGGER_CONFIG = 6
ROOT_LOGGER = "root"
TRACE = 5
OFF = logging.CRITICAL + 10
# Kafka's names (LogLevelConfig.VALID_LOG_LEVELS) -> Python levels.
LEVELS: dict[str, int] = {
    "ALL": TRACE,
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "OFF": OFF,
}
_NAMES = {TRACE: "TRACE", logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARN", logging.ERROR: "ERROR", logging.CRITICAL: "FATAL", OFF: "OFF"}


def level_name(level: int) -> str:
    """The Kafka name of a Python level (the nearest one at or below it)."""
    for value in sorted(_NAMES, reverse=True):
        if level >= value:
            return _NAMES[value]
    return "TRACE"


def _logger(name: str) -> logging.Logger | None:
    if name == ROOT_LOGGER:
        return logging.getLogger()
    found = logging.Logger.manager.loggerDict.get(name)
    return found if isinstance(found, logging.Logger) else None


def current_levels() -> dict[str, str]:
    """logger name -> effective level name, every existing logger, root first."""
    out = {ROOT_LOGGER: level_name(logging.getLogger().getEffectiveLevel())}
    for name in sorted(logging.Logger.manager.loggerDict):
        found = _logger(name)
        if found is not None:
            out[name] = level_name(found.getEffectiveLevel())
    return out


OP_SET, OP_DELETE = 0, 1


def check_change(name: str, operation: int, value: str | None) -> None:
    """KafkaError unless ``operation`` on logger ``name`` is one Kafka accepts."""
    if operation not in (OP_SET, OP_DELETE):
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Operation {operation} is not allowed for the BROKER_LOGGER resource")
    if _logger(name) is None:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Logger {name} does not exist!")
    if operation == OP_DELETE and name == ROOT_LOGGER:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Removing the log level of the root logger is not allowed")
    if operation == OP_SET and (value or "").upper() not in LEVELS:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            f"Cannot set the log level of {name} to {value} as it is not a supported log level. Valid log levels are {', '.join(LEVELS)}",
        )


def apply_change(name: str, operation: int, value: str | None) -> None:
    """SET: the logger's level; DELETE: back to inheriting its parent's (checked first)."""
    found = _logger(name)
    assert found is not None
    found.setLevel(LEVELS[(value or "").upper()] if operation == OP_SET else logging.NOTSET)
