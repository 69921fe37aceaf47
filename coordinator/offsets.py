"""Committed offsets: the store, OffsetCommit/OffsetFetch/OffsetDelete, and retention.

Offsets change only by replaying ``__consumer_offsets`` records: a live commit builds its
records and applies them through the same ``replay_offset_commit`` that start-up uses,
so "replay equals live" holds by construction (Kafka's OffsetMetadataManager).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from uuid import UUID

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.records import (
    OffsetCommitRecord,
    decode_record,
    offset_commit_key,
    offset_commit_value,
)
from kbroker.coordinator.result import Effects, Record
from kbroker.coordinator.state import GroupState
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.internal.offset_commit_key import OffsetCommitKey
from kbroker.wire.messages.internal.offset_commit_value import OffsetCommitValue
from kbroker.wire.messages.offset_commit_request import OffsetCommitRequest
from kbroker.wire.messages.offset_commit_response import (
    OffsetCommitResponse,
    OffsetCommitResponsePartition,
    OffsetCommitResponseTopic,
)
from kbroker.wire.messages.offset_delete_request import OffsetDeleteRequest
from kbroker.wire.messages.offset_delete_response import (
    OffsetDeleteResponse,
    OffsetDeleteResponsePartition,
    OffsetDeleteResponseTopic,
)
from kbroker.wire.messages.offset_fetch_response import (
    OffsetFetchResponseGroup,
    OffsetFetchResponsePartitions,
    OffsetFetchResponseTopics,
)
from kbroker.wire.messages.txn_offset_commit_request import TxnOffsetCommitRequest
from kbroker.wire.messages.txn_offset_commit_response import (
    TxnOffsetCommitResponse,
    TxnOffsetCommitResponsePartition,
    TxnOffsetCommitResponseTopic,
)

if TYPE_CHECKING:
    from kbroker.coordinator.group import ClassicGroup
    from kbroker.coordinator.group_manager import GroupManager

__all__ = ["OffsetAndMetadata", "OffsetManager", "OffsetStore", "TopicNameResolver"]

INVALID_OFFSET = -1
NO_PRODUCER_ID = -1
TopicNameResolver = Callable[[UUID], "str | None"]


class CommitRejected(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


@dataclass(frozen=True, slots=True)
class OffsetAndMetadata:
    committed_offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp_ms: int
    expire_timestamp_ms: int | None = None
    record_sequence: int = field(default=0, compare=False)
    """Order of the record in its ``__consumer_offsets`` partition (replay order); decides
    which of a transactional and a plain commit of the same partition is newer."""

    def to_value(self) -> OffsetCommitValue:
        return OffsetCommitValue(
            offset=self.committed_offset,
            leader_epoch=self.leader_epoch,
            metadata=self.metadata,
            commit_timestamp=self.commit_timestamp_ms,
            expire_timestamp=-1 if self.expire_timestamp_ms is None else self.expire_timestamp_ms,
        )

    @staticmethod
    def from_value(value: OffsetCommitValue, record_sequence: int = 0) -> OffsetAndMetadata:
        return OffsetAndMetadata(
            committed_offset=value.offset,
            leader_epoch=value.leader_epoch,
            metadata=value.metadata,
            commit_timestamp_ms=value.commit_timestamp,
            expire_timestamp_ms=None if value.expire_timestamp == -1 else value.expire_timestamp,
            record_sequence=record_sequence,
        )


@dataclass(slots=True)
class OffsetStore:
    """group -> topic -> partition -> offset; empty maps are pruned."""

    offsets: dict[str, dict[str, dict[int, OffsetAndMetadata]]] = field(default_factory=dict)
    pending: dict[int, dict[str, dict[tuple[str, int], OffsetAndMetadata]]] = field(
        default_factory=dict
    )
    """producer id -> group -> (topic, partition) -> offset: transactional commits that
    wait for their transaction's marker (TxnOffsetCommit). OffsetFetch with
    require_stable answers UNSTABLE_OFFSET_COMMIT for these partitions."""

    def get(self, group_id: str, topic: str, partition: int) -> OffsetAndMetadata | None:
        return self.offsets.get(group_id, {}).get(topic, {}).get(partition)

    def put(self, group_id: str, topic: str, partition: int, value: OffsetAndMetadata) -> None:
        self.offsets.setdefault(group_id, {}).setdefault(topic, {})[partition] = value

    def delete(self, group_id: str, topic: str, partition: int) -> None:
        topics = self.offsets.get(group_id)
        if topics is None or topic not in topics:
            return
        topics[topic].pop(partition, None)
        if not topics[topic]:
            del topics[topic]
        if not topics:
            del self.offsets[group_id]

    def group_offsets(self, group_id: str) -> dict[str, dict[int, OffsetAndMetadata]]:
        return self.offsets.get(group_id, {})

    def has_pending_transactional_offset(self, group_id: str, topic: str, partition: int) -> bool:
        return any(
            (topic, partition) in groups.get(group_id, {}) for groups in self.pending.values()
        )

    def has_pending_transactions(self, group_id: str) -> bool:
        return any(group_id in groups for groups in self.pending.values())


class OffsetManager:
    """The offset APIs. Shares the group map of ``GroupManager`` (same single owner)."""

    def __init__(
        self,
        groups: GroupManager,
        topic_name_for_id: TopicNameResolver | None = None,
    ) -> None:
        self.groups = groups
        self.store = OffsetStore()
        self.topic_name_for_id = topic_name_for_id or (lambda _id: None)
        self.record_sequence = 0
        self.is_consumer_group: Callable[[str], bool] = lambda _group_id: False
        """Set by ``GroupCoordinator``: a KIP-848 group owns this id (no classic group)."""

    @property
    def config(self) -> GroupConfig:
        return self.groups.config

    # -- records -----------------------------------------------------------------------
    def replay_offset_commit(
        self,
        key: OffsetCommitKey,
        value: OffsetCommitValue | None,
        producer_id: int = NO_PRODUCER_ID,
    ) -> None:
        """Apply one offset record; a ``producer_id`` marks a transactional record, which
        stays pending until ``replay_end_transaction``."""
        self.record_sequence += 1
        if value is None:
            self.store.delete(key.group, key.topic, key.partition)
            return
        if self.groups.get(key.group) is None and not self.is_consumer_group(key.group):
            # An offset for an unknown group: a simple group (manual commits) owns it.
            self.groups.get_or_create_group(key.group)
        offset = OffsetAndMetadata.from_value(value, self.record_sequence)
        if producer_id != NO_PRODUCER_ID:
            pending = self.store.pending.setdefault(producer_id, {}).setdefault(key.group, {})
            pending[(key.topic, key.partition)] = offset
        else:
            self.store.put(key.group, key.topic, key.partition, offset)

    def replay_end_transaction(self, producer_id: int, committed: bool) -> None:
        """A COMMIT/ABORT marker of ``producer_id`` reached ``__consumer_offsets``: its
        pending offsets become committed (unless a later plain commit exists) or vanish."""
        pending = self.store.pending.pop(producer_id, {})
        if not committed:
            return
        for group_id, offsets in pending.items():
            if self.groups.get(group_id) is None and not self.is_consumer_group(group_id):
                continue  # the group was deleted meanwhile
            for (topic, partition), offset in offsets.items():
                existing = self.store.get(group_id, topic, partition)
                if existing is None or offset.record_sequence > existing.record_sequence:
                    self.store.put(group_id, topic, partition, offset)

    def _append_and_replay(
        self,
        fx: Effects,
        group_id: str,
        topic: str,
        partition: int,
        offset: OffsetAndMetadata | None,
        producer_id: int = NO_PRODUCER_ID,
        producer_epoch: int = -1,
    ) -> None:
        key = offset_commit_key(group_id, topic, partition)
        value = None if offset is None else offset_commit_value(offset.to_value())
        fx.records.append(Record(key, value, group_id, producer_id, producer_epoch))
        # Apply what was written, bytes and all (a v1 value drops the leader epoch).
        record = decode_record(key, value)
        assert isinstance(record, OffsetCommitRecord)
        self.replay_offset_commit(record.key, record.value, producer_id)

    # -- OffsetCommit ------------------------------------------------------------------
    def validate_offset_commit(self, request: OffsetCommitRequest) -> ClassicGroup:
        return self.validate_commit(
            request.group_id,
            request.generation_id_or_member_epoch,
            request.member_id,
            request.group_instance_id,
            is_transactional=False,
        )

    def validate_commit(
        self,
        group_id: str,
        generation: int,
        member_id: str,
        group_instance_id: str | None,
        *,
        is_transactional: bool,
    ) -> ClassicGroup:
        """Kafka's ClassicGroup.validateOffsetCommit; raises ``CommitRejected``."""
        group = self.groups.get(group_id)
        if group is None:
            if generation < 0:
                # Admin client or a consumer without group management: a "simple" group.
                return self.groups.get_or_create_group(group_id)
            raise CommitRejected(ErrorCode.ILLEGAL_GENERATION)
        if group.is_in(GroupState.DEAD):
            raise CommitRejected(ErrorCode.COORDINATOR_NOT_AVAILABLE)
        if generation < 0 and group.is_in(GroupState.EMPTY):
            return group
        if generation >= 0 or member_id or group_instance_id is not None:
            code = self.groups.validate_member(group, member_id, group_instance_id)
            if code is not ErrorCode.NONE:
                raise CommitRejected(code)
            if generation != group.generation_id:
                raise CommitRejected(ErrorCode.ILLEGAL_GENERATION)
        elif not is_transactional and not group.is_in(GroupState.EMPTY):
            # A commit without member id and generation only suits an Empty group (old
            # TxnOffsetCommit versions carry neither, so they are exempt).
            raise CommitRejected(ErrorCode.UNKNOWN_MEMBER_ID)
        if not is_transactional and group.is_in(GroupState.COMPLETING_REBALANCE):
            # The member has the new generation from its JoinGroup answer but no
            # assignment yet: let it retry after SyncGroup.
            raise CommitRejected(ErrorCode.REBALANCE_IN_PROGRESS)
        return group

    @staticmethod
    def commit_error_response(
        request: OffsetCommitRequest, code: ErrorCode
    ) -> OffsetCommitResponse:
        """Every partition of the request answered with ``code``."""
        return OffsetCommitResponse(
            topics=[
                OffsetCommitResponseTopic(
                    name=topic.name,
                    topic_id=topic.topic_id,
                    partitions=[
                        OffsetCommitResponsePartition(
                            partition_index=p.partition_index, error_code=code
                        )
                        for p in topic.partitions
                    ],
                )
                for topic in request.topics
            ]
        )

    def commit_offsets(
        self, request: OffsetCommitRequest, api_version: int, fx: Effects
    ) -> OffsetCommitResponse:
        try:
            group = self.validate_offset_commit(request)
        except CommitRejected as rejected:
            return self.commit_error_response(request, rejected.code)
        if group.is_in(GroupState.STABLE, GroupState.PREPARING_REBALANCE):
            member = group.members.get(request.member_id)
            if member is not None:
                # In the classic protocol a commit also keeps the session alive.
                self.groups.reschedule_heartbeat(group, member)
        return self.write_commits(request, api_version, group.group_id, fx)

    def write_commits(
        self, request: OffsetCommitRequest, api_version: int, group_id: str, fx: Effects
    ) -> OffsetCommitResponse:
        """Write the (already validated) commits of ``request`` for ``group_id``."""
        now_ms = self.groups.now_ms()
        response = OffsetCommitResponse()
        expire_ms = None if request.retention_time_ms == -1 else now_ms + request.retention_time_ms
        for topic in request.topics:
            name: str | None = topic.name
            if api_version >= 10:
                name = self.topic_name_for_id(topic.topic_id)
            out = OffsetCommitResponseTopic(name=topic.name, topic_id=topic.topic_id)
            response.topics.append(out)
            for p in topic.partitions:
                if name is None:
                    code = ErrorCode.UNKNOWN_TOPIC_ID
                elif (
                    p.committed_metadata is not None
                    and len(p.committed_metadata) > self.config.offset_metadata_max_bytes
                ):
                    code = ErrorCode.OFFSET_METADATA_TOO_LARGE
                else:
                    code = ErrorCode.NONE
                    offset = OffsetAndMetadata(
                        committed_offset=p.committed_offset,
                        leader_epoch=p.committed_leader_epoch,
                        metadata=p.committed_metadata or "",
                        commit_timestamp_ms=now_ms,
                        expire_timestamp_ms=expire_ms,
                    )
                    self._append_and_replay(fx, group_id, name, p.partition_index, offset)
                out.partitions.append(
                    OffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                )
        return response

    # -- TxnOffsetCommit ---------------------------------------------------------------
    def commit_transactional_offsets(
        self,
        request: TxnOffsetCommitRequest,
        fx: Effects,
        consumer_group_code: ErrorCode | None = None,
    ) -> TxnOffsetCommitResponse:
        """Offsets committed inside a transaction: written with the producer id and epoch
        (the runtime appends them as a transactional batch), visible after COMMIT.
        ``consumer_group_code``: the verdict of a KIP-848 group's own check (the classic
        check is skipped)."""
        now_ms = self.groups.now_ms()
        if consumer_group_code is not None:
            rejected = consumer_group_code
        else:
            try:
                self.validate_commit(
                    request.group_id,
                    request.generation_id,
                    request.member_id,
                    request.group_instance_id,
                    is_transactional=True,
                )
                rejected = ErrorCode.NONE
            except CommitRejected as error:
                rejected = error.code
        response = TxnOffsetCommitResponse()
        for topic in request.topics:
            out = TxnOffsetCommitResponseTopic(name=topic.name)
            response.topics.append(out)
            for p in topic.partitions:
                code = rejected
                if (
                    code is ErrorCode.NONE
                    and p.committed_metadata is not None
                    and (len(p.committed_metadata) > self.config.offset_metadata_max_bytes)
                ):
                    code = ErrorCode.OFFSET_METADATA_TOO_LARGE
                if code is ErrorCode.NONE:
                    offset = OffsetAndMetadata(
                        committed_offset=p.committed_offset,
                        leader_epoch=p.committed_leader_epoch,
                        metadata=p.committed_metadata or "",
                        commit_timestamp_ms=now_ms,
                    )
                    self._append_and_replay(
                        fx,
                        request.group_id,
                        topic.name,
                        p.partition_index,
                        offset,
                        request.producer_id,
                        request.producer_epoch,
                    )
                out.partitions.append(
                    TxnOffsetCommitResponsePartition(
                        partition_index=p.partition_index, error_code=code
                    )
                )
        return response

    # -- OffsetFetch -------------------------------------------------------------------
    def fetch_offsets(
        self,
        group_id: str,
        topics: list[tuple[str, UUID, list[int]]] | None,
        require_stable: bool,
    ) -> OffsetFetchResponseGroup:
        """Offsets of one group; ``topics=None`` means all of them. Unknown groups and
        partitions answer offset -1 without an error, as Kafka does."""
        out = OffsetFetchResponseGroup(group_id=group_id)
        known = self.groups.get(group_id) is not None or self.is_consumer_group(group_id)
        stored = self.store.group_offsets(group_id) if known else {}
        if topics is None:
            topics = [(t, UUID(int=0), sorted(parts)) for t, parts in sorted(stored.items())]
        for name, topic_id, partitions in topics:
            topic_out = OffsetFetchResponseTopics(name=name, topic_id=topic_id)
            out.topics.append(topic_out)
            for index in partitions:
                offset = stored.get(name, {}).get(index)
                if require_stable and self.store.has_pending_transactional_offset(
                    group_id, name, index
                ):
                    topic_out.partitions.append(
                        OffsetFetchResponsePartitions(
                            partition_index=index,
                            committed_offset=INVALID_OFFSET,
                            error_code=ErrorCode.UNSTABLE_OFFSET_COMMIT,
                        )
                    )
                elif offset is None:
                    topic_out.partitions.append(
                        OffsetFetchResponsePartitions(
                            partition_index=index, committed_offset=INVALID_OFFSET, metadata=""
                        )
                    )
                else:
                    topic_out.partitions.append(
                        OffsetFetchResponsePartitions(
                            partition_index=index,
                            committed_offset=offset.committed_offset,
                            committed_leader_epoch=offset.leader_epoch,
                            metadata=offset.metadata,
                        )
                    )
        return out

    # -- OffsetDelete ------------------------------------------------------------------
    def delete_offsets(
        self,
        request: OffsetDeleteRequest,
        fx: Effects,
        consumer_group_topics: set[str] | None = None,
    ) -> OffsetDeleteResponse:
        """``consumer_group_topics``: the subscribed topics of the KIP-848 group that owns
        this id (None: a classic group)."""
        subscribed: Callable[[str], bool]
        if consumer_group_topics is not None:
            subscribed = consumer_group_topics.__contains__
        else:
            group = self.groups.get(request.group_id)
            if group is None or group.is_in(GroupState.DEAD):
                return OffsetDeleteResponse(error_code=ErrorCode.GROUP_ID_NOT_FOUND)
            if (
                group.is_in(
                    GroupState.STABLE,
                    GroupState.PREPARING_REBALANCE,
                    GroupState.COMPLETING_REBALANCE,
                )
                and not group.uses_consumer_protocol()
            ):
                return OffsetDeleteResponse(error_code=ErrorCode.NON_EMPTY_GROUP)
            subscribed = group.is_subscribed_to_topic
        response = OffsetDeleteResponse()
        stored = self.store.group_offsets(request.group_id)
        for topic in request.topics:
            topic_out = OffsetDeleteResponseTopic(name=topic.name)
            response.topics.append(topic_out)
            if subscribed(topic.name):
                for p in topic.partitions:
                    topic_out.partitions.append(
                        OffsetDeleteResponsePartition(
                            partition_index=p.partition_index,
                            error_code=ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC,
                        )
                    )
                continue
            for p in topic.partitions:
                if p.partition_index in stored.get(topic.name, {}):
                    topic_out.partitions.append(
                        OffsetDeleteResponsePartition(partition_index=p.partition_index)
                    )
                    self._append_and_replay(
                        fx, request.group_id, topic.name, p.partition_index, None
                    )
        return response

    def delete_all_offsets(self, group_id: str, fx: Effects) -> int:
        doomed = [
            (topic, partition)
            for topic, partitions in self.store.group_offsets(group_id).items()
            for partition in partitions
        ]
        for topic, partition in doomed:
            self._append_and_replay(fx, group_id, topic, partition, None)
        return len(doomed)

    # -- retention ---------------------------------------------------------------------
    def cleanup_expired_offsets(self, group: ClassicGroup, now_ms: int, fx: Effects) -> bool:
        """Tombstone the group's expired offsets; True if it has none left.

        Expiry base (Kafka's ClassicGroup.offsetExpirationCondition): an Empty group with
        a protocol type counts from when it became empty (else the commit time); a simple
        group (no protocol type) from each commit; a Stable consumer group from the
        commit, only for topics nobody subscribes to; other groups keep their offsets.
        A commit with an explicit expire timestamp (OffsetCommit v2-4 retention) expires then.
        """
        stored = self.store.group_offsets(group.group_id)
        if not stored:
            return not self.store.has_pending_transactions(group.group_id)
        base: Callable[[OffsetAndMetadata], int] | None
        if group.protocol_type is None or group.protocol_type == "":
            base = _commit_time
        elif group.is_in(GroupState.EMPTY):
            empty_since = group.state_timestamp_ms
            base = _commit_time if empty_since is None else (lambda _o: empty_since)
        elif (
            group.uses_consumer_protocol()
            and group.subscribed is not None
            and group.is_in(GroupState.STABLE)
        ):
            base = _commit_time
        else:
            base = None
        if base is None:
            return False
        return self.expire_offsets(group.group_id, base, group.is_subscribed_to_topic, now_ms, fx)

    def expire_offsets(
        self,
        group_id: str,
        base: Callable[[OffsetAndMetadata], int],
        is_subscribed: Callable[[str], bool],
        now_ms: int,
        fx: Effects,
    ) -> bool:
        """Tombstone the group's offsets whose retention (from ``base``) has passed, except
        those of subscribed topics and those a transaction still holds; True if none is left."""
        stored = self.store.group_offsets(group_id)
        if not stored:
            return not self.store.has_pending_transactions(group_id)
        retention_ms = self.config.offsets_retention_ms
        expired: list[tuple[str, int]] = []
        remaining = 0
        for topic, partitions in sorted(stored.items()):
            subscribed = is_subscribed(topic)
            for partition, offset in sorted(partitions.items()):
                pending = self.store.has_pending_transactional_offset(group_id, topic, partition)
                if (
                    not subscribed
                    and not pending
                    and _is_expired(offset, base, now_ms, retention_ms)
                ):
                    expired.append((topic, partition))
                else:
                    remaining += 1
        for topic, partition in expired:
            self._append_and_replay(fx, group_id, topic, partition, None)
        return remaining == 0 and not self.store.has_pending_transactions(group_id)


def _commit_time(offset: OffsetAndMetadata) -> int:
    return offset.commit_timestamp_ms


def _is_expired(
    offset: OffsetAndMetadata,
    base: Callable[[OffsetAndMetadata], int],
    now_ms: int,
    retention_ms: int,
) -> bool:
    if offset.expire_timestamp_ms is not None:
        return now_ms >= offset.expire_timestamp_ms
    return now_ms - base(offset) >= retention_ms
