"""What OffsetCommit and TxnOffsetCommit share: partitions that do not exist are refused
before the group coordinator sees the request.

Kafka 4 (KafkaApis) answers UNKNOWN_TOPIC_OR_PARTITION for every partition of a topic the
broker does not know, and for each partition of a known topic beyond its partition count;
only the remaining partitions reach the coordinator, so a request naming nothing that
exists creates no group, checks no generation and touches no transaction.  Topics are
looked up by name: OffsetCommit v10 (topic ids) names them from known ids before this.

ACLs are checked before that, as Kafka does: TxnOffsetCommit needs WRITE on the transactional
id, both need READ on the group (else every partition gets the *_AUTHORIZATION_FAILED code)
and READ on each topic (else its partitions get TOPIC_AUTHORIZATION_FAILED).  Refused
partitions are left out of what reaches the coordinator, like missing ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kbroker.acl.check import GROUP, TOPIC, TRANSACTIONAL_ID, allowed
from kbroker.acl.model import AclOperation
from kbroker.metadata import MetadataStore
from kbroker.wire.errors import ErrorCode

if TYPE_CHECKING:
    from kbroker.registry import RequestContext

R = TypeVar("R")


def denied_partitions(ctx: RequestContext, req: Any, transactional_id: str | None = None) -> dict[tuple[str, int], int]:
    """The (topic, partition) pairs the ACLs refuse, with their error code (empty without an
    authorizer)."""
    if ctx.broker.authorizer is None:
        return {}
    whole: ErrorCode | None = None
    if transactional_id is not None and not allowed(ctx, AclOperation.WRITE, TRANSACTIONAL_ID, transactional_id):
        whole = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    elif not allowed(ctx, AclOperation.READ, GROUP, req.group_id):
        whole = ErrorCode.GROUP_AUTHORIZATION_FAILED
    denied: dict[tuple[str, int], int] = {}
    for t in req.topics:
        code = whole if whole is not None else (None if allowed(ctx, AclOperation.READ, TOPIC, t.name) else ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        if code is not None:
            denied.update(((t.name, p.partition_index), code) for p in t.partitions)
    return denied


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


def error_code(
    missing: set[tuple[str, int]], answered: dict[tuple[str, int], int], name: str, index: int,
    denied: dict[tuple[str, int], int] | None = None,
) -> int:
    """A partition's answer: the ACL refusal if any, UNKNOWN_TOPIC_OR_PARTITION if it does
    not exist, else what the coordinator said."""
    key = (name, index)
    if denied and key in denied:
        return denied[key]
    return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if key in missing else answered[key]
