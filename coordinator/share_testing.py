"""A deterministic harness for KIP-932 share groups: fake clock and timer, in-memory logs
for ``__consumer_offsets`` and ``__share_group_state``, topics whose log end moves when
the test "produces", and fetch/acknowledge helpers doing what the ShareFetch handler does
(read from the coordinator's fetch offset to the high watermark, acquire what was read).
``restarted()`` rebuilds both coordinators from the two logs, as a broker restart does.
"""

from __future__ import annotations

import itertools
from typing import Any
from uuid import UUID

from kbroker.coordinator.group_coordinator import GroupCoordinator
from kbroker.coordinator.result import Record, Result, apply_result
from kbroker.coordinator.share_config import ShareConfig
from kbroker.coordinator.share_coordinator import (
    RoutedTimer,
    ShareCoordinator,
    ShareListenerAdapter,
)
from kbroker.coordinator.share_records import decode_share_state_record
from kbroker.coordinator.timer import FakeTimer, ManualClock
from kbroker.wire.messages.share_group_heartbeat_request import ShareGroupHeartbeatRequest
from kbroker.wire.messages.share_group_heartbeat_response import ShareGroupHeartbeatResponse

__all__ = ["ShareTestContext"]


class ShareTestContext:
    def __init__(
        self,
        config: ShareConfig | None = None,
        *,
        clock: ManualClock | None = None,
        topics: dict[str, tuple[UUID, int, bool]] | None = None,
        log_ends: dict[tuple[UUID, int], tuple[int, int]] | None = None,
        group_configs: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.config = config or ShareConfig()
        self.clock = clock or ManualClock()
        self.offsets_log: list[Record] = []
        self.state_log: list[Record] = []
        self.timer = FakeTimer(self.clock, sink=self.finish)
        self.topics: dict[str, tuple[UUID, int, bool]] = topics if topics is not None else {}
        self.log_ends: dict[tuple[UUID, int], tuple[int, int]] = (
            log_ends if log_ends is not None else {}
        )
        self.group_configs: dict[str, dict[str, str]] = (
            group_configs if group_configs is not None else {}
        )
        self._topic_ids = itertools.count(len(self.topics) + 1)
        self.released: list[tuple[UUID, int]] = []
        # (topic id, partition) -> the append time of each offset (for by_duration resets)
        self.record_times: dict[tuple[UUID, int], list[int]] = {}
        self.coord = GroupCoordinator(
            now_ms=self.clock.now_ms,
            timer=self.timer,
            topics=lambda: self.topics,
            share_config=self.config,
            group_overrides=self._int_overrides,
        )
        self.share = ShareCoordinator(
            self.config,
            self.clock.now_ms,
            RoutedTimer(self.timer, self.finish_share),
            lambda t, p: self.log_ends.get((t, p)),
            lambda g: self.group_configs.get(g, {}),
            self._offset_for_timestamp,
        )
        self.share.released = lambda t, p: self.released.append((t, p))
        self.coord.share_groups.listener = ShareListenerAdapter(self.share, self.finish_share)

    def _offset_for_timestamp(self, topic_id: UUID, partition: int, timestamp_ms: int) -> int | None:
        times = self.record_times.get((topic_id, partition), [])
        return next((offset for offset, t in enumerate(times) if t >= timestamp_ms), None)

    def _int_overrides(self, group_id: str) -> dict[str, int]:
        return {
            k: int(v)
            for k, v in self.group_configs.get(group_id, {}).items()
            if v.lstrip("-").isdigit()
        }

    def finish(self, result: Result[Any]) -> Any:
        return apply_result(result, self.offsets_log.extend)

    def finish_share(self, result: Result[Any]) -> Any:
        return apply_result(result, self.state_log.extend)

    def create_topic(self, name: str, partitions: int) -> UUID:
        topic_id = UUID(int=next(self._topic_ids))
        self.topics[name] = (topic_id, partitions, False)
        for p in range(partitions):
            self.log_ends[(topic_id, p)] = (0, 0)
        return topic_id

    def produce(self, topic_id: UUID, partition: int, count: int) -> None:
        start, end = self.log_ends[(topic_id, partition)]
        self.log_ends[(topic_id, partition)] = (start, end + count)
        self.record_times.setdefault((topic_id, partition), []).extend([self.clock.ms] * count)

    def sleep(self, ms: int) -> None:
        self.timer.advance(ms)

    def heartbeat(
        self, group_id: str, member_id: str, epoch: int, topics: list[str] | None = None
    ) -> ShareGroupHeartbeatResponse:
        request = ShareGroupHeartbeatRequest(
            group_id=group_id,
            member_id=member_id,
            member_epoch=epoch,
            subscribed_topic_names=topics,
        )
        response = self.finish(
            self.coord.share_group_heartbeat(request, client_id="client", client_host="/127.0.0.1")
        )
        assert isinstance(response, ShareGroupHeartbeatResponse)
        return response

    def fetch(
        self, group_id: str, member_id: str, topic_id: UUID, partition: int, max_records: int = 500
    ) -> list[tuple[int, int, int]]:
        """What ShareFetch acquires when the log read returns everything up to the HWM."""
        first = self.finish_share(self.share.fetch_offset(group_id, topic_id, partition))
        if first is None:
            return []
        high_watermark = self.log_ends[(topic_id, partition)][1]
        ranges = self.finish_share(
            self.share.acquire(
                group_id, member_id, topic_id, partition, first, high_watermark - 1, max_records
            )
        )
        assert isinstance(ranges, list)
        return ranges

    def ack(
        self,
        group_id: str,
        member_id: str,
        topic_id: UUID,
        partition: int,
        first: int,
        last: int,
        kind: int,
    ) -> int:
        code = self.finish_share(
            self.share.acknowledge(
                group_id, member_id, topic_id, partition, [(first, last, [kind])]
            )
        )
        return int(code)

    def restarted(self) -> ShareTestContext:
        """A new broker over the same logs, topics and group configs."""
        fresh = ShareTestContext(
            self.config,
            clock=ManualClock(self.clock.ms),
            topics=self.topics,
            log_ends=self.log_ends,
            group_configs=self.group_configs,
        )
        fresh.offsets_log = list(self.offsets_log)
        fresh.state_log = list(self.state_log)
        for r in self.offsets_log:
            fresh.coord.replay(r.key, r.value, producer_id=r.producer_id)
        for r in self.state_log:
            record = decode_share_state_record(r.key, r.value)
            if record is not None:
                fresh.share.replay(record)
        fresh.finish(fresh.coord.on_loaded())
        return fresh
