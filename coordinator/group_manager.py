"""Classic group request handlers: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

Each handler validates, answers early with an error code, then switches on the group
state (Kafka's shape). The barrier and timeouts they drive live in ``rebalance``
(read its theory of operation first).
"""

from __future__ import annotations

from functools import partial

from kbroker.coordinator.group import ClassicGroup, JoinReply, Member, Protocols, SyncReply
from kbroker.coordinator.rebalance import (
    COMPLETING,
    DEAD,
    EMPTY,
    PREPARING,
    STABLE,
    UNKNOWN_MEMBER_ID,
    RebalanceCore,
    heartbeat_key,
    join_key,
    sync_key,
)
from kbroker.coordinator.result import Effects, Result
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.heartbeat_request import HeartbeatRequest
from kbroker.wire.messages.heartbeat_response import HeartbeatResponse
from kbroker.wire.messages.join_group_request import JoinGroupRequest
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.leave_group_request import LeaveGroupRequest, MemberIdentity
from kbroker.wire.messages.leave_group_response import LeaveGroupResponse, MemberResponse
from kbroker.wire.messages.sync_group_request import SyncGroupRequest
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["GroupManager", "heartbeat_key", "join_key", "sync_key"]


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


class GroupManager(RebalanceCore):
    """The classic group protocol handlers (see ``coordinator.rebalance``)."""

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
