"""Group coordinator settings, under Kafka's property names (snake_case, units in the suffix)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GroupConfig"]


@dataclass(frozen=True, slots=True)
class GroupConfig:
    group_min_session_timeout_ms: int = 6_000
    """group.min.session.timeout.ms: JoinGroup below it gets INVALID_SESSION_TIMEOUT."""
    group_max_session_timeout_ms: int = 1_800_000
    """group.max.session.timeout.ms: JoinGroup above it gets INVALID_SESSION_TIMEOUT."""
    group_initial_rebalance_delay_ms: int = 3_000
    """group.initial.rebalance.delay.ms: how long an Empty group waits for more joiners."""
    group_max_size: int = 2**31 - 1
    """group.max.size: members beyond it get GROUP_MAX_SIZE_REACHED."""
    group_new_member_join_timeout_ms: int = 300_000
    """Kafka's fixed 5 minutes after which a parked JoinGroup of a new member is dropped,
    so clients that gave up and retried do not pile up defunct members."""
    offsets_retention_minutes: int = 7 * 24 * 60
    """offsets.retention.minutes: offsets of an Empty group expire this long after it
    became empty (or after the commit for simple groups)."""
    offsets_retention_check_interval_ms: int = 600_000
    """offsets.retention.check.interval.ms: how often expired offsets are looked for."""
    offset_metadata_max_bytes: int = 4096
    """offset.metadata.max.bytes: longer commit metadata gets OFFSET_METADATA_TOO_LARGE."""
    offsets_topic_num_partitions: int = 50
    """offsets.topic.num.partitions: used by ``partition_for``."""

    @property
    def offsets_retention_ms(self) -> int:
        return self.offsets_retention_minutes * 60_000

    def __post_init__(self) -> None:
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms:
            raise ValueError("group.min.session.timeout.ms > group.max.session.timeout.ms")
        if self.group_max_size < 1:
            raise ValueError("group.max.size must be >= 1")
        if self.group_initial_rebalance_delay_ms < 0:
            raise ValueError("group.initial.rebalance.delay.ms must be >= 0")
        if self.offsets_retention_minutes < 1:
            raise ValueError("offsets.retention.minutes must be >= 1")
