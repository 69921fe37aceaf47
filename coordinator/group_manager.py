"""The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and their timeouts.

Theory of operation
===================
A classic rebalance is a two-phase barrier driven by the clients (Kafka's
GroupMetadataManager, classic half):

1. *Join phase* (PreparingRebalance). Something invalidates the current assignment
   (a new member, a member leaving or timing out, the leader rejoining, changed
   metadata). The group enters PreparingRebalance and every JoinGroup is *parked*:
   the handler stores the caller's ``reply`` callback on its ``Member`` and returns a
   ``Result`` whose ``response`` is None. The phase ends when every member has rejoined
   (and no MEMBER_ID_REQUIRED member is outstanding), or when the ``join-<group>``
   timeout (the largest rebalance timeout) fires; dynamic members that did not rejoin
   are then dropped. A group leaving Empty waits ``group.initial.rebalance.delay.ms``
   first, extended while new members keep arriving, bounded by the rebalance timeout.
   Completing the phase bumps the generation, picks the protocol every member supports
   with the most first-choice votes, keeps (or re-elects) the leader, and answers all
   parked JoinGroups at once; only the leader's answer lists the members.
2. *Sync phase* (CompletingRebalance). Followers' SyncGroups park; the leader's
   SyncGroup carries the assignment, which is written as a GroupMetadata record, then
   every parked SyncGroup is answered and the group is Stable. Members that send no
   SyncGroup within the rebalance timeout (``sync-<group>``) are removed and a new
   rebalance starts.

Liveness: every member has a ``heartbeat-<group>-<member>`` timeout of its session
timeout, reset by Heartbeat, OffsetCommit and by answering its Join/Sync. A member with a
parked Join/Sync has "satisfied" its heartbeat (except a brand-new member, which gets
the fixed new-member join timeout instead). An expired member is removed, which
triggers a rebalance.

Static members (``group.instance.id``) keep their place across restarts: a JoinGroup
with an unknown member id but a known instance id replaces the old member id; in a
Stable group whose protocol would not change this is written to the log and answered
at once with the current generation (no rebalance), and whatever the old id had parked
is fenced with FENCED_INSTANCE_ID. Static members are not dropped at the end of a join
phase; only their session timeout removes them.

Cooperative rebalancing needs nothing special here: clients revoke and rejoin, which is
an ordinary second rebalance; offsets of the current generation can still be committed
while the group is PreparingRebalance.

Every handler and timeout collects its effects in an ``Effects`` (records, deferred
replies) and returns a ``Result``; replies are delivered by the runtime after the records
are appended. Nothing here blocks, sleeps or does I/O; time comes from ``now_ms`` and
timeouts go through the injected ``Timer``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial

from coordinator.config import GroupConfig
from coordinator.group import ClassicGroup, JoinReply, Member, Protocols, SyncReply
from coordinator.records import group_metadata_key, group_metadata_value
from coordinator.result import Effects, Record, Result
from coordinator.state import GroupState
from coordinator.timer import Timer
from wire.errors import ErrorCode
from wire.messages.heartbeat_request import HeartbeatRequest
from wire.messages.heartbeat_response import HeartbeatResponse
from wire.messages.internal.group_metadata_key import GroupMetadataKey
from wire.messages.internal.group_metadata_value import GroupMetadataValue, MemberMetadata
from wire.messages.join_group_request import JoinGroupRequest
from wire.messages.join_group_response import JoinGroupResponse
from wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from wire.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from wire.messages.sync_group_request import SyncGroupRequest
from wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["GroupManager", "heartbeat_key", "join_key", "sync_key"]

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    GroupState.EMPTY,
    GroupState.PREPARING_REBALANCE,
    GroupState.COMPLETING_REBALANCE,
    GroupState.STABLE,
    GroupState.DEAD,
)
UNKNOWN_MEMBER_ID = ""


def heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat-{group_id}-{member_id}"


def join_key(group_id: str) -> str:
    return f"join-{group_id}"


def sync_key(group_id: str) -> str:
    return f"sync-{group_id}"


def _protocols(request: JoinGroupRequest) -> Protocols:
    return [(p.name, bytes(p.metadata)) for p in request.protocols]


def _rebalance_timeout_ms(request: JoinGroupRequest) -> int:
    # JoinGroup v0 has no rebalance timeout: the session timeout stands in for it.
    return (
        request.session_timeout_ms
        if request.rebalance_timeout_ms == -1
        else request.rebalance_timeout_ms
    )


def _inconsistent(asked: str | None, known: str | None) -> bool:
    return asked is not None and known is not None and asked != known


class GroupManager:
    """Owns every classic group; single owner, no locks."""

    def __init__(
        self,
        config: GroupConfig,
        now_ms: Callable[[], int],
        timer: Timer,
        new_uuid: Callable[[], str] | None = None,
    ) -> None:
        self.config = config
        self.now_ms = now_ms
        self.timer = timer
        self.new_uuid = new_uuid or (lambda: str(uuid.uuid4()))
        self.groups: dict[str, ClassicGroup] = {}
        self.on_transition: Callable[[GroupState, GroupState], None] | None = None

    # -- lookup --------------------------------------------------------------------------
    def get(self, group_id: str) -> ClassicGroup | None:
        return self.groups.get(group_id)

    def get_or_create_group(self, group_id: str) -> ClassicGroup:
        group = self.groups.get(group_id)
        if group is None:
            group = ClassicGroup(
                group_id=group_id,
                state=EMPTY,
                state_timestamp_ms=self.now_ms(),
                transitions=self.on_transition,
            )
            self.groups[group_id] = group
        return group

    @staticmethod
    def validate_member(
        group: ClassicGroup, member_id: str, group_instance_id: str | None
    ) -> ErrorCode:
        if group_instance_id is not None:
            existing = group.static_member_id(group_instance_id)
            if existing is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if existing != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
            return ErrorCode.NONE
        return ErrorCode.NONE if group.has_member(member_id) else ErrorCode.UNKNOWN_MEMBER_ID

    # -- records ---------------------------------------------------------------------------
    def group_metadata_record(self, group: ClassicGroup, assignment: dict[str, bytes]) -> Record:
        protocol = group.protocol_name
        value = GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=group.generation_id,
            protocol=protocol,
            leader=group.leader_id,
            current_state_timestamp=-1
            if group.state_timestamp_ms is None
            else group.state_timestamp_ms,
            members=[
                MemberMetadata(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout=m.rebalance_timeout_ms,
                    session_timeout=m.session_timeout_ms,
                    subscription=m.metadata(protocol) if protocol is not None else b"",
                    assignment=assignment.get(m.member_id, b""),
                )
                for m in group.members.values()
            ],
        )
        return Record(
            group_metadata_key(group.group_id), group_metadata_value(value), group.group_id
        )

    def empty_group_metadata_record(self, group: ClassicGroup) -> Record:
        value = GroupMetadataValue(
            protocol_type=group.protocol_type or "",
            generation=0,
            protocol=None,
            leader=None,
            current_state_timestamp=-1
            if group.state_timestamp_ms is None
            else group.state_timestamp_ms,
            members=[],
        )
        return Record(
            group_metadata_key(group.group_id), group_metadata_value(value), group.group_id
        )

    def replay_group_metadata(
        self, key: GroupMetadataKey, value: GroupMetadataValue | None
    ) -> None:
        """Rebuild a group from its latest GroupMetadata record (None = tombstone)."""
        if value is None:
            self.groups.pop(key.group, None)
            return
        protocol_type = value.protocol_type or None
        group = ClassicGroup(
            group_id=key.group,
            state=STABLE if value.members else EMPTY,
            state_timestamp_ms=None
            if value.current_state_timestamp == -1
            else value.current_state_timestamp,
            generation_id=value.generation,
            protocol_type=protocol_type,
            protocol_name=value.protocol,
            transitions=self.on_transition,
        )
        for m in value.members:
            protocols: Protocols = [(value.protocol or "", bytes(m.subscription))]
            group.add(
                Member(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.session_timeout
                    if m.rebalance_timeout == -1
                    else m.rebalance_timeout,
                    session_timeout_ms=m.session_timeout,
                    protocol_type=value.protocol_type,
                    protocols=protocols,
                    assignment=bytes(m.assignment),
                ),
                None,
            )
        group.leader_id = value.leader if value.leader in group.members else group.leader_id
        group.subscribed = group.compute_subscribed_topics()
        self.groups[key.group] = group

    def on_loaded(self) -> Result[None]:
        """After replay: start the session timers of loaded members (Kafka's onLoaded)."""
        fx = Effects()
        for group in list(self.groups.values()):
            for member in group.members.values():
                self.reschedule_heartbeat(group, member)
            if len(group.members) > self.config.group_max_size and group.can_rebalance():
                self.prepare_rebalance(group, "group is over group.max.size after loading", fx)
        return fx.result(None)

    def delete_group(self, group: ClassicGroup, fx: Effects) -> None:
        """Write the group's tombstone and forget it (the group must be Empty)."""
        group.transition_to(DEAD, self.now_ms())
        fx.records.append(Record(group_metadata_key(group.group_id), None, group.group_id))
        self.replay_group_metadata(GroupMetadataKey(group=group.group_id), None)

    # -- timers ----------------------------------------------------------------------------
    def reschedule_heartbeat(
        self, group: ClassicGroup, member: Member, delay_ms: int | None = None
    ) -> None:
        self.timer.schedule(
            heartbeat_key(group.group_id, member.member_id),
            member.session_timeout_ms if delay_ms is None else delay_ms,
            partial(self.expire_member_heartbeat, group.group_id, member.member_id),
        )

    def schedule_pending_sync(self, group: ClassicGroup) -> None:
        self.timer.schedule(
            sync_key(group.group_id),
            group.rebalance_timeout_ms(),
            partial(self.expire_pending_sync, group.group_id, group.generation_id),
        )

    # -- JoinGroup -------------------------------------------------------------------------
    def join_group(
        self,
        request: JoinGroupRequest,
        *,
        api_version: int,
        client_id: str,
        client_host: str,
        reply: JoinReply,
    ) -> Result[JoinGroupResponse]:
        """JoinGroup. ``response`` None: parked; ``reply`` is called later (maybe via
        this very result's ``replies``)."""
        fx = Effects()
        response = self._join_group(request, api_version, client_id, client_host, reply, fx)
        return fx.result(response)

    def _join_group(
        self,
        request: JoinGroupRequest,
        api_version: int,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        if not request.group_id:
            return JoinGroupResponse(
                member_id=request.member_id, error_code=ErrorCode.INVALID_GROUP_ID
            )
        if not (
            self.config.group_min_session_timeout_ms
            <= request.session_timeout_ms
            <= self.config.group_max_session_timeout_ms
        ):
            return JoinGroupResponse(
                member_id=request.member_id, error_code=ErrorCode.INVALID_SESSION_TIMEOUT
            )
        is_unknown_member = request.member_id == UNKNOWN_MEMBER_ID
        group = self.get(request.group_id)
        is_new_group = group is None
        if group is None:
            if not is_unknown_member:
                return JoinGroupResponse(
                    member_id=request.member_id, error_code=ErrorCode.UNKNOWN_MEMBER_ID
                )
            group = self.get_or_create_group(request.group_id)
        response: JoinGroupResponse | None
        if not self.accept_joining_member(group, request.member_id):
            if group.has_member(request.member_id):
                self.timer.cancel(heartbeat_key(group.group_id, request.member_id))
            group.remove(request.member_id)
            response = JoinGroupResponse(
                member_id=UNKNOWN_MEMBER_ID, error_code=ErrorCode.GROUP_MAX_SIZE_REACHED
            )
        elif is_unknown_member:
            response = self.join_new_member(
                request, api_version, group, client_id, client_host, reply, fx
            )
        else:
            response = self.join_existing_member(
                request, api_version, group, client_id, client_host, reply, fx
            )
        if is_new_group and not fx.records:
            # Commit the new group to the log so that it survives a restart.
            fx.records.append(self.empty_group_metadata_record(group))
        return response

    def accept_joining_member(self, group: ClassicGroup, member_id: str) -> bool:
        limit = self.config.group_max_size
        if group.is_in(EMPTY, DEAD):
            return True
        if group.is_in(PREPARING):
            # Counting parked joins (not members) lets a shrunk limit evict the last rejoiners.
            member = group.members.get(member_id)
            return (
                member is not None and member.is_awaiting_join
            ) or group.num_members_awaiting_join < limit
        return group.has_member(member_id) or len(group.members) < limit

    def join_new_member(
        self,
        request: JoinGroupRequest,
        api_version: int,
        group: ClassicGroup,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        if group.is_in(DEAD):
            return JoinGroupResponse(
                member_id=request.member_id, error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE
            )
        if not group.supports_protocols(request.protocol_type, _protocols(request)):
            return JoinGroupResponse(
                member_id=request.member_id, error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            )
        prefix = request.group_instance_id if request.group_instance_id is not None else client_id
        new_member_id = f"{prefix}-{self.new_uuid()}"
        if request.group_instance_id is not None:
            return self.join_new_static_member(
                request, api_version, group, new_member_id, client_id, client_host, reply, fx
            )
        return self.join_new_dynamic_member(
            request, api_version, group, new_member_id, client_id, client_host, reply, fx
        )

    def join_new_dynamic_member(
        self,
        request: JoinGroupRequest,
        api_version: int,
        group: ClassicGroup,
        new_member_id: str,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        if api_version >= 4:
            # KIP-394: hand out the id and make the client come back with it, so that
            # a client that times out does not leave a ghost member behind.
            group.pending_join_members.add(new_member_id)
            self.timer.schedule(
                heartbeat_key(group.group_id, new_member_id),
                request.session_timeout_ms,
                partial(self.expire_member_heartbeat, group.group_id, new_member_id),
            )
            return JoinGroupResponse(
                member_id=new_member_id, error_code=ErrorCode.MEMBER_ID_REQUIRED
            )
        return self.add_member_then_rebalance_or_complete_join(
            request, group, new_member_id, client_id, client_host, reply, fx
        )

    def join_new_static_member(
        self,
        request: JoinGroupRequest,
        api_version: int,
        group: ClassicGroup,
        new_member_id: str,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        assert request.group_instance_id is not None
        existing = group.static_member_id(request.group_instance_id)
        if existing is not None:
            return self.update_static_member_then_rebalance_or_complete_join(
                request, api_version, group, existing, new_member_id, reply, fx
            )
        return self.add_member_then_rebalance_or_complete_join(
            request, group, new_member_id, client_id, client_host, reply, fx
        )

    def join_existing_member(
        self,
        request: JoinGroupRequest,
        api_version: int,
        group: ClassicGroup,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        member_id = request.member_id
        if group.is_in(DEAD):
            return JoinGroupResponse(
                member_id=member_id, error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE
            )
        protocols = _protocols(request)
        if not group.supports_protocols(request.protocol_type, protocols):
            return JoinGroupResponse(
                member_id=member_id, error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL
            )
        if group.is_pending_member(member_id):
            if request.group_instance_id is not None:
                # Pending members are always dynamic; Kafka fails this as an internal error.
                return JoinGroupResponse(
                    member_id=member_id, error_code=ErrorCode.UNKNOWN_SERVER_ERROR
                )
            return self.add_member_then_rebalance_or_complete_join(
                request, group, member_id, client_id, client_host, reply, fx
            )
        code = self.validate_member(group, member_id, request.group_instance_id)
        if code is not ErrorCode.NONE:
            return JoinGroupResponse(member_id=member_id, error_code=code)
        member = group.members[member_id]
        if group.is_in(PREPARING):
            return self.update_member_then_rebalance_or_complete_join(
                request, group, member, reply, fx
            )
        if group.is_in(COMPLETING):
            if member.matches(protocols):
                # Same metadata: probably a lost JoinGroup answer; resend it.
                return self.current_generation_join_response(
                    group, member_id, with_members=group.is_leader(member_id)
                )
            return self.update_member_then_rebalance_or_complete_join(
                request, group, member, reply, fx
            )
        if group.is_in(STABLE):
            if group.is_leader(member_id) or not member.matches(protocols):
                # A leader rejoining asks for a rebalance (e.g. topic metadata changed).
                return self.update_member_then_rebalance_or_complete_join(
                    request, group, member, reply, fx
                )
            return self.current_generation_join_response(group, member_id, with_members=False)
        return JoinGroupResponse(member_id=member_id, error_code=ErrorCode.UNKNOWN_MEMBER_ID)

    def current_generation_join_response(
        self,
        group: ClassicGroup,
        member_id: str,
        *,
        with_members: bool,
        leader: str | None = None,
        skip_assignment: bool = False,
    ) -> JoinGroupResponse:
        return JoinGroupResponse(
            members=group.current_members_for_leader() if with_members else [],
            member_id=member_id,
            generation_id=group.generation_id,
            protocol_name=group.protocol_name,
            protocol_type=group.protocol_type,
            leader=(leader if leader is not None else group.leader_id) or "",
            skip_assignment=skip_assignment,
        )

    def add_member_then_rebalance_or_complete_join(
        self,
        request: JoinGroupRequest,
        group: ClassicGroup,
        member_id: str,
        client_id: str,
        client_host: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        """Parks the member's JoinGroup; always returns None (answered via replies)."""
        member = Member(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=client_id,
            client_host=client_host,
            rebalance_timeout_ms=_rebalance_timeout_ms(request),
            session_timeout_ms=request.session_timeout_ms,
            protocol_type=request.protocol_type,
            protocols=_protocols(request),
            is_new=True,
        )
        if group.is_in(PREPARING) and group.previous_state is EMPTY:
            group.new_member_added = True  # extends the initial rebalance delay
        group.add(member, reply)
        # A parked JoinGroup cannot heartbeat and a disconnect goes unnoticed: bound the
        # wait of new members so that abandoned joins do not pile up.
        self.reschedule_heartbeat(group, member, self.config.group_new_member_join_timeout_ms)
        self.maybe_prepare_rebalance_or_complete_join(group, f"adding new member {member_id}", fx)
        return None

    def update_member_then_rebalance_or_complete_join(
        self,
        request: JoinGroupRequest,
        group: ClassicGroup,
        member: Member,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        """Parks the member's JoinGroup; always returns None (answered via replies)."""
        group.update_member(
            member,
            _protocols(request),
            _rebalance_timeout_ms(request),
            request.session_timeout_ms,
            reply,
        )
        self.maybe_prepare_rebalance_or_complete_join(
            group, f"member {member.member_id} rejoined", fx
        )
        return None

    def update_static_member_then_rebalance_or_complete_join(
        self,
        request: JoinGroupRequest,
        api_version: int,
        group: ClassicGroup,
        old_member_id: str,
        new_member_id: str,
        reply: JoinReply,
        fx: Effects,
    ) -> JoinGroupResponse | None:
        """Parks the member's JoinGroup; always returns None (answered via replies)."""
        assert request.group_instance_id is not None
        current_leader = group.leader_id
        member, fenced = group.replace_static_member(
            request.group_instance_id, old_member_id, new_member_id
        )
        fx.replies.extend(fenced)
        self.timer.cancel(heartbeat_key(group.group_id, old_member_id))
        self.reschedule_heartbeat(group, member)
        group.update_member(
            member,
            _protocols(request),
            _rebalance_timeout_ms(request),
            request.session_timeout_ms,
            reply,
        )
        if group.is_in(STABLE):
            if group.protocol_name == group.select_protocol():
                # Same protocol next generation: persist the new member id, no rebalance.
                fx.records.append(
                    self.group_metadata_record(
                        group, {m.member_id: m.assignment for m in group.members.values()}
                    )
                )
                if api_version >= 9:
                    is_leader = group.is_leader(new_member_id)
                    response = self.current_generation_join_response(
                        group, new_member_id, with_members=is_leader, skip_assignment=is_leader
                    )
                else:
                    # Older clients must not think they lead (they would reassign): name the
                    # leader as it was before the replacement.
                    response = self.current_generation_join_response(
                        group, new_member_id, with_members=False, leader=current_leader
                    )
                delivery = group.complete_join(member, response)
                if delivery is not None:
                    fx.replies.append(delivery)
            else:
                self.maybe_prepare_rebalance_or_complete_join(
                    group, f"static member {request.group_instance_id} changed protocols", fx
                )
        elif group.is_in(COMPLETING):
            self.prepare_rebalance(group, f"static member {request.group_instance_id} rejoined", fx)
        elif group.is_in(PREPARING):
            self.maybe_complete_join_phase(group, fx)
        else:
            raise AssertionError(
                f"static member rejoined group {group.group_id} in state {group.state}"
            )
        return None

    # -- rebalance barrier -----------------------------------------------------------------

    def maybe_prepare_rebalance_or_complete_join(
        self, group: ClassicGroup, reason: str, fx: Effects
    ) -> None:
        if group.can_rebalance():
            self.prepare_rebalance(group, reason, fx)
        else:
            self.maybe_complete_join_phase(group, fx)

    def prepare_rebalance(self, group: ClassicGroup, reason: str, fx: Effects) -> None:
        if group.is_in(COMPLETING):
            self.reset_and_propagate_assignment_with_error(
                group, ErrorCode.REBALANCE_IN_PROGRESS, fx
            )
        self.timer.cancel(sync_key(group.group_id))
        is_initial_rebalance = group.is_in(EMPTY)
        if is_initial_rebalance:
            delay_ms = self.config.group_initial_rebalance_delay_ms
            remaining_ms = max(group.rebalance_timeout_ms() - delay_ms, 0)
            self.timer.schedule(
                join_key(group.group_id),
                delay_ms,
                partial(
                    self.try_complete_initial_rebalance_else_schedule,
                    group.group_id,
                    delay_ms,
                    remaining_ms,
                ),
            )
        group.transition_to(PREPARING, self.now_ms())
        if not is_initial_rebalance:
            self.maybe_complete_join_else_schedule(group, fx)

    def maybe_complete_join_else_schedule(self, group: ClassicGroup, fx: Effects) -> None:
        if group.has_all_members_joined():
            self.complete_join(group, fx)
        else:
            self.timer.schedule(
                join_key(group.group_id),
                group.rebalance_timeout_ms(),
                partial(self.complete_join_on_timeout, group.group_id),
            )

    def maybe_complete_join_phase(self, group: ClassicGroup, fx: Effects) -> None:
        # During the initial rebalance only the delay timer may end the join phase.
        if (
            group.is_in(PREPARING)
            and group.has_all_members_joined()
            and group.previous_state is not EMPTY
        ):
            self.complete_join(group, fx)

    def try_complete_initial_rebalance_else_schedule(
        self, group_id: str, delay_ms: int, remaining_ms: int
    ) -> Result[None]:
        fx = Effects()
        group = self.get(group_id)
        if group is None or not group.is_in(PREPARING):
            return fx.result(None)
        if group.new_member_added and remaining_ms != 0:
            group.new_member_added = False
            new_delay_ms = min(self.config.group_initial_rebalance_delay_ms, remaining_ms)
            new_remaining_ms = max(remaining_ms - delay_ms, 0)
            self.timer.schedule(
                join_key(group_id),
                new_delay_ms,
                partial(
                    self.try_complete_initial_rebalance_else_schedule,
                    group_id,
                    new_delay_ms,
                    new_remaining_ms,
                ),
            )
        else:
            self.complete_join(group, fx)
        return fx.result(None)

    def complete_join_on_timeout(self, group_id: str) -> Result[None]:
        fx = Effects()
        group = self.get(group_id)
        if group is not None and group.is_in(PREPARING):
            self.complete_join(group, fx)
        return fx.result(None)

    def complete_join(self, group: ClassicGroup, fx: Effects) -> None:
        """End the join phase: drop dynamic laggards, bump the generation, answer joins."""
        self.timer.cancel(join_key(group.group_id))
        for laggard in group.not_yet_rejoined_members():
            if not laggard.is_static:
                group.remove(laggard.member_id)
                self.timer.cancel(heartbeat_key(group.group_id, laggard.member_id))
        if group.is_in(DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members remain and none rejoined: wait for them (or for their
            # session timeouts to remove them).
            self.timer.schedule(
                join_key(group.group_id),
                group.rebalance_timeout_ms(),
                partial(self.complete_join_on_timeout, group.group_id),
            )
            return
        group.init_next_generation(self.now_ms())
        if group.is_in(EMPTY):
            fx.records.append(self.group_metadata_record(group, {}))
            return
        for member in list(group.members.values()):
            response = self.current_generation_join_response(
                group, member.member_id, with_members=group.is_leader(member.member_id)
            )
            delivery = group.complete_join(member, response)
            if delivery is not None:
                fx.replies.append(delivery)
            self.reschedule_heartbeat(group, member)
            member.is_new = False
            group.pending_sync_members.add(member.member_id)
        self.schedule_pending_sync(group)

    # -- SyncGroup -------------------------------------------------------------------------
    def sync_group(
        self, request: SyncGroupRequest, *, api_version: int, reply: SyncReply
    ) -> Result[SyncGroupResponse]:
        """SyncGroup. ``response`` None: parked until the leader's SyncGroup arrives."""
        fx = Effects()
        response = self._sync_group(request, reply, fx)
        return fx.result(response)

    def _sync_group(
        self, request: SyncGroupRequest, reply: SyncReply, fx: Effects
    ) -> SyncGroupResponse | None:
        if not request.group_id:
            return SyncGroupResponse(error_code=ErrorCode.INVALID_GROUP_ID)
        group = self.get(request.group_id)
        if group is None:
            return SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_in(DEAD):
            return SyncGroupResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
        code = self.validate_member(group, request.member_id, request.group_instance_id)
        if code is not ErrorCode.NONE:
            return SyncGroupResponse(error_code=code)
        if request.generation_id != group.generation_id:
            return SyncGroupResponse(error_code=ErrorCode.ILLEGAL_GENERATION)
        if _inconsistent(request.protocol_type, group.protocol_type) or _inconsistent(
            request.protocol_name, group.protocol_name
        ):
            return SyncGroupResponse(error_code=ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if group.is_in(EMPTY):
            return SyncGroupResponse(error_code=ErrorCode.UNKNOWN_MEMBER_ID)
        if group.is_in(PREPARING):
            return SyncGroupResponse(error_code=ErrorCode.REBALANCE_IN_PROGRESS)
        member = group.members[request.member_id]
        if group.is_in(COMPLETING):
            member.awaiting_sync = reply
            self.remove_pending_sync_member(group, member.member_id)
            if group.is_leader(member.member_id):
                assignment = {a.member_id: bytes(a.assignment) for a in request.assignments}
                for m in group.members.values():
                    assignment.setdefault(m.member_id, b"")
                fx.records.append(self.group_metadata_record(group, assignment))
                self.set_and_propagate_assignment(group, assignment, fx)
                group.transition_to(STABLE, self.now_ms())
            return None
        # Stable: hand out the current assignment.
        self.remove_pending_sync_member(group, member.member_id)
        return SyncGroupResponse(
            protocol_type=group.protocol_type,
            protocol_name=group.protocol_name,
            assignment=member.assignment,
        )

    def remove_pending_sync_member(self, group: ClassicGroup, member_id: str) -> None:
        group.pending_sync_members.discard(member_id)
        if group.is_in(DEAD, EMPTY, PREPARING) or group.has_received_sync_from_all_members():
            self.timer.cancel(sync_key(group.group_id))

    def set_and_propagate_assignment(
        self, group: ClassicGroup, assignment: dict[str, bytes], fx: Effects
    ) -> None:
        assert group.is_in(COMPLETING)
        for member in group.members.values():
            member.assignment = assignment.get(member.member_id, b"")
        self.propagate_assignment(group, ErrorCode.NONE, fx)

    def reset_and_propagate_assignment_with_error(
        self, group: ClassicGroup, error: ErrorCode, fx: Effects
    ) -> None:
        assert group.is_in(COMPLETING)
        for member in group.members.values():
            member.assignment = b""
        self.propagate_assignment(group, error, fx)

    def propagate_assignment(self, group: ClassicGroup, error: ErrorCode, fx: Effects) -> None:
        ok = error is ErrorCode.NONE
        for member in group.members.values():
            response = SyncGroupResponse(
                error_code=error,
                protocol_type=group.protocol_type if ok else None,
                protocol_name=group.protocol_name if ok else None,
                assignment=member.assignment,
            )
            delivery = group.complete_sync(member, response)
            if delivery is not None:
                fx.replies.append(delivery)
                # The session restarts once the member has its answer.
                self.reschedule_heartbeat(group, member)

    def expire_pending_sync(self, group_id: str, generation_id: int) -> Result[None]:
        fx = Effects()
        group = self.get(group_id)
        if (
            group is not None
            and group.generation_id == generation_id
            and group.is_in(COMPLETING, STABLE)
            and not group.has_received_sync_from_all_members()
        ):
            laggards = sorted(group.pending_sync_members)
            for member_id in laggards:
                group.remove(member_id)
                self.timer.cancel(heartbeat_key(group_id, member_id))
            self.prepare_rebalance(group, f"removing {laggards} on pending sync expiration", fx)
        return fx.result(None)

    # -- Heartbeat -------------------------------------------------------------------------
    def heartbeat(
        self, request: HeartbeatRequest, *, api_version: int = 4
    ) -> Result[HeartbeatResponse]:
        return Result(response=HeartbeatResponse(error_code=self._heartbeat(request)))

    def _heartbeat(self, request: HeartbeatRequest) -> ErrorCode:
        if not request.group_id:
            return ErrorCode.INVALID_GROUP_ID
        group = self.get(request.group_id)
        if group is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if group.is_in(DEAD):
            return ErrorCode.COORDINATOR_NOT_AVAILABLE
        code = self.validate_member(group, request.member_id, request.group_instance_id)
        if code is not ErrorCode.NONE:
            return code
        if request.generation_id != group.generation_id:
            return ErrorCode.ILLEGAL_GENERATION
        if group.is_in(EMPTY):
            return ErrorCode.UNKNOWN_MEMBER_ID
        self.reschedule_heartbeat(group, group.members[request.member_id])
        if group.is_in(PREPARING):
            return ErrorCode.REBALANCE_IN_PROGRESS
        return ErrorCode.NONE

    def expire_member_heartbeat(self, group_id: str, member_id: str) -> Result[None]:
        fx = Effects()
        group = self.get(group_id)
        if group is None or group.is_in(DEAD):
            return fx.result(None)
        if group.is_pending_member(member_id):
            self.remove_pending_member_and_update_group(group, member_id, fx)
        else:
            member = group.members.get(member_id)
            if member is not None and not member.has_satisfied_heartbeat():
                self.remove_member_and_update_group(
                    group, member, f"{member_id} session expired", fx
                )
        return fx.result(None)

    def remove_member_and_update_group(
        self, group: ClassicGroup, member: Member, reason: str, fx: Effects
    ) -> None:
        # A new member may time out with a parked JoinGroup: answer it so the client rejoins.
        delivery = group.complete_join(
            member,
            JoinGroupResponse(member_id=UNKNOWN_MEMBER_ID, error_code=ErrorCode.UNKNOWN_MEMBER_ID),
        )
        if delivery is not None:
            fx.replies.append(delivery)
        group.remove(member.member_id)
        if group.is_in(STABLE, COMPLETING):
            self.maybe_prepare_rebalance_or_complete_join(group, reason, fx)
        elif group.is_in(PREPARING) and group.has_all_members_joined():
            self.complete_join(group, fx)

    def remove_pending_member_and_update_group(
        self, group: ClassicGroup, member_id: str, fx: Effects
    ) -> None:
        group.remove(member_id)
        self.maybe_complete_join_phase(group, fx)

    # -- LeaveGroup ------------------------------------------------------------------------
    def leave_group(
        self, request: LeaveGroupRequest, *, api_version: int
    ) -> Result[LeaveGroupResponse]:
        fx = Effects()
        if api_version >= 3:
            identities = request.members
        else:
            identities = [MemberIdentity(member_id=request.member_id)]
        response = self._leave_group(request.group_id, identities, fx)
        if api_version < 3:
            # v0-2 carry one member and only a top-level error code.
            if response.error_code == ErrorCode.NONE and response.members:
                response.error_code = response.members[0].error_code
            response.members = []
        return fx.result(response)

    def _leave_group(
        self, group_id: str, identities: list[MemberIdentity], fx: Effects
    ) -> LeaveGroupResponse:
        if not group_id:
            return LeaveGroupResponse(error_code=ErrorCode.INVALID_GROUP_ID)
        group = self.get(group_id)
        if group is None:
            return LeaveGroupResponse(
                members=[
                    MemberResponse(
                        member_id=i.member_id,
                        group_instance_id=i.group_instance_id,
                        error_code=ErrorCode.UNKNOWN_MEMBER_ID,
                    )
                    for i in identities
                ]
            )
        if group.is_in(DEAD):
            return LeaveGroupResponse(error_code=ErrorCode.COORDINATOR_NOT_AVAILABLE)
        results: list[MemberResponse] = []
        for identity in identities:
            code = ErrorCode.NONE
            if identity.member_id == UNKNOWN_MEMBER_ID:
                # Admin removal of a static member by group.instance.id only.
                static_id = (
                    group.static_member_id(identity.group_instance_id)
                    if identity.group_instance_id is not None
                    else None
                )
                if static_id is not None:
                    self.remove_current_member_from_group(group, static_id, fx)
                else:
                    code = ErrorCode.UNKNOWN_MEMBER_ID
            elif group.is_pending_member(identity.member_id):
                self.remove_pending_member_and_update_group(group, identity.member_id, fx)
                self.timer.cancel(heartbeat_key(group.group_id, identity.member_id))
            else:
                code = self.validate_member(group, identity.member_id, identity.group_instance_id)
                if code is ErrorCode.NONE:
                    self.remove_current_member_from_group(group, identity.member_id, fx)
            results.append(
                MemberResponse(
                    member_id=identity.member_id,
                    group_instance_id=identity.group_instance_id,
                    error_code=code,
                )
            )
        if any(r.error_code == ErrorCode.NONE for r in results):
            if group.is_in(STABLE, COMPLETING):
                self.maybe_prepare_rebalance_or_complete_join(group, "members left the group", fx)
            elif group.is_in(PREPARING):
                self.maybe_complete_join_phase(group, fx)
        return LeaveGroupResponse(members=results)

    def remove_current_member_from_group(
        self, group: ClassicGroup, member_id: str, fx: Effects
    ) -> None:
        member = group.members[member_id]
        self.timer.cancel(heartbeat_key(group.group_id, member_id))
        delivery = group.complete_join(
            member,
            JoinGroupResponse(member_id=UNKNOWN_MEMBER_ID, error_code=ErrorCode.UNKNOWN_MEMBER_ID),
        )
        if delivery is not None:
            fx.replies.append(delivery)
        group.remove(member_id)
