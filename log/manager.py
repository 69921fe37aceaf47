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

Lazy loading
------------
``open_all`` only lists the partition directories (and reads the two checkpoints);
a partition's segments, indexes, producer state and leader epochs are loaded by its
first ``get`` -- so start-up time and memory grow little with the partition count.
A partition that was not cleanly closed is recovered by that same load, before any
read or write reaches it: unrecovered data is never served.  ``run_periodic`` loads
the rest in the background, LAZY_LOAD_TICK_BUDGET_MS at a time (retention, flushes
and the cleaner then see every log), and ``close`` recovers any partition still
unloaded after an unclean stop before it writes the clean-shutdown marker.
Checkpoints carry an unloaded partition's offsets over unchanged.  A lazy load writes
what its recovery rebuilt without fsyncs (thousands of partitions may load in one
Fetch); one file-system sync makes all of it durable before the next recovery-point
checkpoint, so no checkpoint ever vouches for unsynced bytes.  ``close`` likewise
writes every log and then syncs once, instead of five fsyncs per partition.  Segment files are
opened through a ``FileCache`` (``log.file_cache``) shared by all the logs, so the
descriptors in use stay bounded however many partitions and segments there are.

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
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kbroker.log.checkpoints import (
    fsync_directory,
    read_offset_checkpoint,
    sync_file_system,
    write_atomically,
    write_offset_checkpoint,
)
from kbroker.log.config import LogConfig
from kbroker.log.errors import LogStorageError, UnknownPartitionError
from kbroker.log.file_cache import FileCache, default_max_open_files
from kbroker.log.log_dirs import (
    PhaseHook,
    Precopy,
    directory_id,
    drop_moved_record,
    is_future_dir,
    least_loaded,
    move_partition_files,
    new_future_dir,
    read_moved_record,
)
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
# Wall time each run_periodic call may spend loading partitions in the background: the
# event loop serves nothing meanwhile, so a slice stays well under a request's budget.
LAZY_LOAD_TICK_BUDGET_MS = 20


@dataclass(slots=True, frozen=True)
class UnloadedPartition:
    """What open_all learned of a partition whose log is not loaded yet."""

    recovery_point: int
    log_start_offset: int
    had_clean_shutdown: bool


def parse_partition_dir(name: str) -> tuple[str, int] | None:
    """``"my.topic-name-3"`` -> ``("my.topic-name", 3)``; None if not a partition dir."""
    topic, dash, partition = name.rpartition("-")
    if not dash or not topic or not partition.isdigit() or not _TOPIC_CHARS.match(topic):
        return None
    return topic, int(partition)


