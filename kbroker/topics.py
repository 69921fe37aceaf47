"""Topics and their partition logs: creation, deletion, partitions, configs.

The :class:`TopicManager` keeps the metadata store and the log manager in step.  Order of
operations makes a crash at any point safe:

- create: logs first, then the metadata record; a crash between leaves log directories
  with no topic, which :meth:`open` removes.
- delete: metadata first, then the logs (renamed, then removed by ``log``); a crash between
  leaves orphan logs, removed likewise at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from kbroker.config import TOPIC_CONFIGS, ConfigError, ConfigType, check_value
from kbroker.dynamic_configs import DynamicConfigs
from kbroker.errors import KafkaError
from kbroker.log import LogConfig, LogManager, PartitionLog
from kbroker.log.file_cache import MIN_OPEN_FILES
from kbroker.log_cleaner import LogCleanerService, cleaner_config
from kbroker.metadata import INTERNAL_TOPICS, TopicMetadata, topic_name_error
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.server import Broker

logger = logging.getLogger(__name__)

# Kafka caps partitions per CreateTopics/CreatePartitions request only by cluster limits;
# each partition here is a directory with open files, so one request may not ask for more.
MAX_PARTITIONS_PER_TOPIC = 10_000

# Values topic configs must take, beyond their type.  An empty cleanup.policy is allowed
# (Kafka 4.2): neither deletion nor compaction, the log is kept whole.
_ENUMS = {
    "cleanup.policy": {"", "delete", "compact", "compact,delete", "delete,compact"},
    "message.timestamp.type": {"CreateTime", "LogAppendTime"},
    "compression.type": {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"},
}


# Kafka 4's undocumented topic config for tests: segment.bytes below its 1 MiB minimum
# (not listed by DescribeConfigs).  The floor is one empty batch header.
INTERNAL_SEGMENT_BYTES = "internal.segment.bytes"
MIN_INTERNAL_SEGMENT_BYTES = 14

# Kafka 4's range validators of topic configs: name -> (min, max).
_RANGES: dict[str, tuple[float, float]] = {
    "segment.bytes": (1024 * 1024, 2**31 - 1),
    "delete.retention.ms": (0, 2**63 - 1),
    "min.compaction.lag.ms": (0, 2**63 - 1),
    "max.compaction.lag.ms": (1, 2**63 - 1),
    "min.cleanable.dirty.ratio": (0.0, 1.0),
}


def validate_topic_configs(configs: dict[str, str | None]) -> None:
    """Raise KafkaError(INVALID_CONFIG) for an unknown name or a bad value."""
    for name, value in configs.items():
        if name == INTERNAL_SEGMENT_BYTES and value is not None:
            if not value.strip().isdigit() or int(value) < MIN_INTERNAL_SEGMENT_BYTES:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {name}")
            continue
        known = TOPIC_CONFIGS.get(name)
        if known is None:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown topic config name: {name}")
        if value is None:
            continue
        try:
            check_value(known[1], name, value)
        except ConfigError as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, str(exc)) from None
        bounds = _RANGES.get(name)
        number = float(value) if known[1] is ConfigType.DOUBLE else int(value) if bounds else 0
        if bounds is not None and not bounds[0] <= number <= bounds[1]:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {name}: Value must be at least {bounds[0]}")
        allowed = _ENUMS.get(name)
        if allowed is not None and value.replace(" ", "") not in allowed:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {name}")


def max_open_files(configured: int) -> int | None:
    """``kbroker.log.max.open.files``: -1 is None (the log's default, derived from
    RLIMIT_NOFILE); values below the cache's minimum count as that minimum."""
    return None if configured < 0 else max(configured, MIN_OPEN_FILES)


