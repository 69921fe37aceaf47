"""The ``group.share.*`` broker properties the share-group coordinators use (Kafka 4's
defaults); kbroker fills it from its config table, tests build it directly."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["AUTO_OFFSET_RESETS", "ShareConfig", "parse_by_duration_ms", "valid_auto_offset_reset"]

AUTO_OFFSET_RESETS = ("latest", "earliest")
"""Values of the ``share.auto.offset.reset`` group config besides ``by_duration:<ISO-8601>``
(the first record no older than that duration; the log end when there is none)."""


@dataclass(frozen=True, slots=True)
class ShareConfig:
    group_share_session_timeout_ms: int = 45_000
    group_share_heartbeat_interval_ms: int = 5_000
    group_share_record_lock_duration_ms: int = 30_000
    group_share_delivery_count_limit: int = 5
    group_share_partition_max_record_locks: int = 2_000
    group_share_max_size: int = 200
    share_auto_offset_reset: str = "latest"


BY_DURATION_PREFIX = "by_duration:"
_DURATION = re.compile(
    r"P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)(?:\.(?P<fraction>\d{1,9}))?S)?)?"
)
MAX_DURATION_DIGITS = 18
"""Longest number accepted in one duration field (keeps the arithmetic in int64 range)."""


def parse_by_duration_ms(value: str) -> int | None:
    """``by_duration:<ISO-8601 duration>`` (Java's Duration.parse form without a sign, e.g.
    ``by_duration:PT1H30M``, ``by_duration:P2DT0.5S``) in milliseconds; None when ``value``
    is not one.  Kafka refuses negative durations too."""
    if not value.startswith(BY_DURATION_PREFIX):
        return None
    text = value[len(BY_DURATION_PREFIX) :].upper()
    m = _DURATION.fullmatch(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        return None
    fields = m.groupdict()
    if any(v is not None and len(v) > MAX_DURATION_DIGITS for v in fields.values()):
        return None
    ms = int(fields["days"] or 0) * 86_400_000
    ms += int(fields["hours"] or 0) * 3_600_000 + int(fields["minutes"] or 0) * 60_000
    ms += int(fields["seconds"] or 0) * 1000 + int((fields["fraction"] or "0").ljust(9, "0")[:3])
    return ms


def valid_auto_offset_reset(value: str) -> bool:
    return value in AUTO_OFFSET_RESETS or parse_by_duration_ms(value) is not None
