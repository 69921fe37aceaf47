"""Online migration between classic groups and KIP-848 consumer groups.

Theory of operation
-------------------
``group.consumer.migration.policy`` (disabled / upgrade / downgrade / bidirectional, Kafka
4's default bidirectional) decides which conversions happen while members are live:

**Upgrade.**  A ConsumerGroupHeartbeat joining a *non-empty* classic group (policy upgrade
or bidirectional) converts it: every classic member becomes a consumer-group member that
keeps its subscription and its current assignment (decoded from the ConsumerProtocol
bytes) at member epoch = the classic generation, with its JoinGroup protocols and session
timeout kept as Kafka's ``ClassicMemberMetadata``.  The classic GroupMetadata tombstone is
written first, then the consumer-group records, so a restart replays to the same group.
A rebalance in progress is cut short: parked JoinGroup/SyncGroup requests answer
REBALANCE_IN_PROGRESS and members keep the assignment of their last generation.

**Classic members inside a consumer group.**  They keep using JoinGroup / SyncGroup /
Heartbeat / LeaveGroup, served here from the consumer group: a JoinGroup updates the
member's subscription (bumping the group epoch when it changes), lets the server-side
assignor compute the target, and reconciles the member with the partitions its
subscription reports as owned (an eager client rejoins owning nothing); the answer
carries generation = member epoch and no member list (the member is not a leader), and
SyncGroup returns the member's current assignment.  A Heartbeat answers
REBALANCE_IN_PROGRESS while the member is not Stable at the assignment epoch, so it
rejoins to give up or take partitions.  The reconciliation of ``consumer_group`` keeps the
invariant that a partition is never held by two members at once.

**Downgrade.**  When the last consumer-protocol member leaves (or expires) and the
remaining members all use the classic protocol (policy downgrade or bidirectional), the
consumer group's tombstones are written, then a classic GroupMetadata record with the
members, their protocols and assignments at generation = the members' epoch, and the
classic group starts a rebalance.  Committed offsets are keyed by group id only and survive both
conversions untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar
from uuid import UUID

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.consumer_group import (
    ConsumerGroup,
    ConsumerGroupMember,
    MemberState,
    Parts,
    reconcile,
)
from kbroker.coordinator.consumer_group_manager import (
    CONSUMER_PROTOCOL_TYPE,
    ConsumerGroupManager,
    revocation_key,
    session_key,
)
from kbroker.coordinator.consumer_records import (
    group_epoch_record,
    member_tombstones,
    partition_metadata_record,
    target_member_record,
    target_metadata_record,
)
from kbroker.coordinator.group import ClassicGroup, Member
from kbroker.coordinator.group_manager import GroupManager
from kbroker.coordinator.rebalance import heartbeat_key, join_key, sync_key
from kbroker.coordinator.records import group_metadata_key
from kbroker.coordinator.result import Effects, Record, Result
from kbroker.coordinator.state import GroupState
from kbroker.wire.codec import decode_from, encode
from kbroker.wire.errors import ErrorCode
from kbroker.wire.exceptions import DecodeError
from kbroker.wire.messages.consumer_protocol_assignment import (
    ConsumerProtocolAssignment,
)
from kbroker.wire.messages.consumer_protocol_assignment import (
    TopicPartition as ProtocolTopicPartition,
)
from kbroker.wire.messages.consumer_protocol_subscription import ConsumerProtocolSubscription
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.internal.group_metadata_key import GroupMetadataKey
from kbroker.wire.messages.join_group_request import JoinGroupRequest
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest
from kbroker.wire.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from kbroker.wire.messages.sync_group_request import SyncGroupRequest
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["MIGRATION_POLICIES", "GroupMigration"]

MIGRATION_POLICIES = ("disabled", "upgrade", "downgrade", "bidirectional")
_SUBSCRIPTION_MAX_VERSION = 3
"""Highest ConsumerProtocolSubscription version in the specs; a newer one is read as it."""
_ASSIGNMENT_MAX_VERSION = 3
"""Highest ConsumerProtocolAssignment version read (a newer one is read as it)."""
_ASSIGNMENT_VERSION = 0
_PREFIX = b"\x00\x00"
_Message = TypeVar("_Message")


def sync_timeout_key(group_id: str, member_id: str) -> str:
    return f"cg-classic-sync-{group_id}-{member_id}"


def _decode_consumer_protocol(cls: type[_Message], data: bytes, max_version: int) -> _Message | None:
    """``data`` as a consumer-protocol ``cls``: a big-endian int16 version (one above
    ``max_version`` is read as ``max_version``) then the message; None if it does not decode."""
    if len(data) < 2:
        return None
    version = min(int.from_bytes(data[:2], "big", signed=True), max_version)
    if version < 0:
        return None
    try:
        return decode_from(cls, version, memoryview(data)[2:])[0]
    except (DecodeError, ValueError):
        return None


def _decode_subscription(metadata: bytes) -> ConsumerProtocolSubscription | None:
    return _decode_consumer_protocol(ConsumerProtocolSubscription, metadata, _SUBSCRIPTION_MAX_VERSION)


def _decode_assignment(data: bytes) -> ConsumerProtocolAssignment | None:
    return _decode_consumer_protocol(ConsumerProtocolAssignment, data, _ASSIGNMENT_MAX_VERSION)


class _NamedPartitions(Protocol):
    topic: str
    partitions: list[int]


class GroupMigration:
    """Upgrade/downgrade and the classic protocol served from a consumer group."""

    def __init__(
        self,
        config: GroupConfig,
        now_ms: Callable[[], int],
        groups: GroupManager,
        consumer_groups: ConsumerGroupManager,
        new_member_id: Callable[[], str],
    ) -> None:
        self.config = config
        self.now_ms = now_ms
        self.groups = groups
        self.consumer_groups = consumer_groups
        self.new_member_id = new_member_id
        consumer_groups.on_member_removed = self._after_member_removed

    @property
    def upgrade_enabled(self) -> bool:
        return self.config.group_consumer_migration_policy in ("upgrade", "bidirectional")

    @property
    def downgrade_enabled(self) -> bool:
        return self.config.group_consumer_migration_policy in ("downgrade", "bidirectional")

    # -- names and ids -----------------------------------------------------------------
    def _ids_of(self, names: Sequence[_NamedPartitions]) -> Parts:
        topics = self.consumer_groups.topics()
        out: dict[UUID, frozenset[int]] = {}
        for tp in names:
            info = topics.get(tp.topic)
            if info is not None and tp.partitions:
                out[info[0]] = out.get(info[0], frozenset()) | frozenset(tp.partitions)
        return out

    def _assignment_bytes(self, parts: Parts) -> bytes:
        names = self.consumer_groups.topic_names()
        assignment = ConsumerProtocolAssignment(
            assigned_partitions=[
                ProtocolTopicPartition(topic=names[t], partitions=sorted(p))
                for t, p in sorted(parts.items(), key=lambda item: names.get(item[0], ""))
                if p and t in names
            ]
        )
        return bytes(_PREFIX + encode(assignment, _ASSIGNMENT_VERSION))

    # -- upgrade -----------------------------------------------------------------------
    def upgrade(self, classic: ClassicGroup, fx: Effects) -> ErrorCode:
        """Convert a live classic group into a consumer group (see the module docstring)."""
        if not self.upgrade_enabled:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if classic.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return ErrorCode.GROUP_ID_NOT_FOUND  # e.g. a Connect group: not a consumer's
        if len(classic.members) >= self.config.group_consumer_max_size:
            return ErrorCode.GROUP_ID_NOT_FOUND  # no room for the joining member
        # a rebalance in progress is cut short, as Kafka does: parked JoinGroup/SyncGroup
        # answers REBALANCE_IN_PROGRESS and those members rejoin the consumer group
        for m in classic.members.values():
            join = classic.complete_join(
                m, JoinGroupResponse(member_id=m.member_id, error_code=ErrorCode.REBALANCE_IN_PROGRESS)
            )
            sync = classic.complete_sync(m, SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS))
            fx.replies.extend(d for d in (join, sync) if d is not None)
        group = ConsumerGroup(classic.group_id)
        epoch = classic.generation_id
        group.group_epoch = group.assignment_epoch = epoch
        claimed: set[tuple[UUID, int]] = set()
        for m in classic.members.values():
            subscription = _decode_subscription(m.metadata(classic.protocol_name or ""))
            assignment = _decode_assignment(m.assignment)
            # a partition the leader gave to two members goes to the first only: a
            # consumer group never holds one partition twice
            assigned = {
                t: frozenset(p for p in ps if (t, p) not in claimed)
                for t, ps in (self._ids_of(assignment.assigned_partitions) if assignment else {}).items()
            }
            assigned = {t: ps for t, ps in assigned.items() if ps}
            claimed.update((t, p) for t, ps in assigned.items() for p in ps)
            member = ConsumerGroupMember(
                m.member_id,
                instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                subscribed_topic_names=sorted(set(subscription.topics)) if subscription else [],
                rebalance_timeout_ms=m.rebalance_timeout_ms,
                member_epoch=epoch,
                previous_member_epoch=epoch,
                state=MemberState.STABLE,
                assigned=assigned,
                classic_protocols=list(m.protocols),
                classic_session_timeout_ms=m.session_timeout_ms,
            )
            group.members[member.member_id] = member
            group.target[member.member_id] = dict(member.assigned)
            if member.instance_id is not None:
                group.static_members[member.instance_id] = member.member_id
        group.subscribed_topics = self.consumer_groups._subscribed_topics(group)
        # the classic group goes first: its tombstone, then the consumer group's records
        for member_id in [*classic.members, *classic.pending_join_members]:
            self.groups.timer.cancel(heartbeat_key(classic.group_id, member_id))
        for key_name in (join_key, sync_key):
            self.groups.timer.cancel(key_name(classic.group_id))
        classic.transition_to(GroupState.DEAD, self.now_ms())
        self.groups.replay_group_metadata(GroupMetadataKey(group=classic.group_id), None)
        fx.records.append(Record(group_metadata_key(classic.group_id), None, classic.group_id))
        self.consumer_groups.groups[group.group_id] = group
        self._write_group(group, fx)
        for member in group.members.values():
            self.consumer_groups._schedule_session(group, member)
        group.update_state()
        return ErrorCode.NONE

    def _write_group(self, group: ConsumerGroup, fx: Effects) -> None:
        cg, gid = self.consumer_groups, group.group_id
        cg._write(fx, gid, *group_epoch_record(gid, group.group_epoch))
        cg._write(fx, gid, *partition_metadata_record(gid, group.subscribed_topics))
        for member in group.members.values():
            cg._write_member(fx, group, member)
            cg._write(fx, gid, *target_member_record(gid, member.member_id, group.target[member.member_id]))
        cg._write(fx, gid, *target_metadata_record(gid, group.assignment_epoch))
        for member in group.members.values():
            cg._write_current(fx, group, member)

    # -- the classic protocol inside a consumer group ----------------------------------
    def join(
        self,
        group: ConsumerGroup,
        request: JoinGroupRequest,
        *,
        api_version: int,
        client_id: str,
        client_host: str,
        fx: Effects,
    ) -> JoinGroupResponse:
        def error(code: ErrorCode, member_id: str = request.member_id) -> JoinGroupResponse:
            return JoinGroupResponse(error_code=code, member_id=member_id)

        if request.protocol_type != CONSUMER_PROTOCOL_TYPE or not request.protocols:
            return error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        subscription = _decode_subscription(bytes(request.protocols[0].metadata))
        if subscription is None:
            return error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        cg = self.consumer_groups
        member_id = request.member_id
        instance_id = request.group_instance_id
        if instance_id is not None and instance_id in group.static_members:
            member_id = member_id or group.static_members[instance_id]
            if group.static_members[instance_id] != member_id:
                return error(ErrorCode.FENCED_INSTANCE_ID)
        if not member_id:
            member_id = self.new_member_id()
            if api_version >= 4 and instance_id is None:
                # the member id is handed out first, as the classic coordinator does
                return error(ErrorCode.MEMBER_ID_REQUIRED, member_id)
        member = group.members.get(member_id)
        is_new = member is None
        if member is None:
            if self.config.group_consumer_migration_policy == "disabled":
                # neither direction may ever happen: the group must stay single-protocol
                return error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
            if len(group.members) >= self.config.group_consumer_max_size:
                return error(ErrorCode.GROUP_MAX_SIZE_REACHED)
            member = group.members[member_id] = ConsumerGroupMember(member_id, instance_id=instance_id)
            if instance_id is not None:
                group.static_members[instance_id] = member_id
        elif not member.uses_classic_protocol:
            return error(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        before = member.assignment_key()
        old_metadata = member.metadata_key()
        old_topics = tuple(member.subscribed_topic_names)
        member.client_id = client_id
        member.client_host = client_host
        member.rebalance_timeout_ms = (
            request.session_timeout_ms if request.rebalance_timeout_ms == -1 else request.rebalance_timeout_ms
        )
        member.subscribed_topic_names = sorted(set(subscription.topics))
        member.classic_protocols = [(p.name, bytes(p.metadata)) for p in request.protocols]
        member.classic_session_timeout_ms = request.session_timeout_ms
        bump = is_new or tuple(member.subscribed_topic_names) != old_topics
        cg._refresh_epoch_and_target(fx, group, member, is_new=is_new, old_metadata=old_metadata, bump=bump)
        owned = self._ids_of(subscription.owned_partitions)
        reconcile(group, member, owned)
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            reconcile(group, member, owned)  # an eager member rejoined owning nothing
        if member.assignment_key() != before or is_new:
            cg._write_current(fx, group, member)
        cg.timer.cancel(revocation_key(group.group_id, member_id))
        cg._schedule_session(group, member)
        self._schedule_sync_timeout(group.group_id, member_id, member.rebalance_timeout_ms)
        group.update_state()
        return JoinGroupResponse(
            member_id=member_id,
            generation_id=member.member_epoch,
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocol_name=request.protocols[0].name,
            leader="",
            members=[],
        )

    def _classic_member(
        self, group: ConsumerGroup, member_id: str, instance_id: str | None
    ) -> tuple[ConsumerGroupMember | None, ErrorCode]:
        if instance_id is not None:
            owner = group.static_members.get(instance_id)
            if owner is None:
                return None, ErrorCode.UNKNOWN_MEMBER_ID
            if owner != member_id:
                return None, ErrorCode.FENCED_INSTANCE_ID
        member = group.members.get(member_id)
        if member is None:
            return None, ErrorCode.UNKNOWN_MEMBER_ID
        if not member.uses_classic_protocol:
            return None, ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        return member, ErrorCode.NONE

    def _schedule_sync_timeout(self, group_id: str, member_id: str, timeout_ms: int) -> None:
        """A classic member that joined must SyncGroup within its rebalance timeout, or it
        is removed (Kafka's consumer-group sync timeout)."""
        cg = self.consumer_groups

        def fire() -> Result[None]:
            return cg.expire_member(group_id, member_id, "sync timeout")

        cg.timer.schedule(sync_timeout_key(group_id, member_id), timeout_ms, fire)

    def sync(self, group: ConsumerGroup, request: SyncGroupRequest) -> SyncGroupResponse:
        member, code = self._classic_member(group, request.member_id, request.group_instance_id)
        if member is None:
            return SyncGroupResponse(error_code=code)
        if request.generation_id != member.member_epoch:
            return SyncGroupResponse(error_code=ErrorCode.ILLEGAL_GENERATION)
        self.consumer_groups.timer.cancel(sync_timeout_key(group.group_id, member.member_id))
        self.consumer_groups._schedule_session(group, member)
        protocols = member.classic_protocols or []
        return SyncGroupResponse(
            protocol_type=CONSUMER_PROTOCOL_TYPE,
            protocol_name=protocols[0][0] if protocols else None,
            assignment=self._assignment_bytes(member.assigned),
        )

    def heartbeat(self, group: ConsumerGroup, request: HeartbeatRequest) -> ErrorCode:
        member, code = self._classic_member(group, request.member_id, request.group_instance_id)
        if member is None:
            return code
        if request.generation_id != member.member_epoch:
            return ErrorCode.ILLEGAL_GENERATION
        self.consumer_groups._schedule_session(group, member)
        return ErrorCode.REBALANCE_IN_PROGRESS if _must_rejoin(group, member) else ErrorCode.NONE

    def leave(
        self, group: ConsumerGroup, request: LeaveGroupRequest, api_version: int, fx: Effects
    ) -> LeaveGroupResponse:
        identities = (
            [(m.member_id, m.group_instance_id) for m in request.members]
            if api_version >= 3
            else [(request.member_id, None)]
        )
        results = []
        for member_id, instance_id in identities:
            if not member_id and instance_id is not None:
                member_id = group.static_members.get(instance_id, "")
            member, code = self._classic_member(group, member_id, instance_id)
            if member is not None:
                self.consumer_groups._remove_member(group, member, fx)
            results.append(MemberResponse(member_id=member_id, group_instance_id=instance_id, error_code=code))
            if self.consumer_groups.get(group.group_id) is not group:
                break  # the group converted (downgrade) or went away
        if api_version < 3:
            return LeaveGroupResponse(error_code=results[0].error_code)
        return LeaveGroupResponse(members=results)

    # -- downgrade ---------------------------------------------------------------------
    def _after_member_removed(
        self, group: ConsumerGroup, removed: ConsumerGroupMember, fx: Effects
    ) -> None:
        if (
            self.downgrade_enabled
            and not removed.uses_classic_protocol
            and group.members
            and len(group.members) <= self.config.group_max_size
            and all(m.uses_classic_protocol for m in group.members.values())
        ):
            self.downgrade(group, fx)

    def downgrade(self, group: ConsumerGroup, fx: Effects) -> None:
        """Convert a consumer group whose members all speak the classic protocol back into a
        classic group, then start a rebalance (see the module docstring)."""
        cg, gid = self.consumer_groups, group.group_id
        members = list(group.members.values())
        protocol_name = _common_protocol(members)
        assignments = {m.member_id: self._assignment_bytes(m.assigned) for m in members}
        for m in members:
            for key, value in member_tombstones(gid, m.member_id):
                cg._write(fx, gid, key, value)
            cg.timer.cancel(session_key(gid, m.member_id))
            cg.timer.cancel(revocation_key(gid, m.member_id))
            cg.timer.cancel(sync_timeout_key(gid, m.member_id))
        group.members.clear()
        group.static_members.clear()
        group.update_state()
        cg.delete_group(group, fx)
        classic = self.groups.get_or_create_group(gid)
        # the members' epoch (the group epoch before the leaving member bumped it): their
        # Heartbeat then gets REBALANCE_IN_PROGRESS, not ILLEGAL_GENERATION, so their
        # commits on revocation still count
        classic.generation_id = max(m.member_epoch for m in members)
        classic.protocol_type = CONSUMER_PROTOCOL_TYPE
        classic.protocol_name = protocol_name
        for m in members:
            classic.add(
                Member(
                    member_id=m.member_id,
                    group_instance_id=m.instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    session_timeout_ms=m.classic_session_timeout_ms,
                    protocol_type=CONSUMER_PROTOCOL_TYPE,
                    protocols=list(m.classic_protocols or []),
                    assignment=assignments[m.member_id],
                ),
                None,
            )
        classic.subscribed = classic.compute_subscribed_topics()
        classic.transition_to(GroupState.PREPARING_REBALANCE, self.now_ms())
        classic.transition_to(GroupState.COMPLETING_REBALANCE, self.now_ms())
        classic.transition_to(GroupState.STABLE, self.now_ms())
        fx.records.append(self.groups.group_metadata_record(classic, assignments))
        for member in classic.members.values():
            self.groups.reschedule_heartbeat(classic, member)
        self.groups.prepare_rebalance(classic, "the group was downgraded to a classic group", fx)


def _must_rejoin(group: ConsumerGroup, member: ConsumerGroupMember) -> bool:
    """Kafka's rule for a classic member's Heartbeat: rejoin when the group epoch moved past
    the member's epoch, when it must revoke partitions, or when it waits for partitions that
    are all free now."""
    if member.member_epoch < group.group_epoch:
        return True
    if member.state is MemberState.UNREVOKED_PARTITIONS:
        return True
    if member.state is MemberState.UNRELEASED_PARTITIONS:
        held = group.holders(member.member_id)
        target = group.target.get(member.member_id, {})
        return all(
            (t, p) not in held
            for t, ps in target.items()
            for p in ps - member.assigned.get(t, frozenset())
        )
    return False


def _common_protocol(members: list[ConsumerGroupMember]) -> str | None:
    """The first protocol of the first member that every member supports."""
    names = [[name for name, _ in (m.classic_protocols or [])] for m in members]
    if not names:
        return None
    for name in names[0]:
        if all(name in others for others in names[1:]):
            return name
    return names[0][0] if names[0] else None


