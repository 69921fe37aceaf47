"""The ``group.share.*`` broker properties the share-group coordinators use (Kafka 4's
defaults); kbroker fills it from its config table, tests build it directly."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AUTO_OFFSET_RESETS", "ShareConfig"]

AUTO_OFFSET_RESETS = ("latest", "earliest")
"""Values of the ``share.auto.offset.reset`` group config kbroker serves."""


@dataclass(frozen=True, slots=True)
class ShareConfig:
    group_share_session_timeout_ms: int = 45_000
    group_share_heartbeat_interval_ms: int = 5_000
    group_share_record_lock_duration_ms: int = 30_000
    group_share_delivery_count_limit: int = 5
    group_share_partition_max_record_locks: int = 2_000
    group_share_max_size: int = 200
    share_auto_offset_reset: str = "latest"
