"""KIP-848 consumer-group handlers: ConsumerGroupHeartbeat, ConsumerGroupDescribe, timers,
replay, and the member-epoch checks of OffsetCommit/OffsetFetch.

Pure like the classic coordinator: each entry point returns a ``Result`` (records for
``__consumer_offsets``, then the response); time and timers are injected.  The group
model and reconciliation are in ``consumer_group`` (read its theory of operation).

A heartbeat runs Kafka's steps in order:

1. validate the request (INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION);
2. leave (epoch -1; -2 for a static member that will come back) or find/create the member,
   checking its epoch (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) and instance id
   (FENCED_INSTANCE_ID, UNRELEASED_INSTANCE_ID);
3. apply the member's new metadata; a changed subscription, a new member, or changed
   partition counts of the subscribed topics (CreatePartitions, a new topic that matches a
   regex) bump the group epoch;
4. when the group epoch is ahead of the assignment epoch, run the assignor and store the new
   target assignment;
5. reconcile the member (``consumer_group.reconcile``) and answer with its epoch and, when
   it changed, its assignment.

Regexes are RE2 (``google-re2``, the syntax Kafka's RE2/J accepts), matched against the
whole topic name; internal topics never match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID, uuid4

import re2
from kbroker.coordinator.assignors import ASSIGNORS, AssignorMember, resolve_assignor_name
from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_group import (
    LEAVE_GROUP_MEMBER_EPOCH,
    LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    ConsumerGroup,
    ConsumerGroupMember,
    ConsumerGroupState,
    MemberState,
    Parts,
    reconcile,
)
from kbroker.coordinator.consumer_records import (
    CURRENT_MEMBER_ASSIGNMENT,
    GROUP_METADATA,
    MEMBER_METADATA,
    PARTITION_METADATA,
    TARGET_ASSIGNMENT_MEMBER,
    TARGET_ASSIGNMENT_METADATA,
    ConsumerRecord,
    current_assignment_record,
    encode_record,
    from_topic_partitions,
    group_epoch_record,
    group_tombstones,
    member_metadata_record,
    member_tombstones,
    partition_metadata_record,
    target_member_record,
    target_metadata_record,
)
from kbroker.coordinator.records import RecordFormatError
from kbroker.coordinator.result import Effects, Record, Result
from kbroker.coordinator.timer import Timer
from kbroker.wire.codec import encode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.consumer_group_describe_request import ConsumerGroupDescribeRequest
from kbroker.wire.messages.consumer_group_describe_response import (
    Assignment as DescribedAssignment,
)
from kbroker.wire.messages.consumer_group_describe_response import (
    ConsumerGroupDescribeResponse,
    DescribedGroup,
    Member,
)
from kbroker.wire.messages.consumer_group_describe_response import (
    TopicPartitions as DescribedTopicPartitions,
)
from kbroker.wire.messages.consumer_group_heartbeat_request import ConsumerGroupHeartbeatRequest
from kbroker.wire.messages.consumer_group_heartbeat_response import (
    Assignment,
    ConsumerGroupHeartbeatResponse,
    TopicPartitions,
)
from kbroker.wire.messages.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
)
from kbroker.wire.messages.consumer_protocol_assignment import (
    TopicPartition as ProtocolTopicPartition,
)
from kbroker.wire.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from kbroker.wire.messages.describe_groups_response import DescribedGroup as ClassicDescribedGroup
from kbroker.wire.messages.describe_groups_response import DescribedGroupMember

__all__ = ["CONSUMER_GROUP_TYPE", "ConsumerGroupManager", "TopicsProvider"]

CONSUMER_GROUP_TYPE = "consumer"
CONSUMER_PROTOCOL_TYPE = "consumer"
_CONSUMER_PROTOCOL_V0 = b"\x00\x00"  # int16 version prefix of ConsumerProtocol bytes
MAX_REGEX_LENGTH = 4096
"""Longest SubscribedTopicRegex accepted (a named limit; longer gets INVALID_REGULAR_EXPRESSION)."""

TopicsProvider = Callable[[], Mapping[str, tuple[UUID, int, bool]]]
"""name -> (topic id, partition count, is internal), read from live metadata."""
GroupOverrides = Callable[[str], Mapping[str, int]]
"""group id -> its GROUP-resource configs (``consumer.session.timeout.ms``,
``consumer.heartbeat.interval.ms``), validated by the broker against the broker bounds."""
SESSION_TIMEOUT_OVERRIDE = "consumer.session.timeout.ms"
HEARTBEAT_INTERVAL_OVERRIDE = "consumer.heartbeat.interval.ms"


class HeartbeatError(Exception):
    def __init__(self, code: ErrorCode, message: str | None = None) -> None:
        super().__init__(message or code.name)
        self.code = code
        self.message = message


def session_key(group_id: str, member_id: str) -> str:
    return f"cg-session-{group_id}-{member_id}"


def revocation_key(group_id: str, member_id: str) -> str:
    return f"cg-revoke-{group_id}-{member_id}"


def _response_parts(parts: Mapping[UUID, frozenset[int]]) -> list[TopicPartitions]:
    return [TopicPartitions(topic_id=t, partitions=sorted(p)) for t, p in sorted(parts.items()) if p]


class ConsumerGroupManager:
    def __init__(
        self,
        config: GroupConfig,
        now_ms: Callable[[], int],
        timer: Timer,
        topics: TopicsProvider | None = None,
        new_member_id: Callable[[], str] | None = None,
        overrides: GroupOverrides | None = None,
    ) -> None:
        self.config = config
        self.overrides: GroupOverrides = overrides or (lambda _group_id: {})
        self.now_ms = now_ms
        self.timer = timer
        self.topics: TopicsProvider = topics or dict
        self.new_member_id = new_member_id or (lambda: str(uuid4()))
        self.groups: dict[str, ConsumerGroup] = {}
        self._regex_cache: dict[str, Any] = {}
        self.on_member_removed: (
            Callable[[ConsumerGroup, ConsumerGroupMember, Effects], None] | None
        ) = None
        """Called after a member left or expired (the online downgrade hooks in here)."""

    def get(self, group_id: str) -> ConsumerGroup | None:
        group = self.groups.get(group_id)
        return None if group is None or group.state is ConsumerGroupState.DEAD else group

    # -- records -----------------------------------------------------------------------
    def _write(self, fx: Effects, group_id: str, key: Any, value: Any) -> None:
        k, v = encode_record(key, value)
        fx.records.append(Record(k, v, group_id))

    def _write_member(self, fx: Effects, group: ConsumerGroup, m: ConsumerGroupMember) -> None:
        self._write(
            fx,
            group.group_id,
            *member_metadata_record(
                group.group_id,
                m.member_id,
                instance_id=m.instance_id,
                rack_id=m.rack_id,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=m.subscribed_topic_names,
                subscribed_topic_regex=m.subscribed_topic_regex,
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                server_assignor=m.server_assignor,
                classic_protocols=m.classic_protocols,
                classic_session_timeout_ms=m.classic_session_timeout_ms,
            ),
        )

    def _write_current(self, fx: Effects, group: ConsumerGroup, m: ConsumerGroupMember) -> None:
        self._write(
            fx,
            group.group_id,
            *current_assignment_record(
                group.group_id,
                m.member_id,
                member_epoch=m.member_epoch,
                previous_member_epoch=m.previous_member_epoch,
                state=int(m.state),
                assigned=m.assigned,
                pending_revocation=m.pending_revocation,
            ),
        )

    def _bump_group_epoch(self, fx: Effects, group: ConsumerGroup) -> None:
        group.group_epoch += 1
        self._write(fx, group.group_id, *group_epoch_record(group.group_id, group.group_epoch))

    def _refresh_epoch_and_target(
        self,
        fx: Effects,
        group: ConsumerGroup,
        member: ConsumerGroupMember,
        *,
        is_new: bool,
        old_metadata: tuple[object, ...],
        bump: bool,
    ) -> None:
        """After a member's metadata may have changed: write the member if it is new or its
        metadata changed, refresh the subscribed topics metadata (new partitions, new topics
        matching a regex), bump the group epoch if ``bump`` or the topics changed, and
        compute a new target assignment if the group epoch moved past it."""
        if is_new or member.metadata_key() != old_metadata:
            self._write_member(fx, group, member)
        subscribed = self._subscribed_topics(group)
        if subscribed != group.subscribed_topics:
            group.subscribed_topics = subscribed
            self._write(fx, group.group_id, *partition_metadata_record(group.group_id, subscribed))
            bump = True
        if bump:
            self._bump_group_epoch(fx, group)
        if group.group_epoch > group.assignment_epoch:
            self._compute_target(group, fx)

    def replay(self, record: ConsumerRecord) -> None:
        """Apply one consumer-group record read back from ``__consumer_offsets``."""
        key, value = record.key, record.value
        group_id: str = key.group_id
        if record.record_type == MEMBER_METADATA and value is not None and value.subscribed_topic_regex:
            # A heartbeat never stores a regex RE2 refuses; one read back is damage, refused
            # before anything changes (describing the group would otherwise fail on it later).
            try:
                self._compile(value.subscribed_topic_regex)
            except HeartbeatError as error:
                raise RecordFormatError(f"member metadata of group {group_id}: {error}") from None
        group = self.groups.get(group_id)
        if group is None or group.state is ConsumerGroupState.DEAD:
            if value is None:
                return
            group = self.groups[group_id] = ConsumerGroup(group_id)
        t = record.record_type
        if t == GROUP_METADATA:
            if value is None:
                if group.members:  # Kafka refuses this tombstone too (IllegalStateException)
                    raise RecordFormatError(
                        f"tombstone of consumer group {group_id}, which has {len(group.members)} members"
                    )
                group.transition_to_dead()
                del self.groups[group_id]
                return
            group.group_epoch = value.epoch
        elif t == PARTITION_METADATA:
            group.subscribed_topics = (
                {}
                if value is None
                else {tm.topic_name: (tm.topic_id, tm.num_partitions) for tm in value.topics}
            )
        elif t == TARGET_ASSIGNMENT_METADATA:
            group.assignment_epoch = 0 if value is None else value.assignment_epoch
        elif t == TARGET_ASSIGNMENT_MEMBER:
            if value is None:
                group.target.pop(key.member_id, None)
            else:
                group.target[key.member_id] = from_topic_partitions(value.topic_partitions)
        elif t in (MEMBER_METADATA, CURRENT_MEMBER_ASSIGNMENT):
            self._replay_member(group, t, key.member_id, value)
        group.update_state()

    def _replay_member(self, group: ConsumerGroup, t: int, member_id: str, value: Any) -> None:
        member = group.members.get(member_id)
        if value is None:
            if t == MEMBER_METADATA and member is not None:
                del group.members[member_id]
                if member.instance_id is not None:
                    group.static_members.pop(member.instance_id, None)
            return
        if member is None:
            member = group.members[member_id] = ConsumerGroupMember(member_id)
        if t == MEMBER_METADATA:
            member.instance_id = value.instance_id
            member.rack_id = value.rack_id
            member.client_id = value.client_id
            member.client_host = value.client_host
            member.subscribed_topic_names = list(value.subscribed_topic_names)
            member.subscribed_topic_regex = value.subscribed_topic_regex
            member.rebalance_timeout_ms = value.rebalance_timeout_ms
            member.server_assignor = value.server_assignor
            classic = value.classic_member_metadata
            member.classic_protocols = (
                None
                if classic is None
                else [(p.name, bytes(p.metadata)) for p in classic.supported_protocols]
            )
            member.classic_session_timeout_ms = -1 if classic is None else classic.session_timeout_ms
            if member.instance_id is not None:
                group.static_members[member.instance_id] = member_id
        else:
            member.member_epoch = value.member_epoch
            member.previous_member_epoch = value.previous_member_epoch
            member.state = MemberState(value.state)
            member.assigned = from_topic_partitions(value.assigned_partitions)
            member.pending_revocation = from_topic_partitions(value.partitions_pending_revocation)

    def on_loaded(self) -> Result[None]:
        """After replay: every loaded member gets a fresh session timeout."""
        for group in self.groups.values():
            for member in group.members.values():
                self._schedule_session(group, member)
        return Result()

    def on_unloaded(self) -> Result[None]:
        for group in self.groups.values():
            for member_id in group.members:
                self.timer.cancel(session_key(group.group_id, member_id))
                self.timer.cancel(revocation_key(group.group_id, member_id))
        self.groups.clear()
        return Result()

    # -- ConsumerGroupHeartbeat ----------------------------------------------------------
    def heartbeat(
        self,
        request: ConsumerGroupHeartbeatRequest,
        *,
        api_version: int,
        client_id: str,
        client_host: str,
    ) -> Result[ConsumerGroupHeartbeatResponse]:
        fx = Effects()
        try:
            self._validate(request, api_version)
            if request.member_epoch in (LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH):
                response = self._leave(request, fx)
            else:
                response = self._heartbeat(request, api_version, client_id, client_host, fx)
        except HeartbeatError as error:
            return Result(
                response=ConsumerGroupHeartbeatResponse(
                    error_code=error.code, error_message=error.message
                )
            )
        return fx.result(response)

    def _validate(self, request: ConsumerGroupHeartbeatRequest, api_version: int) -> None:
        bad = ErrorCode.INVALID_REQUEST
        if not request.group_id:
            raise HeartbeatError(bad, "GroupId can't be empty.")
        if request.instance_id is not None and not request.instance_id:
            raise HeartbeatError(bad, "InstanceId can't be empty.")
        if request.rack_id is not None and not request.rack_id:
            raise HeartbeatError(bad, "RackId can't be empty.")
        epoch = request.member_epoch
        if (api_version >= 1 or epoch != 0) and not request.member_id:
            raise HeartbeatError(bad, "MemberId can't be empty.")
        if epoch == 0:
            if request.rebalance_timeout_ms == -1:
                raise HeartbeatError(bad, "RebalanceTimeoutMs must be provided in first request.")
            if request.topic_partitions:
                raise HeartbeatError(bad, "TopicPartitions must be empty when (re-)joining.")
            if request.subscribed_topic_names is None and request.subscribed_topic_regex is None:
                raise HeartbeatError(
                    bad, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request."
                )
        elif epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            if request.instance_id is None:
                raise HeartbeatError(bad, "InstanceId can't be null.")
        elif epoch < LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            raise HeartbeatError(bad, f"MemberEpoch is invalid: {epoch}.")
        if request.server_assignor is not None and (
            resolve_assignor_name(request.server_assignor) is None
            or resolve_assignor_name(request.server_assignor) not in self._enabled_assignors()
        ):
            raise HeartbeatError(
                ErrorCode.UNSUPPORTED_ASSIGNOR,
                f"ServerAssignor {request.server_assignor} is not supported.",
            )
        if request.subscribed_topic_regex:
            self._compile(request.subscribed_topic_regex)

    def _enabled_assignors(self) -> list[str]:
        names = [resolve_assignor_name(n) for n in self.config.group_consumer_assignors]
        return [n for n in names if n is not None]

    def _compile(self, regex: str) -> Any:
        compiled = self._regex_cache.get(regex)
        if compiled is None:
            if len(regex) > MAX_REGEX_LENGTH:
                raise HeartbeatError(ErrorCode.INVALID_REGULAR_EXPRESSION, "regex too long")
            try:
                compiled = re2.compile(regex)
            except re2.error as error:
                raise HeartbeatError(
                    ErrorCode.INVALID_REGULAR_EXPRESSION, f"SubscribedTopicRegex {regex}: {error}"
                ) from None
            self._regex_cache[regex] = compiled
        return compiled

    def _leave(
        self, request: ConsumerGroupHeartbeatRequest, fx: Effects
    ) -> ConsumerGroupHeartbeatResponse:
        group = self.get(request.group_id)
        if group is None:
            raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
        member_id = request.member_id
        if request.instance_id is not None:
            owner = group.static_members.get(request.instance_id)
            if owner is None:
                raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
            if owner != member_id:
                raise HeartbeatError(ErrorCode.FENCED_INSTANCE_ID)
        member = group.members.get(member_id)
        if member is None:
            raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH:
            # The static member will be back: keep its target, release what it held.
            member.previous_member_epoch = member.member_epoch
            member.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH
            member.assigned = {}
            member.pending_revocation = {}
            member.state = MemberState.STABLE
            self.timer.cancel(revocation_key(group.group_id, member_id))
            self._write_current(fx, group, member)
            self._schedule_session(group, member)
            group.update_state()
        else:
            self._remove_member(group, member, fx)
        return ConsumerGroupHeartbeatResponse(
            member_id=member_id,
            member_epoch=request.member_epoch,
            heartbeat_interval_ms=0,
        )

    def _remove_member(
        self, group: ConsumerGroup, member: ConsumerGroupMember, fx: Effects
    ) -> None:
        """Tombstones for the member, then a new group epoch (its partitions are free)."""
        for key, value in member_tombstones(group.group_id, member.member_id):
            self._write(fx, group.group_id, key, value)
        del group.members[member.member_id]
        group.target.pop(member.member_id, None)
        if member.instance_id is not None:
            group.static_members.pop(member.instance_id, None)
        self.timer.cancel(session_key(group.group_id, member.member_id))
        self.timer.cancel(revocation_key(group.group_id, member.member_id))
        self._bump_group_epoch(fx, group)
        group.update_state()
        if self.on_member_removed is not None:
            self.on_member_removed(group, member, fx)

    def _heartbeat(
        self,
        request: ConsumerGroupHeartbeatRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        fx: Effects,
    ) -> ConsumerGroupHeartbeatResponse:
        group = self.groups.get(request.group_id)
        if group is None or group.state is ConsumerGroupState.DEAD:
            if request.member_epoch != 0:
                raise HeartbeatError(ErrorCode.UNKNOWN_MEMBER_ID)
            group = self.groups[request.group_id] = ConsumerGroup(request.group_id)
        member_id = request.member_id or self.new_member_id()
        epoch = request.member_epoch
        owned = (
            None if request.topic_partitions is None else from_topic_partitions(request.topic_partitions)
        )
        member, is_new, full = self._find_member(group, request, member_id, owned, fx)
        before = member.assignment_key()
        bump = is_new
        # 3. metadata
        old_subscription = (tuple(member.subscribed_topic_names), member.subscribed_topic_regex)
        old_metadata = member.metadata_key()
        member.client_id = client_id
        member.client_host = client_host
        if request.instance_id is not None:
            member.instance_id = request.instance_id
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        if request.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if request.subscribed_topic_names is not None:
            member.subscribed_topic_names = sorted(set(request.subscribed_topic_names))
            if request.subscribed_topic_regex is None and api_version >= 1 and epoch == 0:
                member.subscribed_topic_regex = None
        if request.subscribed_topic_regex is not None:
            member.subscribed_topic_regex = request.subscribed_topic_regex or None
            if request.subscribed_topic_names is None:
                member.subscribed_topic_names = []
        if request.server_assignor is not None:
            member.server_assignor = resolve_assignor_name(request.server_assignor)
        new_subscription = (tuple(member.subscribed_topic_names), member.subscribed_topic_regex)
        bump = bump or new_subscription != old_subscription
        # subscribed topics metadata, group epoch, 4. target assignment
        self._refresh_epoch_and_target(fx, group, member, is_new=is_new, old_metadata=old_metadata, bump=bump)
        # 5. reconcile
        reconcile(group, member, owned)
        changed = member.assignment_key() != before
        if changed or is_new:
            self._write_current(fx, group, member)
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            if changed:
                self._schedule_revocation(group, member)
        else:
            self.timer.cancel(revocation_key(group.group_id, member.member_id))
        self._schedule_session(group, member)
        group.update_state()
        response = ConsumerGroupHeartbeatResponse(
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.heartbeat_interval_ms(group.group_id),
        )
        if changed or full:
            response.assignment = Assignment(topic_partitions=_response_parts(member.assigned))
        return response

    def _find_member(
        self,
        group: ConsumerGroup,
        request: ConsumerGroupHeartbeatRequest,
        member_id: str,
        owned: Parts | None,
        fx: Effects,
    ) -> tuple[ConsumerGroupMember, bool, bool]:
        """The member (created or reset on epoch 0), whether it is new, and whether the
        request is a full one (its answer carries the whole assignment)."""
        epoch = request.member_epoch
        instance_id = request.instance_id
        if instance_id is not None:
            owner_id = group.static_members.get(instance_id)
            owner = group.members.get(owner_id) if owner_id is not None else None
            if epoch == 0 and owner is not None and owner_id != member_id:
                if owner.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH:
                    raise HeartbeatError(
                        ErrorCode.UNRELEASED_INSTANCE_ID,
                        f"Static member {owner_id} with instance id {instance_id} is still active.",
                    )
                return self._replace_static_member(group, owner, member_id, fx), False, True
            if epoch != 0 and owner_id is not None and owner_id != member_id:
                raise HeartbeatError(ErrorCode.FENCED_INSTANCE_ID)
        member = group.members.get(member_id)
        if member is None:
            if epoch != 0:
                raise HeartbeatError(
                    ErrorCode.UNKNOWN_MEMBER_ID, f"Member {member_id} is not a member of the group."
                )
            if len(group.members) >= self.config.group_consumer_max_size:
                raise HeartbeatError(
                    ErrorCode.GROUP_MAX_SIZE_REACHED,
                    f"The group reached its maximum capacity of {self.config.group_consumer_max_size} members.",
                )
            member = group.members[member_id] = ConsumerGroupMember(member_id)
            if instance_id is not None:
                group.static_members[instance_id] = member_id
            return member, True, True
        if epoch == 0:
            # A known member rejoining: it lost its partitions; start it afresh.
            member.member_epoch = 0
            member.previous_member_epoch = 0
            member.assigned = {}
            member.pending_revocation = {}
            member.state = MemberState.STABLE
            return member, False, True
        if epoch != member.member_epoch:
            retry_ok = (
                epoch == member.previous_member_epoch
                and owned is not None
                and all(p <= member.assigned.get(t, frozenset()) for t, p in owned.items())
            )
            if not retry_ok:
                raise HeartbeatError(
                    ErrorCode.FENCED_MEMBER_EPOCH,
                    f"The consumer group member has a member epoch ({epoch}) different from "
                    f"the one known by the group coordinator ({member.member_epoch}).",
                )
            return member, False, True
        return member, False, False

    def _replace_static_member(
        self, group: ConsumerGroup, old: ConsumerGroupMember, member_id: str, fx: Effects
    ) -> ConsumerGroupMember:
        """A static member back under a new member id takes over the old one's target."""
        new = ConsumerGroupMember(
            member_id,
            instance_id=old.instance_id,
            rack_id=old.rack_id,
            subscribed_topic_names=list(old.subscribed_topic_names),
            subscribed_topic_regex=old.subscribed_topic_regex,
            rebalance_timeout_ms=old.rebalance_timeout_ms,
            server_assignor=old.server_assignor,
        )
        target = group.target.pop(old.member_id, {})
        for key, value in member_tombstones(group.group_id, old.member_id):
            self._write(fx, group.group_id, key, value)
        del group.members[old.member_id]
        self.timer.cancel(session_key(group.group_id, old.member_id))
        self.timer.cancel(revocation_key(group.group_id, old.member_id))
        group.members[member_id] = new
        assert new.instance_id is not None
        group.static_members[new.instance_id] = member_id
        group.target[member_id] = target
        self._write(fx, group.group_id, *target_member_record(group.group_id, member_id, target))
        return new

    def _subscribed_topics(self, group: ConsumerGroup) -> dict[str, tuple[UUID, int]]:
        topics = self.topics()
        out: dict[str, tuple[UUID, int]] = {}
        for m in group.members.values():
            for name in m.subscribed_topic_names:
                info = topics.get(name)
                if info is not None:
                    out[name] = (info[0], info[1])
            if m.subscribed_topic_regex:
                pattern = self._compile(m.subscribed_topic_regex)
                for name, (topic_id, n, internal) in topics.items():
                    if not internal and pattern.fullmatch(name):
                        out[name] = (topic_id, n)
        return out

    def _member_topic_ids(self, group: ConsumerGroup, m: ConsumerGroupMember) -> frozenset[UUID]:
        ids = {
            group.subscribed_topics[n][0] for n in m.subscribed_topic_names if n in group.subscribed_topics
        }
        if m.subscribed_topic_regex:
            pattern = self._compile(m.subscribed_topic_regex)
            ids.update(tid for name, (tid, _n) in group.subscribed_topics.items() if pattern.fullmatch(name))
        return frozenset(ids)

    def select_assignor(self, group: ConsumerGroup) -> str:
        """The assignor most members ask for (ties by name), else the configured default."""
        enabled = self._enabled_assignors()
        votes: dict[str, int] = {}
        for m in group.members.values():
            if m.server_assignor in enabled:
                votes[m.server_assignor] = votes.get(m.server_assignor, 0) + 1
        if votes:
            return min(votes, key=lambda name: (-votes[name], name))
        return enabled[0]

    def _compute_target(self, group: ConsumerGroup, fx: Effects) -> None:
        members = {
            m.member_id: AssignorMember(self._member_topic_ids(group, m), m.instance_id)
            for m in group.members.values()
        }
        topics = {tid: n for tid, n in group.subscribed_topics.values()}
        new = ASSIGNORS[self.select_assignor(group)](members, topics, group.target)
        for member_id in members:
            parts = new.get(member_id, {})
            if group.target.get(member_id) != parts:
                self._write(fx, group.group_id, *target_member_record(group.group_id, member_id, parts))
        group.target = {m: new.get(m, {}) for m in members}
        group.assignment_epoch = group.group_epoch
        self._write(fx, group.group_id, *target_metadata_record(group.group_id, group.assignment_epoch))

    # -- timeouts ----------------------------------------------------------------------
    def session_timeout_ms(self, group_id: str) -> int:
        """The group's ``consumer.session.timeout.ms`` override, else the broker's."""
        return self.overrides(group_id).get(
            SESSION_TIMEOUT_OVERRIDE, self.config.group_consumer_session_timeout_ms
        )

    def heartbeat_interval_ms(self, group_id: str) -> int:
        return self.overrides(group_id).get(
            HEARTBEAT_INTERVAL_OVERRIDE, self.config.group_consumer_heartbeat_interval_ms
        )

    def _schedule_session(self, group: ConsumerGroup, member: ConsumerGroupMember) -> None:
        group_id, member_id = group.group_id, member.member_id
        self.timer.schedule(
            session_key(group_id, member_id),
            member.classic_session_timeout_ms
            if member.uses_classic_protocol
            else self.session_timeout_ms(group_id),
            lambda: self.expire_member(group_id, member_id, "session timeout"),
        )

    def _schedule_revocation(self, group: ConsumerGroup, member: ConsumerGroupMember) -> None:
        group_id, member_id, epoch = group.group_id, member.member_id, member.member_epoch
        timeout_ms = member.rebalance_timeout_ms
        if timeout_ms <= 0:
            timeout_ms = self.session_timeout_ms(group_id)

        def fire() -> Result[None]:
            g = self.get(group_id)
            m = g.members.get(member_id) if g is not None else None
            if m is None or m.state is not MemberState.UNREVOKED_PARTITIONS or m.member_epoch != epoch:
                return Result()
            return self.expire_member(group_id, member_id, "rebalance timeout")

        self.timer.schedule(revocation_key(group_id, member_id), timeout_ms, fire)

    def expire_member(self, group_id: str, member_id: str, reason: str) -> Result[None]:
        """A member's session (or revocation) timed out: it is fenced and removed."""
        del reason  # kept for the call sites' clarity
        fx = Effects()
        group = self.get(group_id)
        if group is not None:
            member = group.members.get(member_id)
            if member is not None:
                self._remove_member(group, member, fx)
        return fx.result(None)

    # -- offsets -----------------------------------------------------------------------
    def validate_offset_commit(
        self,
        group: ConsumerGroup,
        member_id: str,
        member_epoch: int,
        *,
        api_version: int,
        is_transactional: bool,
    ) -> ErrorCode:
        """Kafka's ConsumerGroup.validateOffsetCommit."""
        if member_epoch < 0 and not group.members:
            return ErrorCode.NONE  # admin or manual commit to an empty group
        member = group.members.get(member_id)
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if not is_transactional and api_version < 9 and not member.uses_classic_protocol:
            return ErrorCode.UNSUPPORTED_VERSION
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    def validate_offset_fetch(
        self, group: ConsumerGroup, member_id: str | None, member_epoch: int
    ) -> ErrorCode:
        """Kafka's ConsumerGroup.validateOffsetFetch (OffsetFetch v9+ carries the member)."""
        if member_epoch < 0 and not member_id:
            return ErrorCode.NONE
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member_epoch != member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return ErrorCode.NONE

    # -- admin -------------------------------------------------------------------------
    def delete_group(self, group: ConsumerGroup, fx: Effects) -> None:
        """Tombstones for an Empty group (DeleteGroups, or becoming a classic group)."""
        assert not group.members
        for member_id in list(group.target):
            self._write(fx, group.group_id, *target_member_record(group.group_id, member_id, None))
        for key, value in group_tombstones(group.group_id):
            self._write(fx, group.group_id, key, value)
        group.transition_to_dead()
        del self.groups[group.group_id]

    def topic_names(self) -> dict[UUID, str]:
        return {info[0]: name for name, info in self.topics().items()}

    def as_described_group(self, group: ConsumerGroup) -> ClassicDescribedGroup:
        """DescribeGroups on a consumer group (Kafka's ConsumerGroup.asDescribedGroup): the
        members' subscriptions and assignments in the classic consumer-protocol bytes."""
        names = self.topic_names()
        members = []
        for m in group.members.values():
            topics = sorted(
                n for n, (tid, _) in group.subscribed_topics.items()
                if tid in self._member_topic_ids(group, m)
            )
            subscription = ConsumerProtocolSubscription(topics=topics)
            assignment = ConsumerProtocolAssignment(
                assigned_partitions=[
                    ProtocolTopicPartition(topic=names.get(t, ""), partitions=sorted(p))
                    for t, p in sorted(m.assigned.items())
                    if p
                ]
            )
            members.append(
                DescribedGroupMember(
                    member_id=m.member_id,
                    group_instance_id=m.instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    member_metadata=_CONSUMER_PROTOCOL_V0 + encode(subscription, 0),
                    member_assignment=_CONSUMER_PROTOCOL_V0 + encode(assignment, 0),
                )
            )
        return ClassicDescribedGroup(
            group_id=group.group_id,
            group_state=str(group.state),
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocol_data=self.select_assignor(group),
            members=members,
        )

    def describe(
        self, request: ConsumerGroupDescribeRequest, *, api_version: int
    ) -> Result[ConsumerGroupDescribeResponse]:
        response = ConsumerGroupDescribeResponse()
        names = self.topic_names()

        def described(parts: Mapping[UUID, frozenset[int]]) -> DescribedAssignment:
            return DescribedAssignment(
                topic_partitions=[
                    DescribedTopicPartitions(
                        topic_id=t, topic_name=names.get(t, ""), partitions=sorted(p)
                    )
                    for t, p in sorted(parts.items())
                    if p
                ]
            )

        for group_id in request.group_ids:
            group = self.get(group_id)
            if group is None:
                response.groups.append(
                    DescribedGroup(
                        group_id=group_id,
                        error_code=ErrorCode.GROUP_ID_NOT_FOUND,
                        error_message=f"Group {group_id} not found.",
                        group_state=str(ConsumerGroupState.DEAD),
                    )
                )
                continue
            response.groups.append(
                DescribedGroup(
                    group_id=group_id,
                    group_state=str(group.state),
                    group_epoch=group.group_epoch,
                    assignment_epoch=group.assignment_epoch,
                    assignor_name=self.select_assignor(group),
                    members=[
                        Member(
                            member_id=m.member_id,
                            instance_id=m.instance_id,
                            rack_id=m.rack_id,
                            member_epoch=m.member_epoch,
                            client_id=m.client_id,
                            client_host=m.client_host,
                            subscribed_topic_names=list(m.subscribed_topic_names),
                            subscribed_topic_regex=m.subscribed_topic_regex,
                            assignment=described(m.assigned),
                            target_assignment=described(group.target.get(m.member_id, {})),
                            member_type=0 if m.uses_classic_protocol else 1,
                        )
                        for m in group.members.values()
                    ],
                )
            )
        return Result(response=response)
