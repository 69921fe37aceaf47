"""What OffsetCommit and TxnOffsetCommit share: partitions that do not exist are refused
before the group coordinator sees the request.

Kafka 4 (KafkaApis) answers UNKNOWN_TOPIC_OR_PARTITION for every partition of a topic the
broker does not know, and for each partition of a known topic beyond its partition count;
only the remaining partitions reach the coordinator, so a request naming nothing that
exists creates no group, checks no generation and touches no transaction.  Topic ids
(OffsetCommit v10+) are not served, so topics are looked up by name.
"""

from __future__ import annotations

from collections.abc import Iterable

from kbroker.metadata import MetadataStore


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