class LogManager:
    """Owns every PartitionLog under ``data_dir``; see the module docstring.

    Invariant: ``logs`` and ``_unloaded`` (disjoint) together hold exactly the
    partition directories that exist (other than ones being deleted) once
    ``open_all`` has run.
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
        max_open_files: int | None = None,
        log_dirs: Sequence[str] | None = None,
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
        # The log directories (log.dirs; the data dir alone by default), absolute, and
        # the one each partition lives in (see kbroker.log.log_dirs).
        self.log_dirs = [os.path.abspath(d) for d in (log_dirs or [data_dir])]
        if len(set(self.log_dirs)) != len(self.log_dirs):
            raise ValueError(f"log directories listed twice: {self.log_dirs}")
        self._dir_of: dict[tuple[str, int], str] = {}
        # Moves under way (begin_move .. end_move): destination and pre-copy progress.
        self.moving: dict[tuple[str, int], tuple[str, Precopy]] = {}
        self.directory_ids: dict[str, str] = {}
        self.default_config = default_config
        self.topic_configs: dict[str, LogConfig] = {}
        # The loaded logs; partitions found by open_all wait in _unloaded until first
        # use (see "Lazy loading").
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self._unloaded: dict[tuple[str, int], UnloadedPartition] = {}
        # Lazy loads write what recovery rebuilt without fsyncs; one file-system sync
        # makes them durable before any recovery point is checkpointed.
        self._unsynced_loads = False
        # Called with each partition loaded lazily (the broker records leader epochs).
        self.on_load: Callable[[tuple[str, int], PartitionLog], None] | None = None
        self.files = FileCache(
            default_max_open_files() if max_open_files is None else max_open_files
        )
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
        # (keyed by the checkpoint file's path: one pair of files per log directory).
        self._written: dict[str, dict[tuple[str, int], int] | None] = {}
        for d in self.log_dirs:
            os.makedirs(d, exist_ok=True)

    def config_for(self, topic: str) -> LogConfig:
        return self.topic_configs.get(topic, self.default_config)

    def _path(self, topic: str, partition: int) -> str:
        log_dir = self._dir_of.get((topic, partition), self.log_dirs[0])
        return os.path.join(log_dir, f"{topic}-{partition}")

    def dir_of(self, topic: str, partition: int) -> str | None:
        """The log directory holding the partition, None if it has no log."""
        return self._dir_of.get((topic, partition))

    def partition_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.log_dirs, 0)
        for d in self._dir_of.values():
            counts[d] += 1
        return counts

    def open_all(self, topic_configs: Mapping[str, LogConfig] | None = None) -> None:
        """Find every partition in every log directory (its log is loaded -- and
        recovered, if it was not cleanly closed -- on first use or by ``load_pending``;
        see "Lazy loading"), finish interrupted topic deletions and partition moves,
        then drop the clean-shutdown markers."""
        if topic_configs:
            self.topic_configs.update(topic_configs)
        clean = True
        moved: dict[tuple[str, int], tuple[str, tuple[int, int]]] = {}
        found: dict[tuple[str, int], list[str]] = {}
        checkpoints: dict[str, tuple[dict[tuple[str, int], int], dict[tuple[str, int], int], bool]] = {}
        for log_dir in self.log_dirs:
            self.directory_ids[log_dir] = directory_id(log_dir)
            had_clean = os.path.exists(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER))
            clean = clean and had_clean
            recovery_path = os.path.join(log_dir, RECOVERY_POINT_CHECKPOINT)
            start_path = os.path.join(log_dir, LOG_START_CHECKPOINT)
            recovery = read_offset_checkpoint(recovery_path)
            starts = read_offset_checkpoint(start_path)
            checkpoints[log_dir] = (recovery, starts, had_clean)
            # What the files say now: checkpoint() rewrites them only if that changes.
            self._written[recovery_path] = recovery
            self._written[start_path] = starts
            with os.scandir(log_dir) as entries:
                names = sorted(e.name for e in entries if e.is_dir())
            for name in names:
                if _DELETE_DIR.match(name) or is_future_dir(name):
                    # A deletion to finish, or a move interrupted before its switch.
                    shutil.rmtree(os.path.join(log_dir, name), ignore_errors=True)
                    continue
                parsed = parse_partition_dir(name)
                if parsed is None or parsed in self.logs:
                    continue
                found.setdefault(parsed, []).append(log_dir)
                record = read_moved_record(os.path.join(log_dir, name))
                if record is not None:
                    moved[parsed] = (log_dir, record)
        for key, dirs in found.items():
            if len(dirs) > 1:
                if key not in moved:
                    raise LogStorageError(f"{key[0]}-{key[1]} is in several log directories: {dirs}")
                for d in dirs:  # a move past its switch: the moved copy wins
                    if d != moved[key][0]:
                        shutil.rmtree(os.path.join(d, f"{key[0]}-{key[1]}"))
                        fsync_directory(d)
            log_dir = moved[key][0] if key in moved else dirs[0]
            recovery, starts, had_clean = checkpoints[log_dir]
            self._dir_of[key] = log_dir
            self._unloaded[key] = UnloadedPartition(
                recovery_point=recovery.get(key, 0),
                log_start_offset=starts.get(key, 0),
                had_clean_shutdown=had_clean,
            )
            if key in moved:
                start, point = moved[key][1]
                # Copied from a closed log: its offsets hold; recovery rescans nothing
                # below the recorded recovery point.
                self._unloaded[key] = UnloadedPartition(point, start, had_clean)
        self.had_clean_shutdown = clean
        self.checkpoint()
        for key, (log_dir, _) in moved.items():
            drop_moved_record(os.path.join(log_dir, f"{key[0]}-{key[1]}"))
        for log_dir in self.log_dirs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER))
                fsync_directory(log_dir)

    def _load(self, key: tuple[str, int]) -> PartitionLog:
        """Load (recovering if needed) an unloaded partition's log now."""
        pending = self._unloaded[key]
        log = PartitionLog(
            self._path(*key),
            self.config_for(key[0]),
            now_ms=self._now_ms,
            log_start_offset=pending.log_start_offset,
            recovery_point=pending.recovery_point,
            had_clean_shutdown=pending.had_clean_shutdown,
            files=self.files,
            fsync_on_load=False,
        )
        self._unsynced_loads = True
        del self._unloaded[key]
        log.on_log_start_offset_moved = self._log_start_offset_moved
        self.logs[key] = log
        self.loaded_partitions += 1
        self.load_report.add(log.load_report)
        if self.on_load is not None:
            self.on_load(key, log)
        return log

    def load_pending(self, budget_ms: float, *, clean_too: bool = True) -> int:
        """Load unloaded partitions, in name order, until ``budget_ms`` of wall time is
        spent (at least one); only those needing recovery unless ``clean_too``.
        Returns how many were loaded."""
        deadline = time.monotonic() + budget_ms / 1000
        loaded = 0
        for key in sorted(self._unloaded):
            if not clean_too and self._unloaded[key].had_clean_shutdown:
                continue
            self._load(key)
            loaded += 1
            if time.monotonic() >= deadline:
                break
        return loaded

    @property
    def unloaded_partitions(self) -> int:
        return len(self._unloaded)

    def has(self, topic: str, partition: int) -> bool:
        """Whether the partition has a log, loaded or not (loads nothing)."""
        key = (topic, partition)
        return key in self.logs or key in self._unloaded

    def partition_keys(self) -> list[tuple[str, int]]:
        """Every partition with a log, loaded or not (loads nothing)."""
        return [*self.logs, *self._unloaded]

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        key = (topic, partition)
        log = self.logs.get(key)
        if log is None and key in self._unloaded:
            return self._load(key)
        return log

    def create_many(
        self, topic: str, partitions: range, config: LogConfig | None = None, *, sync_dir: bool = True
    ) -> None:
        """Create the logs of ``partitions`` of ``topic`` with one fsync of the data dir
        for all of their directories (CreateTopics of 1,000 partitions: 1 fsync, not 1,000).
        ``sync_dir`` False leaves that fsync to the caller (:meth:`sync_data_dir`), which
        creates several topics at once."""
        for p in partitions:
            self.create(topic, p, config, sync_dir=False)
        if sync_dir:
            self.sync_data_dir()

    def sync_data_dir(self) -> None:
        """Make the partition directories created with ``sync_dir=False`` durable (every
        log dir: a partition may have been placed in any of them)."""
        for log_dir in self.log_dirs:
            fsync_directory(log_dir)

    def create(
        self, topic: str, partition: int, config: LogConfig | None = None, *, sync_dir: bool = True
    ) -> PartitionLog:
        """Create (or return the existing) log of a partition; ``sync_dir`` False leaves
        the data dir's fsync to the caller (``create_many``)."""
        if not _TOPIC_CHARS.match(topic) or partition < 0:
            raise ValueError(f"bad topic partition {topic!r}-{partition}")
        key = (topic, partition)
        if config is not None:
            self.topic_configs[topic] = config
        existing = self.get(topic, partition)
        if existing is not None:
            return existing
        log_dir = least_loaded(self.log_dirs, self.partition_counts())
        path = os.path.join(log_dir, f"{topic}-{partition}")
        os.makedirs(path, exist_ok=True)
        if sync_dir:
            fsync_directory(log_dir)
        self._dir_of[key] = log_dir
        log = PartitionLog(
            path,
            self.config_for(topic),
            now_ms=self._now_ms,
            had_clean_shutdown=True,
            files=self.files,
        )
        log.on_log_start_offset_moved = self._log_start_offset_moved
        self.logs[key] = log
        return log

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """DeleteRecords on one partition: move its log start offset up to ``offset``
        and make that durable before returning (the log-start checkpoint is written).
        Returns the new log start offset; raises UnknownPartitionError, or what
        ``PartitionLog.delete_records_before`` raises."""
        log = self.get(topic, partition)
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
        keys = [k for k in self.partition_keys() if k[0] == topic]
        for key in keys:
            log = self.logs.pop(key, None)
            if log is not None:
                log.close(clean=False)
            self._unloaded.pop(key, None)
            doomed = f"{self._path(*key)}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}"
            os.rename(self._path(*key), doomed)
            self._dir_of.pop(key, None)
        if keys:
            for log_dir in self.log_dirs:
                fsync_directory(log_dir)
            self.checkpoint()
            for log_dir in self.log_dirs:
                for name in os.listdir(log_dir):
                    if _DELETE_DIR.match(name) and name.rpartition("-")[0].startswith(f"{topic}-"):
                        shutil.rmtree(os.path.join(log_dir, name), ignore_errors=True)
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
        if self._unsynced_loads:
            for log_dir in self.log_dirs:  # one sync per file system would do; dirs are few
                sync_file_system(log_dir)
            self._unsynced_loads = False
        offsets = {k: p.recovery_point for k, p in self._unloaded.items()}
        offsets.update((k, log.recovery_point) for k, log in self.logs.items())
        self._write_checkpoints(RECOVERY_POINT_CHECKPOINT, offsets)

    def checkpoint_log_start_offsets(self) -> None:
        offsets = {k: p.log_start_offset for k, p in self._unloaded.items()}
        offsets.update((k, log.log_start_offset) for k, log in self.logs.items())
        self._write_checkpoints(LOG_START_CHECKPOINT, offsets)

    def _write_checkpoints(self, name: str, offsets: dict[tuple[str, int], int]) -> None:
        """Write checkpoint ``name`` of each log directory with its partitions' offsets;
        a directory that fails (a full disk) does not stop the others (LogStorageError
        after all were tried)."""
        failed: list[str] = []
        for log_dir in self.log_dirs:
            mine = {k: v for k, v in offsets.items() if self._dir_of.get(k, self.log_dirs[0]) == log_dir}
            path = os.path.join(log_dir, name)
            if self._written.get(path) == mine:
                continue
            self._written[path] = None  # unknown until the write below has succeeded
            try:
                write_offset_checkpoint(path, mine)
            except OSError as exc:
                failed.append(f"{path}: {exc}")
                continue
            self._written[path] = mine
        if failed:
            raise LogStorageError(f"cannot write {len(failed)} checkpoints: {failed[0]}")

    def run_periodic(self, now_ms: int) -> None:
        """Time-based work, each duty at its own interval (see "Housekeeping cadence"),
        and a slice of background loading (see "Lazy loading")."""
        self._now_ms = now_ms
        if self._unloaded:
            self.load_pending(LAZY_LOAD_TICK_BUDGET_MS)
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
        """Flush and close every log, checkpoint, then write the clean-shutdown marker.

        A partition still unloaded after an unclean stop is recovered first: the marker
        would otherwise vouch for files nobody checked.  A log that cannot close cleanly
        (offline, a full disk) means no marker and a LogStorageError: the next start
        recovers them."""
        failed: list[str] = []
        try:
            self.load_pending(float("inf"), clean_too=False)
        except LogStorageError as exc:
            failed.append(str(exc))
        for log in self.logs.values():
            if log.is_offline:
                failed.append(f"{log.directory} is offline")
            try:
                log.close(clean=True, fsync=False)
            except LogStorageError as exc:  # e.g. a full disk: recovery will rescan it
                failed.append(str(exc))
                log.close(clean=False)
        try:
            try:
                for log_dir in self.log_dirs:  # one sync for every log's writes above
                    sync_file_system(log_dir)
                self._unsynced_loads = False
            except OSError as exc:
                raise LogStorageError(f"cannot sync the log directories: {exc}") from exc
            self.checkpoint()
        finally:
            self.logs.clear()
            self._unloaded.clear()
        if failed:  # no clean-shutdown marker: the next start recovers these logs
            raise LogStorageError(f"{len(failed)} logs did not close cleanly: {failed[0]}")
        for log_dir in self.log_dirs:
            write_atomically(os.path.join(log_dir, CLEAN_SHUTDOWN_MARKER), b"")

    def _log_to_move(self, topic: str, partition: int, dest_dir: str) -> tuple[PartitionLog, str]:
        """The partition's log and ``dest_dir`` made absolute.  Raises ValueError if
        ``dest_dir`` is not one of ``log_dirs``, UnknownPartitionError if there is no log."""
        dest_dir = os.path.abspath(dest_dir)
        if dest_dir not in self.log_dirs:
            raise ValueError(f"{dest_dir} is not a log directory")
        log = self.get(topic, partition)
        if log is None:
            raise UnknownPartitionError(f"no log for {topic}-{partition}")
        return log, dest_dir

    def begin_move(self, topic: str, partition: int, dest_dir: str) -> Precopy | None:
        """Start moving a partition: note its future directory (DescribeLogDirs shows
        it) and return what a worker thread passes to ``log_dirs.precopy`` before
        ``move_partition`` finishes the move.  None if there is nothing to move (it is
        there already).  Raises as ``move_partition`` does."""
        key = (topic, partition)
        log, dest_dir = self._log_to_move(topic, partition, dest_dir)
        if self._dir_of[key] == dest_dir or key in self.moving:
            return None
        pre = Precopy(new_future_dir(log.directory, dest_dir), log.active_segment.base_offset)
        pre.copied_up_to_offset = log.log_start_offset
        self.moving[key] = (dest_dir, pre)
        return pre

    def end_move(self, topic: str, partition: int) -> None:
        """Forget a move begun by ``begin_move`` (done, or given up: its future
        directory, if still there, is removed)."""
        entry = self.moving.pop((topic, partition), None)
        if entry is not None:
            shutil.rmtree(entry[1].future, ignore_errors=True)

    def move_partition(
        self, topic: str, partition: int, dest_dir: str, hook: PhaseHook | None = None, pre: Precopy | None = None
    ) -> bool:
        """AlterReplicaLogDirs: move a partition's log into ``dest_dir`` (one of
        ``log_dirs``) crash-safely (see kbroker.log.log_dirs).  Returns False if it is
        there already.  Raises UnknownPartitionError, ValueError (not a log dir) or
        LogStorageError (the source is offline, or the copy failed: the source stays)."""
        key = (topic, partition)
        log, dest_dir = self._log_to_move(topic, partition, dest_dir)
        if self._dir_of[key] == dest_dir:
            return False
        if log.is_offline:
            raise LogStorageError(f"{log.directory} is offline")
        source = log.directory
        log.close(clean=True)
        start, point = log.log_start_offset, log.recovery_point
        del self.logs[key]
        self._unloaded[key] = UnloadedPartition(point, start, True)
        target = os.path.join(dest_dir, os.path.basename(source))
        try:
            target, retired = move_partition_files(
                source, dest_dir, log_start_offset=start, recovery_point=point, hook=hook, pre=pre
            )
        except OSError as exc:
            if not os.path.isdir(target):  # before the switch: the source stays
                raise LogStorageError(f"moving {topic}-{partition} failed: {exc}") from exc
            retired = False  # the switch happened: the destination is the log now
        self._dir_of[key] = dest_dir
        self.get(topic, partition)  # reopen at the destination (clean: no rescan)
        self.checkpoint()
        if retired:
            drop_moved_record(target)
        return True
