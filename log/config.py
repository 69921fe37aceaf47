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
    "delete.retention.ms": "delete_retention_ms",
    "min.compaction.lag.ms": "min_compaction_lag_ms",
    "max.compaction.lag.ms": "max_compaction_lag_ms",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
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
    ``cleanup_policy`` "compact" hands the log to the cleaner (``log.cleaner``) and,
    without "delete", turns off deletion by time and size (Kafka's behaviour).
    ``delete_retention_ms`` is how long a tombstone or transaction marker outlives
    the cleaning pass that first saw it; ``min/max_compaction_lag_ms`` bound how soon
    and how late a record becomes cleanable; ``min_cleanable_dirty_ratio`` is the
    share of uncleaned bytes that makes a log worth cleaning.
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
    delete_retention_ms: int = DAY_MS
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = _LONG_MAX
    min_cleanable_dirty_ratio: float = 0.5

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
        if self.delete_retention_ms < 0 or self.min_compaction_lag_ms < 0:
            raise ValueError("delete_retention_ms and min_compaction_lag_ms must be >= 0")
        if self.max_compaction_lag_ms < 1:
            raise ValueError("max_compaction_lag_ms must be >= 1")
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise ValueError("min_cleanable_dirty_ratio must be in [0, 1]")

    @property
    def is_log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @property
    def deletes_by_retention(self) -> bool:
        """True unless cleanup.policy is compact-only."""
        return "delete" in self.cleanup_policy.split(",")

    @property
    def max_segment_ms(self) -> int:
        """How old the active segment may get before the next append rolls it: a
        compacted log also rolls by ``max.compaction.lag.ms`` (Kafka's maxSegmentMs),
        since the active segment is never cleaned."""
        if self.is_compacted and self.max_compaction_lag_ms > 0:
            return min(self.max_compaction_lag_ms, self.segment_ms)
        return self.segment_ms

    @property
    def is_compacted(self) -> bool:
        """True if cleanup.policy includes compact."""
        return "compact" in self.cleanup_policy.split(",")

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
            elif "float" in kind:
                value = float(raw)
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
