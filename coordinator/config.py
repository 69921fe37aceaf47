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

    # -- KIP-848 consumer groups (issue 14) ---------------------------------------------
    group_consumer_session_timeout_ms: int = 45_000
    """group.consumer.session.timeout.ms: a member silent this long is removed."""
    group_consumer_min_session_timeout_ms: int = 45_000
    """group.consumer.min.session.timeout.ms: lower bound of the session timeout."""
    group_consumer_max_session_timeout_ms: int = 60_000
    """group.consumer.max.session.timeout.ms: upper bound of the session timeout."""
    group_consumer_heartbeat_interval_ms: int = 5_000
    """group.consumer.heartbeat.interval.ms: told to members in every heartbeat response."""
    group_consumer_min_heartbeat_interval_ms: int = 5_000
    """group.consumer.min.heartbeat.interval.ms: lower bound of the heartbeat interval."""
    group_consumer_max_heartbeat_interval_ms: int = 15_000
    """group.consumer.max.heartbeat.interval.ms: upper bound of the heartbeat interval."""
    group_consumer_max_size: int = 2**31 - 1
    """group.consumer.max.size: members beyond it get GROUP_MAX_SIZE_REACHED."""
    group_consumer_assignors: tuple[str, ...] = ("uniform", "range")
    """group.consumer.assignors: server assignors; the first is the default."""
    group_consumer_migration_policy: str = "bidirectional"
    """group.consumer.migration.policy: disabled / upgrade / downgrade / bidirectional
    (online conversion classic -> consumer group, and back; see coordinator.migration)."""

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
        self._check_consumer_group_bounds()

    def _check_consumer_group_bounds(self) -> None:
        """Kafka's GroupCoordinatorConfig checks for the consumer-group timeouts."""
        if not (
            self.group_consumer_min_session_timeout_ms
            <= self.group_consumer_session_timeout_ms
            <= self.group_consumer_max_session_timeout_ms
        ):
            raise ValueError(
                "group.consumer.session.timeout.ms must be between "
                "group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms"
            )
        if not (
            self.group_consumer_min_heartbeat_interval_ms
            <= self.group_consumer_heartbeat_interval_ms
            <= self.group_consumer_max_heartbeat_interval_ms
        ):
            raise ValueError(
                "group.consumer.heartbeat.interval.ms must be between "
                "group.consumer.min.heartbeat.interval.ms and group.consumer.max.heartbeat.interval.ms"
            )
        if self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms:
            raise ValueError(
                "group.consumer.heartbeat.interval.ms must be less than "
                "group.consumer.session.timeout.ms"
            )
        if self.group_consumer_max_size < 1:
            raise ValueError("group.consumer.max.size must be >= 1")
        if self.group_consumer_migration_policy not in (
            "disabled", "upgrade", "downgrade", "bidirectional"
        ):
            raise ValueError(
                "group.consumer.migration.policy must be disabled, upgrade, downgrade or bidirectional"
            )
        if not self.group_consumer_assignors:
            raise ValueError("group.consumer.assignors must name at least one assignor")
