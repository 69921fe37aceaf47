"""Per-topic log configuration, named after Kafka's topic-level properties."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

DAY_MS = 24 * 60 * 60 * 1000

# Kafka property name -> LogConfig field.  Properties not listed are accepted and ignored
# by from_properties (a topic may carry settings that only other components read).
_PROPERTY_FIELDS: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "segment.index.bytes": "segment_index_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "max.message.bytes": "max_message_bytes",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "message.timestamp.type": "message_timestamp_type",
    "file.delete.delay.ms": "file_delete_delay_ms",
    "cleanup.policy": "cleanup_policy",
    "kbroker.fsync.every.append": "fsync_every_append",
}

# Kafka's "never" for flush.messages / flush.ms is Long.MAX_VALUE; we map it to None.
_LONG_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LogConfig:
    """How one partition's log is segmented, retained and flushed.

    Defaults are Kafka's.  ``flush_messages`` / ``flush_ms`` of None mean "leave it
    to the page cache" (fsync still happens on segment roll and clean shutdown);
    ``fsync_every_append`` fsyncs the segment before an append returns.
    ``cleanup_policy`` is recorded only: compaction is not implemented, so "compact"
    behaves like "delete" without the time/size deletion (Kafka's behaviour for a
    compact-only topic).
    """

    segment_bytes: int = 1024 * 1024 * 1024
    segment_ms: int = 7 * DAY_MS
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * DAY_MS
    retention_bytes: int = -1
    max_message_bytes: int = 1048588
    flush_messages: int | None = None
    flush_ms: int | None = None
    message_timestamp_type: str = "CreateTime"
    file_delete_delay_ms: int = 60_000
    cleanup_policy: str = "delete"
    fsync_every_append: bool = False

    def __post_init__(self) -> None:
        if self.segment_bytes < 14:
            raise ValueError("segment_bytes must be at least 14")
        if self.segment_ms < 1:
            raise ValueError("segment_ms must be positive")
        if self.segment_index_bytes < 8:
            raise ValueError("segment_index_bytes must hold at least one entry")
        if self.index_interval_bytes < 0:
            raise ValueError("index_interval_bytes must be >= 0")
        if self.max_message_bytes < 0:
            raise ValueError("max_message_bytes must be >= 0")
        if self.message_timestamp_type not in ("CreateTime", "LogAppendTime"):
            raise ValueError(f"bad message_timestamp_type {self.message_timestamp_type!r}")
        if self.flush_messages is not None and self.flush_messages < 1:
            raise ValueError("flush_messages must be >= 1 or None")
        if self.flush_ms is not None and self.flush_ms < 0:
            raise ValueError("flush_ms must be >= 0 or None")

    @property
    def is_log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def deletes_by_retention(self) -> bool:
        """True unless cleanup.policy is compact-only."""
        return "delete" in self.cleanup_policy.split(",")

    @classmethod
    def from_properties(cls, props: dict[str, str], base: LogConfig | None = None) -> LogConfig:
        """Build from Kafka property names (``"segment.bytes": "1048576"``) over ``base``."""
        types = {f.name: f.type for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, raw in props.items():
            name = _PROPERTY_FIELDS.get(key)
            if name is None:
                continue
            kind = str(types[name])
            value: Any
            if "bool" in kind:
                value = raw.strip().lower() == "true"
            elif "int" in kind:
                number = int(raw)
                if name in ("flush_messages", "flush_ms") and number >= _LONG_MAX:
                    value = None
                else:
                    value = number
            else:
                value = raw.strip()
            changes[name] = value
        return replace(base if base is not None else cls(), **changes)
