"""LogManager: the partition logs of one data directory.

Layout::

    <data_dir>/
        <topic>-<partition>/                 one PartitionLog (parsed at the LAST dash)
        <topic>-<partition>.<hex>-delete/    a topic deletion in progress
        recovery-point-offset-checkpoint     "topic partition offset" lines
        log-start-offset-checkpoint
        cleaner-offset-checkpoint            first dirty offset of each compacted
                                             partition (log.cleaner_manager)
        .kbroker_cleanshutdown               present only between close() and open_all()

Deleting a topic renames each partition directory to ``*.<hex>-delete`` (one atomic
rename, directory fsynced) and only then removes the files; a crash midway leaves a
``-delete`` directory that ``open_all`` finishes removing, never half a partition.
Checkpoints are written tmp + fsync + rename.  Not thread-safe (one owner).

Housekeeping cadence
--------------------
The broker calls ``run_periodic(now_ms)`` about once a second.  Each duty runs at its
own Kafka interval, measured from the previous run (the first run comes after
``min(INITIAL_TASK_DELAY_MS, interval)``, as Kafka's scheduler does):

=====================================  =============================================
every call                             segment.ms rolls, flush.ms flushes, removal
                                       of ``*.deleted`` files older than
                                       file.delete.delay.ms (cheap checks)
log.flush.offset.checkpoint.           recovery-point checkpoint
interval.ms (60 s)
log.flush.start.offset.checkpoint.     log-start-offset checkpoint
interval.ms (60 s)
log.retention.check.interval.ms        retention.ms / retention.bytes deletion
(300 s)
producer.id.expiration.check.          producers idle for producer.id.expiration.ms
interval.ms (600 s)                    (24 h) forgotten
=====================================  =============================================

A checkpoint whose content has not changed since it was last written is skipped (an
idle broker does no fsyncs).  DeleteRecords is durable once acknowledged: when
``PartitionLog.delete_records_before`` moves a log start offset, the log calls back
into the manager, which writes the log-start checkpoint before the call returns.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping

from kbroker.log.checkpoints import (
    fsync_directory,
    read_offset_checkpoint,
    write_atomically,
    write_offset_checkpoint,
)
from kbroker.log.config import LogConfig
from kbroker.log.errors import LogStorageError, UnknownPartitionError
from kbroker.log.partition_log import PartitionLog
from kbroker.log.recovery import LoadReport

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_MARKER = ".kbroker_cleanshutdown"
DELETE_DIR_SUFFIX = "-delete"
_DELETE_DIR = re.compile(r"^.+-\d+\.[0-9a-f]{32}-delete$")
_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,249}$")

# Kafka's defaults for the broker-level housekeeping intervals.
DEFAULT_OFFSET_CHECKPOINT_INTERVAL_MS = 60_000  # log.flush.offset.checkpoint.interval.ms
DEFAULT_START_OFFSET_CHECKPOINT_INTERVAL_MS = 60_000  # ...flush.start.offset.checkpoint...
DEFAULT_RETENTION_CHECK_INTERVAL_MS = 300_000  # log.retention.check.interval.ms
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000  # producer.id.expiration.ms
DEFAULT_PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS = 600_000  # ...expiration.check.interval.ms
# Kafka's LogManager.InitialTaskDelayMs: scheduled duties first run this long after
# start-up, so a restart does not pile retention scans onto recovery.
INITIAL_TASK_DELAY_MS = 30_000


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """``"my.topic-name-3"`` -> ``("my.topic-name", 3)``; None if not a partition dir."""
    topic, dash, partition = name.rpartition("-")
    if not dash or not topic or not partition.isdigit() or not _TOPIC_CHARS.match(topic):
        return None
    return topic, int(partition)


class LogManager:
    """Owns every PartitionLog under ``data_dir``; see the module docstring.

    Invariant: ``logs`` holds exactly the partition directories that exist (other
    than ones being deleted) once ``open_all`` has run.
    """

    def __init__(
        self,
        data_dir: str,
        default_config: LogConfig,
        now_ms: int,
        *,
        offset_checkpoint_interval_ms: int = DEFAULT_OFFSET_CHECKPOINT_INTERVAL_MS,
        start_offset_checkpoint_interval_ms: int = DEFAULT_START_OFFSET_CHECKPOINT_INTERVAL_MS,
        retention_check_interval_ms: int = DEFAULT_RETENTION_CHECK_INTERVAL_MS,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        producer_id_expiration_check_interval_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_CHECK_INTERVAL_MS,
    ) -> None:
        for name, value in (
            ("offset_checkpoint_interval_ms", offset_checkpoint_interval_ms),
            ("start_offset_checkpoint_interval_ms", start_offset_checkpoint_interval_ms),
            ("retention_check_interval_ms", retention_check_interval_ms),
            ("producer_id_expiration_ms", producer_id_expiration_ms),
            ("producer_id_expiration_check_interval_ms", producer_id_expiration_check_interval_ms),
        ):
            if value < 1:
                raise ValueError(f"{name} must be positive, not {value}")
        self.data_dir = data_dir
        self.default_config = default_config
        self.topic_configs: dict[str, LogConfig] = {}
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self.had_clean_shutdown = False
        # What open_all found: partitions loaded and the sum of their load reports.
        self.loaded_partitions = 0
        self.load_report = LoadReport()
        self.offset_checkpoint_interval_ms = offset_checkpoint_interval_ms
        self.start_offset_checkpoint_interval_ms = start_offset_checkpoint_interval_ms
        self.retention_check_interval_ms = retention_check_interval_ms
        self._now_ms = now_ms
        # When each scheduled duty is next due (see "Housekeeping cadence").
        self._next_recovery_checkpoint_ms = now_ms + min(
            INITIAL_TASK_DELAY_MS, offset_checkpoint_interval_ms
        )
        self._next_start_checkpoint_ms = now_ms + min(
            INITIAL_TASK_DELAY_MS, start_offset_checkpoint_interval_ms
        )
        self._next_retention_ms = now_ms + min(INITIAL_TASK_DELAY_MS, retention_check_interval_ms)
        self.producer_id_expiration_ms = producer_id_expiration_ms
        self.producer_id_expiration_check_interval_ms = producer_id_expiration_check_interval_ms
        self._next_producer_expiration_ms = now_ms + producer_id_expiration_check_interval_ms
        # The content last written to each checkpoint file (None: write unconditionally).
        self._written: dict[str, dict[tuple[str, int], int] | None] = {
            RECOVERY_POINT_CHECKPOINT: None,
            LOG_START_CHECKPOINT: None,
        }
        os.makedirs(data_dir, exist_ok=True)

    def config_for(self, topic: str) -> LogConfig:
        return self.topic_configs.get(topic, self.default_config)

    def _path(self, topic: str, partition: int) -> str:
        return os.path.join(self.data_dir, f"{topic}-{partition}")

    def open_all(self, topic_configs: Mapping[str, LogConfig] | None = None) -> None:
        """Load every partition (recovering those not cleanly closed), finish
        interrupted topic deletions, then drop the clean-shutdown marker."""
        if topic_configs:
            self.topic_configs.update(topic_configs)
        marker = os.path.join(self.data_dir, CLEAN_SHUTDOWN_MARKER)
        self.had_clean_shutdown = os.path.exists(marker)
        recovery = read_offset_checkpoint(os.path.join(self.data_dir, RECOVERY_POINT_CHECKPOINT))
        starts = read_offset_checkpoint(os.path.join(self.data_dir, LOG_START_CHECKPOINT))
        for name in sorted(os.listdir(self.data_dir)):
            path = os.path.join(self.data_dir, name)
            if not os.path.isdir(path):
                continue
            if _DELETE_DIR.match(name):
                shutil.rmtree(path, ignore_errors=True)
                continue
            parsed = parse_partition_dir(name)
            if parsed is None or parsed in self.logs:
                continue
            log = PartitionLog(
                path,
                self.config_for(parsed[0]),
                now_ms=self._now_ms,
                log_start_offset=starts.get(parsed, 0),
                recovery_point=recovery.get(parsed, 0),
                had_clean_shutdown=self.had_clean_shutdown,
            )
            log.on_log_start_offset_moved = self._log_start_offset_moved
            self.logs[parsed] = log
            self.loaded_partitions += 1
            self.load_report.add(log.load_report)
        self.checkpoint()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
            fsync_directory(self.data_dir)

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self.logs.get((topic, partition))

    def create(self, topic: str, partition: int, config: LogConfig | None = None) -> PartitionLog:
        """Create (or return the existing) log of a partition."""
        if not _TOPIC_CHARS.match(topic) or partition < 0:
            raise ValueError(f"bad topic partition {topic!r}-{partition}")
        key = (topic, partition)
        if config is not None:
            self.topic_configs[topic] = config
        existing = self.logs.get(key)
        if existing is not None:
            return existing
        path = self._path(topic, partition)
        os.makedirs(path, exist_ok=True)
        fsync_directory(self.data_dir)
        log = PartitionLog(
            path, self.config_for(topic), now_ms=self._now_ms, had_clean_shutdown=True
        )
        log.on_log_start_offset_moved = self._log_start_offset_moved
        self.logs[key] = log
        return log

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """DeleteRecords on one partition: move its log start offset up to ``offset``
        and make that durable before returning (the log-start checkpoint is written).
        Returns the new log start offset; raises UnknownPartitionError, or what
        ``PartitionLog.delete_records_before`` raises."""
        log = self.logs.get((topic, partition))
        if log is None:
            raise UnknownPartitionError(f"no log for {topic}-{partition}")
        return log.delete_records_before(offset)

    def _log_start_offset_moved(self, log: PartitionLog) -> None:
        """PartitionLog's DeleteRecords hook: checkpoint the log start offsets now."""
        try:
            self.checkpoint_log_start_offsets()
        except OSError as exc:
            raise LogStorageError(f"cannot checkpoint log start offsets: {exc}") from exc

    def delete_topic(self, topic: str) -> int:
        """Delete every partition of ``topic``: close, rename to ``*-delete``, remove.
        Returns the number of partitions deleted."""
        keys = [k for k in self.logs if k[0] == topic]
        for key in keys:
            log = self.logs.pop(key)
            log.close(clean=False)
            doomed = f"{self._path(*key)}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
            os.rename(log.directory, doomed)
        if keys:
            fsync_directory(self.data_dir)
            self.checkpoint()
            for name in os.listdir(self.data_dir):
                if _DELETE_DIR.match(name) and name.rpartition("-")[0].startswith(f"{topic}-"):
                    shutil.rmtree(os.path.join(self.data_dir, name), ignore_errors=True)
        self.topic_configs.pop(topic, None)
        return len(keys)

    def update_config(self, topic: str, config: LogConfig) -> None:
        self.topic_configs[topic] = config
        for (t, _), log in self.logs.items():
            if t == topic:
                log.update_config(config)

    def checkpoint(self) -> None:
        """Write the recovery-point and log-start-offset checkpoints (if changed)."""
        self.checkpoint_recovery_points()
        self.checkpoint_log_start_offsets()

    def checkpoint_recovery_points(self) -> None:
        self._write_checkpoint(
            RECOVERY_POINT_CHECKPOINT, {k: log.recovery_point for k, log in self.logs.items()}
        )

    def checkpoint_log_start_offsets(self) -> None:
        self._write_checkpoint(
            LOG_START_CHECKPOINT, {k: log.log_start_offset for k, log in self.logs.items()}
        )

    def _write_checkpoint(self, name: str, offsets: dict[tuple[str, int], int]) -> None:
        if self._written[name] == offsets:
            return
        self._written[name] = None  # unknown until the write below has succeeded
        write_offset_checkpoint(os.path.join(self.data_dir, name), offsets)
        self._written[name] = offsets

    def run_periodic(self, now_ms: int) -> None:
        """Time-based work, each duty at its own interval (see "Housekeeping cadence")."""
        self._now_ms = now_ms
        retention_due = now_ms >= self._next_retention_ms
        if retention_due:
            self._next_retention_ms = now_ms + self.retention_check_interval_ms
        expiration_due = now_ms >= self._next_producer_expiration_ms
        if expiration_due:
            self._next_producer_expiration_ms = (
                now_ms + self.producer_id_expiration_check_interval_ms
            )
        failed: list[str] = []
        for log in self.logs.values():
            if log.is_offline:
                continue  # appends refused until a restart; its reads need no upkeep
            try:
                log.maybe_roll(now_ms)
                log.maybe_flush(now_ms)
                if retention_due:
                    log.enforce_retention(now_ms)
                if expiration_due:
                    log.remove_expired_producers(now_ms, self.producer_id_expiration_ms)
                log.delete_pending_files(now_ms)
            except LogStorageError as exc:  # e.g. a full disk: the other logs go on
                failed.append(str(exc))
        if failed:
            # Checkpoints wait for the next tick; one error names the whole tick.
            raise LogStorageError(f"housekeeping failed for {len(failed)} logs: {failed[0]}")
        if now_ms >= self._next_recovery_checkpoint_ms:
            self._next_recovery_checkpoint_ms = now_ms + self.offset_checkpoint_interval_ms
            self.checkpoint_recovery_points()
        if now_ms >= self._next_start_checkpoint_ms:
            self._next_start_checkpoint_ms = now_ms + self.start_offset_checkpoint_interval_ms
            self.checkpoint_log_start_offsets()

    def flush_all(self) -> None:
        for log in self.logs.values():
            log.flush()

    def close(self) -> None:
        """Flush and close every log, checkpoint, then write the clean-shutdown marker."""
        failed: list[str] = []
        for log in self.logs.values():
            if log.is_offline:
                failed.append(f"{log.directory} is offline")
            try:
                log.close(clean=True)
            except LogStorageError as exc:  # e.g. a full disk: recovery will rescan it
                failed.append(str(exc))
                log.close(clean=False)
        try:
            self.checkpoint()
        finally:
            self.logs.clear()
        if failed:  # no clean-shutdown marker: the next start recovers these logs
            raise LogStorageError(f"{len(failed)} logs did not close cleanly: {failed[0]}")
        write_atomically(os.path.join(self.data_dir, CLEAN_SHUTDOWN_MARKER), b"")
