"""Which partition to clean next, and the ``cleaner-offset-checkpoint`` of a data dir.

Kafka's LogCleanerManager in small: each compacted partition's first dirty offset is
kept in ``<data_dir>/cleaner-offset-checkpoint`` (the offset-checkpoint format); the
next partition cleaned is the one with the largest dirty ratio at or above its
``min.cleanable.dirty.ratio`` -- or any whose ``max.compaction.lag.ms`` has passed,
those first.  A partition being cleaned is "in progress" until its pass is committed
or given up, so two cleaner threads never clean the same log.

Threading: :meth:`begin` and :meth:`finish` run on the logs' owner thread; the
:func:`~log.cleaner.build_clean` between them may run on any thread.  The
checkpoint dict is only touched by the owner thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kbroker.log.checkpoints import read_offset_checkpoint, write_offset_checkpoint
from kbroker.log.cleaner import (
    DEFAULT_IO_BUFFER_BYTES,
    CleanOutcome,
    CleanPlan,
    build_clean,
    cleanable_stats,
    plan_clean,
)
from kbroker.log.cleaner_io import Throttler
from kbroker.log.offset_map import DEFAULT_LOAD_FACTOR, OffsetMap
from kbroker.log.partition_log import PartitionLog
from kbroker.log.swap import FaultHook, discard_cleaned

CLEANER_CHECKPOINT = "cleaner-offset-checkpoint"

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class CleanerConfig:
    """The broker's ``log.cleaner.*`` settings (Kafka's defaults)."""

    enable: bool = True
    threads: int = 1
    dedupe_buffer_size: int = 128 * 1024 * 1024
    io_buffer_load_factor: float = DEFAULT_LOAD_FACTOR
    io_max_bytes_per_second: float = float("inf")
    backoff_ms: int = 15_000
    io_buffer_size: int = DEFAULT_IO_BUFFER_BYTES  # shared by the threads, as in Kafka

    def __post_init__(self) -> None:
        if self.threads < 0:
            raise ValueError("log.cleaner.threads must be >= 0")
        if self.backoff_ms < 0:
            raise ValueError("log.cleaner.backoff.ms must be >= 0")
        if self.io_max_bytes_per_second <= 0:
            raise ValueError("log.cleaner.io.max.bytes.per.second must be positive")

    @property
    def io_buffer_bytes_per_thread(self) -> int:
        """One thread's share of ``log.cleaner.io.buffer.size``."""
        return self.io_buffer_size // max(1, self.threads)

    def new_offset_map(self) -> OffsetMap:
        """One thread's map: the dedupe buffer is shared by the threads, as in Kafka."""
        return OffsetMap(
            self.dedupe_buffer_size // max(1, self.threads), self.io_buffer_load_factor
        )


