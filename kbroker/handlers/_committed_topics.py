"""What OffsetCommit and TxnOffsetCommit share: partitions that do not exist are refused
before the group coordinator sees the request.

Kafka 4 (KafkaApis) answers UNKNOWN_TOPIC_OR_PARTITION for every partition of a topic the
broker does not know, and for each partition of a known topic beyond its partition count;
only the remaining partitions reach the coordinator, so a request naming nothing that
exists creates no group, checks no generation and touches no transaction.  Topic ids
(OffsetCommit v10+) are not served, so topics are looked up by name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, TypeVar

from kbroker.metadata import MetadataStore
from kbroker.wire.errors import ErrorCode

R = TypeVar("R")


def missing_partitions(
    metadata: MetadataStore, requested: Iterable[tuple[str, Iterable[int]]]
) -> set[tuple[str, int]]:
    """The (topic, partition) pairs of ``requested`` (topic name, partition indexes) that
    do not exist on this broker."""
    missing: set[tuple[str, int]] = set()
    for name, partitions in requested:
        topic = metadata.get(name)
        for index in partitions:
            if topic is None or not 0 <= index < topic.num_partitions:
                missing.add((name, index))
    return missing


def requested(req: Any) -> Iterable[tuple[str, Iterable[int]]]:
    """(topic name, partition indexes) of an OffsetCommit or TxnOffsetCommit request."""
    return ((t.name, (p.partition_index for p in t.partitions)) for t in req.topics)


def without_missing(req: R, missing: set[tuple[str, int]]) -> R:
    """A shallow copy of ``req`` naming only the partitions not in ``missing``; topics left
    with no partition are dropped."""
    existing: Any = copy.copy(req)
    topics = []
    for t in existing.topics:
        kept = [p for p in t.partitions if (t.name, p.partition_index) not in missing]
        if kept:
            topic = copy.copy(t)
            topic.partitions = kept
            topics.append(topic)
    existing.topics = topics
    return existing  # type: ignore[no-any-return]


def error_code(missing: set[tuple[str, int]], answered: dict[tuple[str, int], int], name: str, index: int) -> int:
    """A partition's answer: UNKNOWN_TOPIC_OR_PARTITION if it does not exist, else what the
    coordinator said."""
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if (name, index) in missing else answered[(name, index)]
