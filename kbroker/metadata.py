"""Cluster metadata of a single node: cluster id, topics, topic ids, partitions, configs, epochs.

Persisted as one JSON document in the data dir, rewritten atomically (write a temporary
file, fsync it, rename it over the old one, fsync the directory), so a crash leaves the
old or the new document, never half of one.  Changes are small and rare (topic creation,
deletion, config changes), so rewriting the whole document is cheap -- once per change,
not once per topic: topics created inside :meth:`MetadataStore.batched` (a CreateTopics
request) are written together when it ends, before the request is answered; if that write
fails they are removed again, so memory never holds a topic the disk does not.

Leader epochs: each partition's leader epoch is bumped every time the broker starts (a
restart is a leader election in Kafka's terms) and never goes down, so clients that cache
epochs (librdkafka ignores metadata older than what it has) keep working across restarts.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

METADATA_FILE = "kbroker-metadata.json"
META_PROPERTIES = "meta.properties"
# Kafka's limit: a topic directory name is "<topic>-<partition>" and must fit a file name.
MAX_TOPIC_NAME_LENGTH = 249
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]+$")
# Producer ids reserved per metadata write (Kafka's controller hands out blocks of 1000 too).
PRODUCER_ID_BLOCK_SIZE = 1000
# The coordinators' internal topics.
OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
SHARE_GROUP_STATE_TOPIC = "__share_group_state"
INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, SHARE_GROUP_STATE_TOPIC})


def topic_name_error(name: str) -> str | None:
    """Why ``name`` is not a legal topic name (Kafka's rules), or None."""
    if not name:
        return "topic name is empty"
    if name in (".", ".."):
        return "topic name cannot be '.' or '..'"
    if len(name) > MAX_TOPIC_NAME_LENGTH:
        return f"topic name is longer than {MAX_TOPIC_NAME_LENGTH} characters"
    if not _LEGAL_TOPIC.match(name):
        return "topic name may contain only ASCII alphanumerics, '.', '_' and '-'"
    return None


@dataclass
class TopicMetadata:
    name: str
    topic_id: uuid.UUID
    leader_epochs: list[int]
    configs: dict[str, str] = field(default_factory=dict)

    @property
    def num_partitions(self) -> int:
        return len(self.leader_epochs)

    @property
    def is_internal(self) -> bool:
        return self.name in INTERNAL_TOPICS


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class MetadataStore:
    """The topics of this node.  Owned by the event loop; not thread-safe."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.cluster_id = ""
        self._topics: dict[str, TopicMetadata] = {}
        self._by_id: dict[uuid.UUID, TopicMetadata] = {}
        # Producer ids are handed out from a block whose end is persisted before the first id
        # of the block is used, so no id is ever handed out twice, even after a crash.
        self._next_producer_id = 0
        self._producer_id_block_end = 0
        # Stand-ins for the KRaft metadata log (__cluster_metadata) that DescribeQuorum reports:
        # its epoch, bumped at every start (a single voter elects itself anew), and its end
        # offset, one record per metadata change written.  Both persisted, never lower.
        self.quorum_epoch = 0
        self.metadata_log_end_offset = 0
        # Inside batched(): the topics created so far, saved when it ends; None outside.
        self._batch: list[str] | None = None

    def load(self, node_id: int) -> None:
        """Read (or create) the cluster id and the topics; bump every leader epoch."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        meta = self.data_dir / META_PROPERTIES
        if meta.exists():
            for line in meta.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "cluster.id":
                    self.cluster_id = value.strip()
        if not self.cluster_id:
            # Kafka's cluster ids are a base64url UUID without padding (22 chars).
            import base64

            self.cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            _write_atomically(
                meta, f"version=1\ncluster.id={self.cluster_id}\nnode.id={node_id}\n".encode()
            )
        path = self.data_dir / METADATA_FILE
        if path.exists():
            doc = json.loads(path.read_text())
            self._next_producer_id = self._producer_id_block_end = doc.get("producer_id_block_end", 0)
            self.quorum_epoch = doc.get("quorum_epoch", 0)
            self.metadata_log_end_offset = doc.get("metadata_log_end_offset", 0)
            for t in doc["topics"]:
                topic = TopicMetadata(
                    name=t["name"],
                    topic_id=uuid.UUID(t["topic_id"]),
                    leader_epochs=[e + 1 for e in t["leader_epochs"]],
                    configs=dict(t["configs"]),
                )
                self._add(topic)
        self.quorum_epoch += 1
        self.save()

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Topics created inside are saved once, when it ends (see the module docstring).
        Only creations may happen inside.  If the body raises, or the save fails, the
        topics created inside are removed from memory and the exception goes on."""
        if self._batch is not None:  # nested: the outer one saves
            yield
            return
        batch: list[str] = []
        self._batch = batch
        try:
            yield
            self._batch = None
            if batch:
                self.save()
        except BaseException:
            self._batch = None
            for name in batch:
                topic = self._topics.pop(name, None)
                if topic is not None:
                    self._by_id.pop(topic.topic_id, None)
            raise

    def save(self) -> None:
        assert self._batch is None, "only creations are batched"
        self.metadata_log_end_offset += 1
        doc = {
            "version": 1,
            "producer_id_block_end": self._producer_id_block_end,
            "quorum_epoch": self.quorum_epoch,
            "metadata_log_end_offset": self.metadata_log_end_offset,
            "topics": [
                {
                    "name": t.name,
                    "topic_id": str(t.topic_id),
                    "leader_epochs": t.leader_epochs,
                    "configs": t.configs,
                }
                for t in sorted(self._topics.values(), key=lambda t: t.name)
            ],
        }
        _write_atomically(self.data_dir / METADATA_FILE, json.dumps(doc, indent=1).encode())

    def allocate_producer_id(self) -> int:
        if self._next_producer_id >= self._producer_id_block_end:
            self._producer_id_block_end = self._next_producer_id + PRODUCER_ID_BLOCK_SIZE
            self.save()
        producer_id = self._next_producer_id
        self._next_producer_id += 1
        return producer_id

    def _add(self, topic: TopicMetadata) -> None:
        self._topics[topic.name] = topic
        self._by_id[topic.topic_id] = topic

    def __iter__(self) -> Iterator[TopicMetadata]:
        return iter(list(self._topics.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def get(self, name: str) -> TopicMetadata | None:
        return self._topics.get(name)

    def by_id(self, topic_id: uuid.UUID) -> TopicMetadata | None:
        return self._by_id.get(topic_id)

    def create(self, name: str, num_partitions: int, configs: dict[str, str]) -> TopicMetadata:
        """Add a topic (the caller validated the name and creates the logs first)."""
        topic_id = uuid.uuid4()
        while topic_id in self._by_id or topic_id.int >> 64 == 0:
            topic_id = uuid.uuid4()
        topic = TopicMetadata(name, topic_id, [0] * num_partitions, dict(configs))
        self._add(topic)
        if self._batch is not None:
            self._batch.append(name)  # saved when the batch ends
            return topic
        try:
            self.save()
        except OSError:  # e.g. a full disk: the topic must not exist in memory alone
            del self._topics[name]
            del self._by_id[topic_id]
            raise
        return topic

    def add_partitions(self, name: str, new_total: int) -> None:
        topic = self._topics[name]
        topic.leader_epochs.extend([0] * (new_total - topic.num_partitions))
        self.save()

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self._topics[name].configs = dict(configs)
        self.save()

    def delete(self, name: str) -> TopicMetadata:
        topic = self._topics.pop(name)
        del self._by_id[topic.topic_id]
        self.save()
        return topic
