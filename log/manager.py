"""LogManager: the partition logs of one data directory.

Layout::

    <data_dir>/
        <topic>-<partition>/                 one PartitionLog (parsed at the LAST dash)
        <topic>-<partition>.<hex>-delete/    a topic deletion in progress
        recovery-point-offset-checkpoint     "topic partition offset" lines
        log-start-offset-checkpoint
        .kbroker_cleanshutdown               present only between close() and open_all()

Deleting a topic renames each partition directory to ``*.<hex>-delete`` (one atomic
rename, directory fsynced) and only then removes the files; a crash midway leaves a
``-delete`` directory that ``open_all`` finishes removing, never half a partition.
Checkpoints are written tmp + fsync + rename.  Not thread-safe (one owner).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Mapping

from log.checkpoints import (
    fsync_directory,
    read_offset_checkpoint,
    write_atomically,
    write_offset_checkpoint,
)
from log.config import LogConfig
from log.partition_log import PartitionLog

RECOVERY_POINT_CHECKPOINT = "recovery-point-offset-checkpoint"
LOG_START_CHECKPOINT = "log-start-offset-checkpoint"
CLEAN_SHUTDOWN_MARKER = ".kbroker_cleanshutdown"
DELETE_DIR_SUFFIX = "-delete"
_DELETE_DIR = re.compile(r"^.+-\d+\.[0-9a-f]{32}-delete$")
_TOPIC_CHARS = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


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

    def __init__(self, data_dir: str, default_config: LogConfig, now_ms: int) -> None:
        self.data_dir = data_dir
        self.default_config = default_config
        self.topic_configs: dict[str, LogConfig] = {}
        self.logs: dict[tuple[str, int], PartitionLog] = {}
        self.had_clean_shutdown = False
        self._now_ms = now_ms
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
            self.logs[parsed] = PartitionLog(
                path,
                self.config_for(parsed[0]),
                now_ms=self._now_ms,
                log_start_offset=starts.get(parsed, 0),
                recovery_point=recovery.get(parsed, 0),
                had_clean_shutdown=self.had_clean_shutdown,
            )
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
        self.logs[key] = log
        return log

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
        """Write the recovery-point and log-start-offset checkpoints."""
        write_offset_checkpoint(
            os.path.join(self.data_dir, RECOVERY_POINT_CHECKPOINT),
            {k: log.recovery_point for k, log in self.logs.items()},
        )
        write_offset_checkpoint(
            os.path.join(self.data_dir, LOG_START_CHECKPOINT),
            {k: log.log_start_offset for k, log in self.logs.items()},
        )

    def run_periodic(self, now_ms: int) -> None:
        """Time-based work: segment.ms rolls, flush.ms flushes, retention, checkpoints."""
        self._now_ms = now_ms
        for log in self.logs.values():
            log.maybe_roll(now_ms)
            log.maybe_flush(now_ms)
            log.enforce_retention(now_ms)
        self.checkpoint()

    def flush_all(self) -> None:
        for log in self.logs.values():
            log.flush()

    def close(self) -> None:
        """Flush and close every log, checkpoint, then write the clean-shutdown marker."""
        for log in self.logs.values():
            log.close(clean=True)
        self.checkpoint()
        write_atomically(os.path.join(self.data_dir, CLEAN_SHUTDOWN_MARKER), b"")
        self.logs.clear()