class TopicManager:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.logs: LogManager | None = None
        self.cleaner: LogCleanerService | None = None
        self.dynamic: DynamicConfigs | None = None
        self._batching = False  # inside creating_many(): durable work deferred to its end

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, now_ms: int) -> None:
        config = self.broker.config
        self.dynamic = DynamicConfigs(config.data_dir, config.node_id)
        self.logs = LogManager(
            str(config.data_dir),
            self._log_config({}),
            now_ms,
            offset_checkpoint_interval_ms=config.get_int("log.flush.offset.checkpoint.interval.ms"),
            start_offset_checkpoint_interval_ms=config.get_int("log.flush.start.offset.checkpoint.interval.ms"),
            retention_check_interval_ms=config.get_int("log.retention.check.interval.ms"),
            producer_id_expiration_ms=config.get_int("producer.id.expiration.ms"),
            producer_id_expiration_check_interval_ms=config.get_int("producer.id.expiration.check.interval.ms"),
            max_open_files=max_open_files(config.get_int("kbroker.log.max.open.files")),
            log_dirs=[str(d) for d in config.effective_log_dirs],
        )
        self.logs.open_all({t.name: self._log_config(t.configs) for t in self.broker.metadata})
        self.logs.on_load = self._on_log_loaded
        self.cleaner = LogCleanerService(
            str(config.data_dir), self.logs, cleaner_config(self.dynamic.effective(config))
        )
        orphans = {topic for topic, _ in self.logs.partition_keys()} - {t.name for t in self.broker.metadata}
        for topic in sorted(orphans):
            logger.warning("removing the logs of %s: no such topic in the metadata", topic)
            self.logs.delete_topic(topic)
        for t in self.broker.metadata:
            for p in range(t.num_partitions):
                if not self.logs.has(t.name, p):
                    self.logs.create(t.name, p, self._log_config(t.configs))
            self._start_leader_epochs(t)

    def _on_log_loaded(self, key: tuple[str, int], log: PartitionLog) -> None:
        """A partition's log was loaded lazily (first use or in the background): log what
        its recovery found, and record its current leader epoch as open() does."""
        report = log.load_report
        if report.recovered_segments:
            # INFO only when recovery cut something: 10,000 clean rescans are not news
            level = logging.INFO if report.truncated_bytes or report.deleted_segments else logging.DEBUG
            logger.log(
                level,
                "recovered %s-%d after an unclean stop: %d segments and %d bytes scanned, "
                "%d bytes truncated, %d segments deleted",
                key[0],
                key[1],
                report.recovered_segments,
                report.scanned_bytes,
                report.truncated_bytes,
                report.deleted_segments,
            )
        topic = self.broker.metadata.get(key[0])
        if topic is not None and key[1] < topic.num_partitions:
            # fsynced with the log's next flush (thousands may load at once; see LeaderEpochCache)
            log.epoch_cache.assign(topic.leader_epochs[key[1]], log.log_end_offset, durable=False)

    def apply_dynamic_configs(self) -> None:
        """AlterConfigs changed a dynamic broker config: apply it now."""
        if self.cleaner is not None and self.dynamic is not None:
            self.cleaner.reconfigure(cleaner_config(self.dynamic.effective(self.broker.config)))
        if self.logs is not None:  # new topic defaults reach every log at once
            for t in self.broker.metadata:
                self.logs.update_config(t.name, self._log_config(t.configs))

    def close(self) -> None:
        if self.cleaner is not None:
            self.cleaner.stop()
        if self.logs is not None:
            self.logs.close()

    def run_periodic(self, now_ms: int) -> None:
        if self.logs is not None:
            self.logs.run_periodic(now_ms)
        if self.cleaner is not None:
            self.cleaner.tick(now_ms)

    # -- queries ---------------------------------------------------------------------------

    def log(self, topic: str, partition: int) -> PartitionLog | None:
        assert self.logs is not None
        return self.logs.get(topic, partition)

    def topic_defaults(self) -> dict[str, str]:
        """The topic configs of a topic without overrides: static broker properties with
        the dynamic ones (AlterConfigs on BROKER) laid over them."""
        config = self.broker.config if self.dynamic is None else self.dynamic.effective(self.broker.config)
        return config.topic_defaults()

    def effective_configs(self, topic: TopicMetadata) -> dict[str, str]:
        merged = self.topic_defaults()
        merged.update(topic.configs)
        return merged

    def _log_config(self, overrides: dict[str, str]) -> LogConfig:
        merged = self.topic_defaults()
        merged.update(overrides)
        if INTERNAL_SEGMENT_BYTES in merged:
            merged["segment.bytes"] = merged[INTERNAL_SEGMENT_BYTES]
        return LogConfig.from_properties(merged)

    def _start_leader_epochs(self, topic: TopicMetadata, first_partition: int = 0) -> None:
        """Record in each partition's leader-epoch cache that its current leader epoch starts
        at the log end, as a Kafka leader does when it takes over a partition.  Without it a
        new epoch would be known to the log only after its first append, and
        OffsetForLeaderEpoch would answer -1/-1 for the epoch Metadata reports."""
        assert self.logs is not None
        for p in range(first_partition, topic.num_partitions):
            log = self.logs.logs.get((topic.name, p))  # unloaded ones: _on_log_loaded
            if log is not None:
                # fsynced with the log's next flush, before any data of the epoch is durable
                log.epoch_cache.assign(topic.leader_epochs[p], log.log_end_offset, durable=False)

    # -- changes ---------------------------------------------------------------------------

    def check_new_topic(self, name: str, num_partitions: int, replication_factor: int, configs: dict[str, str | None]) -> int:
        """Validate a CreateTopics entry; return the partition count to use."""
        problem = topic_name_error(name)
        if problem:
            raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, problem)
        if name in self.broker.metadata:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{name}' already exists.")
        if num_partitions == -1:
            num_partitions = self.broker.config.get_int("num.partitions")
        if num_partitions < 1 or num_partitions > MAX_PARTITIONS_PER_TOPIC:
            raise KafkaError(
                ErrorCode.INVALID_PARTITIONS,
                f"Number of partitions must be between 1 and {MAX_PARTITIONS_PER_TOPIC}, got {num_partitions}.",
            )
        if replication_factor == 0 or replication_factor < -1:
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, "Replication factor must be larger than 0, or -1 to use the default value.")
        nodes = 1 if self.broker.cluster is None else self.broker.cluster.node_count
        if replication_factor > nodes:
            raise KafkaError(
                ErrorCode.INVALID_REPLICATION_FACTOR,
                f"Unable to replicate the partition {replication_factor} time(s): The target replication factor "
                f"of {replication_factor} cannot be reached because only {nodes} broker(s) are registered.",
            )
        validate_topic_configs(configs)
        return num_partitions

    def replication_factor_for(self, name: str, requested: int = -1) -> int:
        """The replication factor a new topic gets: 1 on a single node; in a virtual cluster
        the requested one, or (-1) the cluster's default for the topic."""
        cluster = self.broker.cluster
        if cluster is None:
            return 1
        return requested if requested > 0 else cluster.default_replication_factor(name)

    @contextmanager
    def creating_many(self) -> Iterator[None]:
        """Topics created inside are made durable together when it ends, before the caller
        answers: one fsync of the data dir for all their partition directories, then one
        metadata save (``MetadataStore.batched``), where creating them one by one costs
        both per topic (CreateTopics of 1,000 topics: 3 fsyncs and one metadata rewrite
        instead of 3,000 and 1,000).  If either fails, the topics are removed from the
        metadata in memory and the error goes on (the request is not answered)."""
        assert self.logs is not None
        if self._batching:
            yield
            return
        self._batching = True
        try:
            with self.broker.metadata.batched():
                try:
                    yield
                finally:
                    self._batching = False
                self.logs.sync_data_dir()  # the directories before the metadata naming them
        finally:
            self._batching = False

    def create_topic(
        self, name: str, num_partitions: int, configs: dict[str, str], now_ms: int, replication_factor: int = -1
    ) -> TopicMetadata:
        assert self.logs is not None
        log_config = self._log_config(configs)
        self.logs.create_many(name, range(num_partitions), log_config, sync_dir=not self._batching)
        topic = self.broker.metadata.create(name, num_partitions, configs)
        self._start_leader_epochs(topic)
        if self.broker.cluster is not None:
            self.broker.cluster.topic_created(topic, self.replication_factor_for(name, replication_factor))
        return topic

    def auto_create(self, name: str, now_ms: int) -> TopicMetadata | None:
        """Create ``name`` with the broker defaults, for Metadata/Produce auto-creation."""
        if name in INTERNAL_TOPICS or topic_name_error(name):
            return None
        return self.create_topic(name, self.broker.config.get_int("num.partitions"), {}, now_ms)

    def ensure_internal_topic(self, name: str, num_partitions: int, configs: dict[str, str], now_ms: int) -> TopicMetadata:
        topic = self.broker.metadata.get(name)
        if topic is None:
            topic = self.create_topic(name, num_partitions, configs, now_ms)
        return topic

    def delete_topic(self, name: str) -> TopicMetadata:
        assert self.logs is not None
        topic = self.broker.metadata.delete(name)
        self.logs.delete_topic(name)
        if self.broker.cluster is not None:
            self.broker.cluster.topic_deleted(name)
        if self.cleaner is not None:
            self.cleaner.forget(name)
        for p in range(topic.num_partitions):
            self.broker.waiters.notify((name, p))
        return topic

    def create_partitions(self, name: str, new_total: int, now_ms: int) -> None:
        assert self.logs is not None
        topic = self.broker.metadata.get(name)
        assert topic is not None
        log_config = self._log_config(topic.configs)
        first_new = topic.num_partitions
        self.logs.create_many(name, range(first_new, new_total), log_config)
        self.broker.metadata.add_partitions(name, new_total)
        self._start_leader_epochs(topic, first_new)
        if self.broker.cluster is not None:
            self.broker.cluster.partitions_added(topic)

    def set_topic_configs(self, name: str, configs: dict[str, str]) -> None:
        assert self.logs is not None
        self.broker.metadata.set_configs(name, configs)
        self.logs.update_config(name, self._log_config(configs))