class LogCleanerManager:
    """See the module doc.  Not thread-safe except as stated there."""

    def __init__(self, data_dir: str, config: CleanerConfig) -> None:
        self.data_dir = data_dir
        self.config = config
        self.path = os.path.join(data_dir, CLEANER_CHECKPOINT)
        self.checkpoints: dict[TopicPartition, int] = read_offset_checkpoint(self.path)
        self.in_progress: set[TopicPartition] = set()
        self._written: dict[TopicPartition, int] | None = dict(self.checkpoints)
        # Latest delete horizon written per partition (not persisted: after a restart
        # the next pass with dirty data finds the horizons again, as in Kafka).
        self.delete_horizons: dict[TopicPartition, int] = {}

    def first_dirty_offset(self, key: TopicPartition) -> int:
        return self.checkpoints.get(key, 0)

    def begin(
        self, logs: Mapping[TopicPartition, PartitionLog], now_ms: int
    ) -> tuple[TopicPartition, CleanPlan] | None:
        """Pick the dirtiest cleanable compacted partition and plan its pass (marks
        it in progress); None if none needs cleaning."""
        best: tuple[bool, float, TopicPartition] | None = None
        for key, log in logs.items():
            if key in self.in_progress or not log.config.is_compacted:
                continue
            try:
                stats = cleanable_stats(log, self.first_dirty_offset(key), now_ms)
            except OSError:
                continue
            if stats.dirty_bytes == 0:
                continue
            if not stats.must_clean and stats.dirty_ratio < log.config.min_cleanable_dirty_ratio:
                continue
            rank = (stats.must_clean, stats.dirty_ratio, key)
            if best is None or rank[:2] > best[:2]:
                best = rank
        if best is None:
            # Quiet logs: remove tombstones and markers whose horizon has passed.
            for key, horizon in sorted(self.delete_horizons.items(), key=lambda kv: kv[1]):
                quiet = logs.get(key)
                if (
                    horizon <= now_ms
                    and key not in self.in_progress
                    and quiet is not None
                    and quiet.config.is_compacted
                ):
                    best = (False, 0.0, key)
                    break
        if best is None:
            return None
        key = best[2]
        plan = plan_clean(logs[key], self.first_dirty_offset(key), now_ms, force=True)
        if plan is None:
            return None
        self.in_progress.add(key)
        return key, plan

    def build(
        self, plan: CleanPlan, should_stop: Callable[[], bool] = lambda: False
    ) -> CleanOutcome | None:
        """The slow part (any thread)."""
        throttler = Throttler(self.config.io_max_bytes_per_second)
        return build_clean(
            plan,
            self.config.new_offset_map(),
            throttler,
            should_stop,
            self.config.io_buffer_bytes_per_thread,
        )

    def finish(
        self,
        key: TopicPartition,
        log: PartitionLog | None,
        outcome: CleanOutcome | None,
        fault: FaultHook | None = None,
    ) -> int:
        """Swap the cleaned segments in (owner thread) and move the checkpoint to the
        end of the pass; returns how many groups were swapped.  ``log`` None (the
        partition was deleted) or ``outcome`` None (the pass stopped) gives up."""
        self.in_progress.discard(key)
        if outcome is None:
            return 0
        if log is None:
            for group in outcome.groups:
                discard_cleaned(
                    os.path.join(self.data_dir, f"{key[0]}-{key[1]}"), group.base_offset
                )
            return 0
        swapped = 0
        for group in outcome.groups:
            if log.replace_segments(group.base_offset, group.end_offset, group.old_bases, fault):
                swapped += 1
        self.record_pass(key, outcome)
        self.write_checkpoint()
        return swapped

    def record_pass(self, key: TopicPartition, outcome: CleanOutcome) -> None:
        """After the swaps: the checkpoint moves to the end of the pass (in memory; see
        :meth:`write_checkpoint`) and the pass's latest delete horizon is kept."""
        self.checkpoints[key] = outcome.end_offset
        if outcome.latest_delete_horizon >= 0:
            self.delete_horizons[key] = outcome.latest_delete_horizon
        else:
            self.delete_horizons.pop(key, None)

    def clean_now(
        self,
        key: TopicPartition,
        log: PartitionLog,
        now_ms: int,
        *,
        force: bool = True,
        fault: FaultHook | None = None,
    ) -> CleanOutcome | None:
        """One whole pass on the calling thread (tests, tools); None if nothing to do."""
        plan = plan_clean(log, self.first_dirty_offset(key), now_ms, force=force)
        if plan is None:
            return None
        self.in_progress.add(key)
        try:
            outcome = self.build(plan)
        except BaseException:
            self.in_progress.discard(key)
            raise
        self.finish(key, log, outcome, fault)
        return outcome

    def forget(self, key: TopicPartition, *, write: bool = True) -> bool:
        """The partition was deleted: drop its checkpoint entry (and write the file,
        unless ``write`` is False); True if there was one."""
        self.delete_horizons.pop(key, None)
        had = self.checkpoints.pop(key, None) is not None
        if had and write:
            self.write_checkpoint()
        return had

    def write_checkpoint(self, snapshot: dict[TopicPartition, int] | None = None) -> None:
        """Write the checkpoints (``snapshot``: a copy taken on the owner thread, so that
        another thread may write it while the owner goes on)."""
        wanted = dict(self.checkpoints) if snapshot is None else snapshot
        if self._written == wanted:
            return
        self._written = None
        write_offset_checkpoint(self.path, wanted)
        self._written = wanted
