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

import logging
import uuid
from collections.abc import Callable
from functools import partial

from kbroker.coordinator.config import GroupConfig
from kbroker.coordinator.group import ClassicGroup, Member, Protocols
from kbroker.coordinator.records import group_metadata_key, group_metadata_value
from kbroker.coordinator.result import Effects, Record, Result
from kbroker.coordinator.state import GroupState
from kbroker.coordinator.timer import Timer
from kbroker.wire.errors import ErrorCode
from kbroker.wire.messages.internal.group_metadata_key import GroupMetadataKey
from kbroker.wire.messages.internal.group_metadata_value import GroupMetadataValue, MemberMetadata
from kbroker.wire.messages.join_group_response import JoinGroupResponse
from kbroker.wire.messages.sync_group_response import SyncGroupResponse

__all__ = ["RebalanceCore", "heartbeat_key", "join_key", "sync_key"]

EMPTY, PREPARING, COMPLETING, STABLE, DEAD = (
    GroupState.EMPTY,
    GroupState.PREPARING_REBALANCE,
    GroupState.COMPLETING_REBALANCE,
    GroupState.STABLE,
    GroupState.DEAD,
)
UNKNOWN_MEMBER_ID = ""
NO_REJOIN_RECHECK_MIN_MS = 1_000
"""Floor of the delay before a join phase that no member rejoined is looked at again (Kafka
waits the group's rebalance timeout): with a rebalance timeout of 0 -- which a client may
ask for, or a record replayed from the log may hold -- the recheck would be a 0 ms timer
firing again at once until the members' sessions expire, a busy loop."""

log = logging.getLogger(__name__)


def heartbeat_key(group_id: str, member_id: str) -> str:
    return f"heartbeat-{group_id}-{member_id}"


def join_key(group_id: str) -> str:
    return f"join-{group_id}"


def sync_key(group_id: str) -> str:
    return f"sync-{group_id}"


class RebalanceCore:
    """Owns every classic group and the rebalance barrier; single owner, no locks.

    ``GroupManager`` adds the request handlers on top of this.
    """

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

    def on_unloaded(self) -> Result[None]:
        """Shutdown (Kafka's onUnloaded): answer every parked JoinGroup/SyncGroup with
        NOT_COORDINATOR, cancel the group timeouts, mark the groups Dead and forget them.
        Nothing is written: the log already holds the durable state."""
        fx = Effects()
        now_ms = self.now_ms()
        for group in list(self.groups.values()):
            for member in group.members.values():
                join = group.complete_join(
                    member,
                    JoinGroupResponse(
                        member_id=member.member_id, error_code=ErrorCode.NOT_COORDINATOR
                    ),
                )
                sync = group.complete_sync(
                    member, SyncGroupResponse(error_code=ErrorCode.NOT_COORDINATOR)
                )
                fx.replies.extend(d for d in (join, sync) if d is not None)
                self.timer.cancel(heartbeat_key(group.group_id, member.member_id))
            for member_id in group.pending_join_members:
                self.timer.cancel(heartbeat_key(group.group_id, member_id))
            self.timer.cancel(join_key(group.group_id))
            self.timer.cancel(sync_key(group.group_id))
            group.transition_to(DEAD, now_ms)
        self.groups.clear()
        return fx.result(None)

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
        log.info(
            "group %s preparing to rebalance in generation %d: %s",
            group.group_id,
            group.generation_id,
            reason,
        )
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
                log.info(
                    "group %s: member %s did not rejoin in time", group.group_id, laggard.member_id
                )
                group.remove(laggard.member_id)
                self.timer.cancel(heartbeat_key(group.group_id, laggard.member_id))
        if group.is_in(DEAD):
            return
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only static members remain and none rejoined: wait for them (or for their
            # session timeouts to remove them).
            self.timer.schedule(
                join_key(group.group_id),
                max(group.rebalance_timeout_ms(), NO_REJOIN_RECHECK_MIN_MS),
                partial(self.complete_join_on_timeout, group.group_id),
            )
            return
        group.init_next_generation(self.now_ms())
        log.info(
            "group %s generation %d is %s with %d members (protocol %s, leader %s)",
            group.group_id,
            group.generation_id,
            group.state,
            len(group.members),
            group.protocol_name,
            group.leader_id,
        )
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
                log.info("group %s: member %s session expired", group_id, member_id)
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
